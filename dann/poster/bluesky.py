"""Bluesky through the atproto SDK's Client, with an app password (DANN_BLUESKY_HANDLE,
DANN_BLUESKY_APP_PASSWORD) on DANN_BLUESKY_URL (the account's PDS; https://bsky.social by default).

- check: logs in (com.atproto.server.createSession) and refuses an account whose profile does not
  carry the `bot` self-label. The login is a POST, so a dry run skips it, and then reads no mentions.
- post and reply: an app.bsky.feed.post record that carries the `bot` self-label itself, so that
  every post says it is a bot's wherever it is shown.
- mentions: app.bsky.notification.listNotifications (reasons "mention" and "reply") newer than the
  newest indexedAt seen, and for each the posts above it (app.bsky.feed.getPostThread), for
  priming and the depth cap.
"""

import datetime
import logging
import re
import time

import httpx
from atproto import Client, models
from atproto_client import exceptions
from atproto_client.request import Request
from atproto_core.exceptions import AtProtocolError

from dann.poster.destination import Mention, PosterError, RateLimited, Refused, Unauthorized, Unreachable

log = logging.getLogger("dann.poster")
MAX_CHARS = 300  # Bluesky counts graphemes: the poster's cut to 300 characters is never more
TIMEOUT_S = 30
PAGE = 50  # notifications read a poll: far more than a minute brings
REASONS = ("mention", "reply")
LEADING_HANDLES = re.compile(r"^(\s*@[\w.:-]+)+\s*")
CREDENTIALS = "DANN_BLUESKY_HANDLE and DANN_BLUESKY_APP_PASSWORD (an app password, from the Bluesky app's " \
              "Settings -> Privacy and security -> App passwords)"


class BlueskyDestination:
    name = "bluesky"
    max_chars = MAX_CHARS

    def __init__(self, settings):
        self.handle = settings.bluesky_handle.removeprefix("@")
        password = settings.bluesky_app_password
        self.password = password.get_secret_value() if password is not None else ""
        self.url = settings.bluesky_url
        self.client = Client(self.url, request=Request(timeout=TIMEOUT_S))
        self.replies = settings.poster_replies
        self.thread_messages, self.thread_chars = settings.thread_messages, settings.thread_chars
        self.me: str | None = None  # dann's DID, once logged in

    def call(self, function, *args, **params):
        return call(self.url, f"check {CREDENTIALS}", function, *args, **params)

    def check(self, live: bool) -> None:
        if not live:
            log.info("bluesky: dry run: not logging in (the login is a POST), so no mentions are read")
            return
        if not self.handle or not self.password:
            raise Unauthorized(f"set {CREDENTIALS}")
        profile = self.call(self.login)
        if profile is None:  # a PDS without app.bsky: nothing to read the label from
            raise Refused(f"{self.url} does not serve app.bsky.actor.getProfile, so @{self.handle}'s bot label "
                          "cannot be seen; set DANN_BLUESKY_URL to the account's PDS or https://bsky.social")
        # The account's own label (src is its DID), not one a labeler put on it.
        if not any(label.val == "bot" and label.src == profile.did and not label.neg for label in profile.labels or []):
            raise Refused(f"@{self.handle} is not labelled as a bot, and dann will not post from an account not "
                          "labelled as a bot: add the self-label \"bot\" to its profile (in the Bluesky app's "
                          "Settings -> Moderation where it offers it, or in the labels of the account's "
                          "app.bsky.actor.profile record: {\"values\": [{\"val\": \"bot\"}]}), then start again")
        self.me = profile.did
        log.info("bluesky: logged in as @%s (%s), labelled as a bot", profile.handle, profile.did)

    def login(self):
        try:
            return self.client.login(self.handle, self.password)
        except (exceptions.UnauthorizedError, exceptions.BadRequestError) as error:
            raise Unauthorized(f"Bluesky refused the login ({error}); check {CREDENTIALS}") from None

    def post(self, text: str, reply: models.AppBskyFeedPost.ReplyRef | None = None) -> str:
        # The post's own self-label: each post says it is a bot's, not only the profile.
        labels = models.ComAtprotoLabelDefs.SelfLabels(values=[models.ComAtprotoLabelDefs.SelfLabel(val="bot")])
        record = models.AppBskyFeedPost.Record(created_at=self.client.get_current_time_iso(), text=text,
                                               labels=labels, reply=reply)
        return self.call(self.client.app.bsky.feed.post.create, self.me, record).uri

    def mentions(self, after: str | None, depth_cap: int) -> tuple[list[Mention], str | None]:
        if self.me is None:
            return [], after  # a dry run does not log in
        page = self.call(self.client.app.bsky.notification.list_notifications,
                         models.AppBskyNotificationListNotifications.Params(limit=PAGE, reasons=list(REASONS)))
        new = [n for n in page.notifications if n.reason in REASONS and n.author.did != self.me
               and (after is None or instant(n.indexed_at) > instant(after))]
        new.sort(key=lambda n: instant(n.indexed_at))  # the API lists the newest first
        found = [self.mention(n, depth_cap) for n in new]
        return found, (new[-1].indexed_at if new else after)

    def mention(self, notification, depth_cap: int) -> Mention:
        record = notification.record
        here = models.ComAtprotoRepoStrongRef.Main(uri=notification.uri, cid=notification.cid)
        reply = getattr(record, "reply", None)
        author = notification.author
        is_bot = any(label.val == "bot" and not label.neg for label in author.labels or [])
        texts, chars, dann_posts, full = [], 0, 0, False
        # The nearest first; a bot's is not answered, so its thread is not read.
        for post in [] if is_bot else self.call(self.parents, notification.uri, depth_cap):
            if post.author.did == self.me:
                dann_posts = min(depth_cap, dann_posts + 1)
            text = without_handles(getattr(post.record, "text", ""))
            # Once one does not fit, the older ones are only counted: the thread primed is unbroken.
            full = full or len(texts) == self.thread_messages or chars + len(text) > self.thread_chars
            if text and not full:
                texts.append(text)
                chars += len(text)
        return Mention(id=notification.uri, text=without_handles(getattr(record, "text", "")), author=author.handle,
                       author_is_bot=is_bot, thread=tuple(reversed(texts)), dann_posts=dann_posts,
                       reply_to=models.AppBskyFeedPost.ReplyRef(parent=here, root=reply.root if reply else here))

    def parents(self, uri: str, depth_cap: int) -> list:
        """The posts above `uri`, the nearest first: enough for priming, and for depth_cap of dann's
        posts in a chain where dann's and another's alternate."""
        height = min(1000, 2 * depth_cap + self.thread_messages)
        try:
            node = self.client.get_post_thread(uri, depth=0, parent_height=height).thread
        except exceptions.BadRequestError:  # deleted since: nothing above it to read
            return []
        posts = []
        while isinstance(node := getattr(node, "parent", None), models.AppBskyFeedDefs.ThreadViewPost):
            posts.append(node.post)  # a deleted or blocked post (NotFoundPost, BlockedPost) ends the chain
        return posts

    def reply(self, mention: Mention, text: str) -> str:
        return self.post(text, reply=mention.reply_to)


