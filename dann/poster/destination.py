"""What the poster needs of a platform, and the failures every platform's client is turned into.

One Destination per platform (x.py, fediverse.py, bluesky.py), each a thin wrapper over that
platform's maintained client library. The poster (poster.py) decides what to post and when;
a destination only talks to its platform, and raises one of the errors below for a failure the
poster must act on. Every call is blocking (the libraries are), so the poster makes them in a
worker thread.
"""

import dataclasses
import re
from typing import Protocol

from lstm.errors import DannError


class PosterError(DannError):
    """A platform refused or could not be reached; the message is one line for the log or the person."""


class RateLimited(PosterError):
    """429: wait until `reset_at` (Unix seconds, from the platform's reset header), then retry."""

    def __init__(self, message: str, reset_at: float | None):
        super().__init__(message)
        self.reset_at = reset_at


class Unauthorized(PosterError):
    """The credentials are wrong, revoked or lack a permission: retrying cannot help, the poster stops."""


class Unreachable(PosterError):
    """The platform did not answer, or answered with a server error: try again later."""


class Forbidden(PosterError):
    """A 403 on one request (X also answers it to a reply to a deleted or hidden post): that request
    is skipped. Only at the start, checking the account, does it stop the poster."""


class Refused(PosterError):
    """The account cannot be used as dann's (no bot flag or label, and dann may not set it): the poster stops."""


@dataclasses.dataclass(frozen=True)
class Mention:
    id: str  # the platform's id of the post that addresses dann
    text: str  # its words, without the leading @handles
    author: str  # who wrote it (a handle), for the log
    author_is_bot: bool  # the platform marks the author as a bot account
    thread: tuple[str, ...]  # the posts above it, oldest first, for priming (bounded by the destination)
    dann_posts: int  # dann's own posts among those above, counted up to the depth cap
    reply_to: object = None  # whatever the destination needs to reply to it


class Destination(Protocol):
    name: str  # "x", "mastodon" or "bluesky": the key in the poster's record and in every log line
    max_chars: int  # the platform's limit for one post
    replies: bool  # whether it answers mentions

    def check(self, live: bool) -> None:
        """At start: the credentials work and the account is marked as a bot (set where allowed),
        or raise Unauthorized / Refused. Not `live` (a dry run): change nothing and send no POST;
        a platform whose login is a POST skips it, and then lists no mentions."""

    def post(self, text: str) -> str:
        """Publish a post; returns its id."""

    def mentions(self, after: str | None, depth_cap: int) -> tuple[list[Mention], str | None]:
        """The mentions newer than the cursor `after` (oldest first), and the new cursor."""

    def reply(self, mention: Mention, text: str) -> str:
        """Answer a mention; returns the reply's id."""


HANDLE = re.compile(r"(?<![\w@＠])@([A-Za-z0-9_][A-Za-z0-9_.\-]*(?:@[A-Za-z0-9.\-]+)?)")


def neutralised(text: str, keep: str | None = None) -> str:
    """`text` with every @handle made inert, so that dann mentions nobody: the @ becomes a
    full-width ＠, which no platform links. `keep` (the account being replied to) stays a mention."""
    keep = (keep or "").lstrip("@").casefold()
    return HANDLE.sub(lambda m: m[0] if keep and m[1].casefold().rstrip(".") == keep else "＠" + m[1], text)


def without_handles(text: str) -> str:
    """A post's words without the @handles a reply starts with (X and Mastodon put them there)."""
    words = text.split()
    while words and words[0].startswith("@"):
        words.pop(0)
    return " ".join(words)
