"""Mastodon (and servers that speak its API) through Mastodon.py, with an access token of the bot
account (DANN_MASTODON_URL, DANN_MASTODON_TOKEN).

- check: GET /api/v1/accounts/verify_credentials; an account without the bot flag gets it
  (PATCH /api/v1/accounts/update_credentials) when live, and a dry run only says so.
- post: POST /api/v1/statuses with DANN_MASTODON_VISIBILITY.
- mentions: GET /api/v1/notifications?types[]=mention after the last one seen, and for each the
  posts above it (GET /api/v1/statuses/:id/context, the whole ancestry in one request), for
  priming and the depth cap.
- reply: in reply to the mention, addressed to its author, and never more public than it.
"""

import logging
from html.parser import HTMLParser

import mastodon
import requests

from dann.poster.destination import (
    Forbidden,
    Mention,
    PosterError,
    RateLimited,
    Refused,
    Unauthorized,
    Unreachable,
    without_handles,
)

log = logging.getLogger("dann.poster")
MAX_CHARS = 500  # Mastodon's default limit; a server may allow more, never less
TIMEOUT_S = 30
PAGE = 40  # notifications fetched per poll (Mastodon's default page)
VISIBILITIES = ("public", "unlisted", "private", "direct")  # most public first


class Gone(PosterError):
    """404: the status was deleted (or is no longer visible to dann)."""


class MastodonDestination:
    name = "mastodon"
    max_chars = MAX_CHARS

    def __init__(self, settings):
        if not settings.mastodon_url or settings.mastodon_token is None:
            raise PosterError("Mastodon needs DANN_MASTODON_URL and DANN_MASTODON_TOKEN")
        self.url = settings.mastodon_url
        self.client = mastodon.Mastodon(access_token=settings.mastodon_token.get_secret_value(), api_base_url=self.url,
                                        ratelimit_method="throw", version_check_mode="none", request_timeout=TIMEOUT_S)
        self.visibility = settings.mastodon_visibility
        self.replies = settings.poster_replies
        self.thread_messages, self.thread_chars = settings.thread_messages, settings.thread_chars
        self.me: str | None = None

    def call(self, function, *args, **params):
        return call(self.client, self.url, "DANN_MASTODON_TOKEN", function, *args, **params)

    def check(self, live: bool) -> None:
        account = self.call(self.client.account_verify_credentials)
        self.me = str(account.id)
        log.info("mastodon: signed in as @%s on %s", account.acct, self.url)
        if account.bot:
            return
        if not live:
            log.info("mastodon: @%s is not marked as a bot; a live run sets the flag", account.acct)
            return
        refusal = ("the account is not marked as a bot and dann may not set the flag ({}): tick 'This is an "
                   "automated account' in the account's profile settings")
        try:
            account = self.call(self.client.account_update_credentials, bot=True)
        except (RateLimited, Unreachable):
            raise
        except PosterError as error:
            raise Refused(refusal.format(error)) from None
        if not account.bot:  # a server that takes the request and ignores the field
            raise Refused(refusal.format("the server kept it off"))
        log.info("mastodon: marked @%s as a bot", account.acct)

    def post(self, text: str) -> str:
        return str(self.call(self.client.status_post, text[:MAX_CHARS], visibility=self.visibility).id)

    def mentions(self, after: str | None, depth_cap: int) -> tuple[list[Mention], str | None]:
        # min_id, not since_id: with more new mentions than a page, since_id gives the newest page and
        # those between are never seen; min_id gives the page right after the cursor, the next poll the rest.
        page = self.call(self.client.notifications, types=["mention"], min_id=after, limit=PAGE)
        found = []
        for notification in reversed(page):  # the API lists newest first
            status = notification.status
            if status is None:  # deleted since
                continue
            thread, dann_posts = self.thread_above(status, depth_cap)
            visibility = more_private(self.visibility, status.visibility)
            found.append(Mention(id=str(status.id), text=without_handles(plain(status.content)),
                                 author=status.account.acct, author_is_bot=bool(status.account.bot), thread=thread,
                                 dann_posts=dann_posts,
                                 reply_to=(str(status.id), status.account.acct, visibility)))
        return found, (str(page[0].id) if page else after)

    def thread_above(self, status, depth_cap: int) -> tuple[tuple[str, ...], int]:
        """The texts above `status`, the nearest kept within thread_messages and thread_chars,
        oldest first; and dann's posts among all of them, counted up to depth_cap."""
        if status.in_reply_to_id is None:
            return (), 0
        try:
            ancestors = self.call(self.client.status_context, status.id).ancestors
        except Gone:
            return (), 0
        nearest_first = list(reversed(ancestors))
        dann_posts = min(depth_cap, sum(str(above.account.id) == self.me for above in nearest_first))
        texts, chars = [], 0
        for above in nearest_first:
            text = without_handles(plain(above.content))
            if not text:
                continue
            if len(texts) >= self.thread_messages or chars + len(text) > self.thread_chars:
                break
            texts.append(text)
            chars += len(text)
        return tuple(reversed(texts)), dann_posts

    def reply(self, mention: Mention, text: str) -> str:
        status_id, acct, visibility = mention.reply_to
        # Mastodon threads a reply to the people it mentions: the author is named first.
        status = f"@{acct} {text}"[:MAX_CHARS]
        return str(self.call(self.client.status_post, status, in_reply_to_id=status_id, visibility=visibility).id)