def call(url: str, fix: str, function, *args, **params):
    """`function(*args, **params)` of the SDK, its failures turned into the poster's; `fix` says
    what to check when the server refuses the session."""
    try:
        return function(*args, **params)
    except exceptions.RateLimitExceededError as error:  # before RequestException, its base
        raise RateLimited("Bluesky answered 429", reset_time(error)) from None
    except exceptions.UnauthorizedError as error:
        raise Unauthorized(f"Bluesky refused the session ({error}); {fix}") from None
    except exceptions.NetworkError as error:  # a transport failure, a timeout, or a 502
        raise Unreachable(f"cannot reach {url} ({str(error) or error.__cause__ or type(error).__name__})") from None
    except httpx.TransportError as error:  # the few the SDK lets through, as a dropped connection
        raise Unreachable(f"cannot reach {url} ({str(error) or type(error).__name__})") from None
    except exceptions.RequestErrorBase as error:
        if error.response is not None and error.response.status_code >= 500:
            raise Unreachable(f"{url} answered {error}") from None
        raise PosterError(f"Bluesky refused the request ({error})") from None
    except AtProtocolError as error:  # an answer the SDK cannot read
        raise PosterError(f"Bluesky answered what the SDK cannot read ({type(error).__name__}: {error})") from None


def reset_time(error: exceptions.RateLimitExceededError) -> float | None:
    """Unix seconds of the `ratelimit-reset` header, else now plus `retry-after`, else None."""
    if error.reset_at is not None:
        return error.reset_at.timestamp()
    return None if error.retry_after is None else time.time() + error.retry_after


def instant(stamp: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def without_handles(text: str) -> str:
    """A post's words without the @handles a reply starts with."""
    return LEADING_HANDLES.sub("", text).strip()