def call(client, url: str, token_setting: str, function, *args, **params):
    """`function(*args, **params)` of Mastodon.py's `client`, its failures as the poster's errors."""
    try:
        return function(*args, **params)
    except mastodon.MastodonRatelimitError:
        # "throw" leaves the waiting to the poster; the client keeps the reset header, as Unix seconds.
        raise RateLimited("Mastodon answered 429", client.ratelimit_reset) from None
    except mastodon.MastodonUnauthorizedError:
        raise Unauthorized(f"Mastodon refused the token (401): check {token_setting} (an access token on "
                           f"{url}; the bot's needs scopes read and write)") from None
    except (mastodon.MastodonNetworkError, requests.RequestException):
        raise Unreachable(f"cannot reach Mastodon at {url}") from None
    except mastodon.MastodonServerError as error:
        raise Unreachable(f"Mastodon answered {status_of(error)}") from None
    except mastodon.MastodonNotFoundError as error:
        raise Gone(f"Mastodon answered 404: {message_of(error)}") from None
    except mastodon.MastodonAPIError as error:
        status = status_of(error)
        if status == 403:  # a scope the token lacks (then every request is refused), or one post's privacy
            raise Forbidden(f"Mastodon refused (403: {message_of(error)}); if every request is refused, "
                            f"{token_setting} needs scopes read and write") from None
        raise PosterError(f"Mastodon refused the request ({status}: {message_of(error)})") from None


class PlainText(HTMLParser):
    """A status's HTML as the words a person reads: tags dropped, and entities decoded (the
    parser's convert_charrefs). A line break or a new paragraph separates words."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.quoting = 0  # inside a quote's fallback ("RE: link"): another post's, not these words

    def handle_starttag(self, tag, attrs):
        if self.quoting or "quote-inline" in (dict(attrs).get("class") or "").split():
            self.quoting += tag not in ("br", "img", "hr")
            return
        if tag in ("br", "p"):
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if self.quoting and tag not in ("br", "img", "hr"):
            self.quoting -= 1

    def handle_data(self, data):
        if not self.quoting:
            self.parts.append(data)


def plain(html: str | None) -> str:
    parser = PlainText()
    parser.feed(html or "")
    parser.close()
    return "".join(parser.parts)


def more_private(ours: str, theirs: str | None) -> str:
    """The visibility of a reply: ours, or that of the status it answers where that is more private
    (a followers-only mention gets a followers-only answer, a direct one a direct one)."""
    if theirs not in VISIBILITIES:  # a server's own kind (such as "local"): ours
        return ours
    return max(ours, theirs, key=VISIBILITIES.index)


def status_of(error: mastodon.MastodonAPIError):
    """The HTTP status of Mastodon.py's error (its arguments: text, status, reason, server's message)."""
    return error.args[1] if len(error.args) > 1 else "an error"


def message_of(error: mastodon.MastodonAPIError) -> str:
    args = error.args
    return str(args[3] if len(args) > 3 and args[3] else args[2] if len(args) > 2 else args[0])
