"""Learning from the person's own accounts: their new posts, edits and deletions reach the post store.

For each account named in the settings (DANN_LEARN_MASTODON_ACCOUNT, DANN_LEARN_BLUESKY_HANDLE,
DANN_LEARN_X_USER; the person's, not the bot's), one poll:
- reads the account's posts newest first: the first time as far back as the API allows (up to
  DANN_LEARN_BACKFILL_MAX), afterwards the pages down to the newest post already stored, and at
  least RECENT_PAGES pages;
- keeps only public posts and replies. Boosts and reposts, followers-only, direct and unlisted
  posts are kept out and counted; of a quote post only the person's own words are kept;
- stores them (dann/state/posts.py): new posts added, edits applied;
- reconciles: a stored post of that account within the span the poll listed completely, and no
  longer listed, was deleted on the platform, so it is deleted from the store.

It uses the clients the poster uses (Mastodon.py, the atproto SDK, tweepy), with their rate limits:
a poll waits out a 429 once, then gives up until the next one. A platform that is down is logged
and tried again at the next poll; an unknown or private account, or a refused token, is one line.
"""

import dataclasses
import datetime
import html
import logging
import time
from collections import Counter

import mastodon
import tweepy
from atproto import Client
from atproto_client.request import Request

from dann.poster import bluesky as bsky
from dann.poster import mastodon as masto
from dann.poster import x as xapi
from dann.poster.destination import PosterError, RateLimited, Unreachable, without_handles
from dann.state.posts import PostStore, StoredPost, post_store

log = logging.getLogger("dann.learn")
PAGE = 40
RECENT_PAGES = 2  # reconciled on every poll: edits and deletions of the newest posts are seen
MAX_WAIT_S = 900  # the longest a poll waits out a rate limit
X_TIMELINE_CAP = 3200  # GET /2/users/:id/tweets reaches back this far


class LearnError(PosterError):
    """An account that cannot be learned from as configured: unknown, private, or a refused token."""


@dataclasses.dataclass
class Polled:
    """What one poll of one account found: its public posts and replies, what was kept out and why,
    and the time from which the listing was complete (for reconciling deletions)."""

    platform: str
    account: str
    posts: list[StoredPost]
    kept_out: Counter
    complete_since: str | None


def iso(moment) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec="seconds")


class MastodonLearner:
    platform = "mastodon"

    def __init__(self, settings):
        handle = settings.learn_mastodon_account.strip().lstrip("@")
        user, _, server = handle.partition("@")
        if not user or not server:
            raise LearnError(f"DANN_LEARN_MASTODON_ACCOUNT must be @user@server, not {settings.learn_mastodon_account!r}")
        self.account, self.user = f"@{user}@{server}", user
        self.url = settings.learn_mastodon_url or f"https://{server}"
        token = settings.learn_mastodon_token.get_secret_value() if settings.learn_mastodon_token else None
        self.client = mastodon.Mastodon(access_token=token, api_base_url=self.url, ratelimit_method="throw",
                                        version_check_mode="none", request_timeout=masto.TIMEOUT_S)
        self.backfill_max = settings.learn_backfill_max

    def call(self, function, *args, **params):
        return masto.call(self.client, self.url, "DANN_LEARN_MASTODON_TOKEN", function, *args, **params)

    def poll(self, newest_stored: str | None) -> Polled:
        try:
            account = self.call(self.client.account_lookup, self.user)
        except masto.Gone:
            raise LearnError(f"there is no Mastodon account {self.account} (on {self.url})") from None
        found, kept, oldest = [], Counter(), None
        limit = self.backfill_max if newest_stored is None else None
        max_id, pages = None, 0
        while True:
            page = self.call(self.client.account_statuses, account.id, max_id=max_id, limit=PAGE)
            pages += 1
            for status in page:
                oldest = iso(status.created_at)
                if status.reblog is not None:
                    kept["boosts"] += 1
                elif status.visibility != "public":
                    kept[status.visibility] += 1
                elif text := without_handles(masto.plain(status.content)).strip():
                    found.append(StoredPost(self.platform, str(status.id),
                                            "reply" if status.in_reply_to_id else "post", text, iso(status.created_at),
                                            iso(status.edited_at), self.account))
                else:
                    kept["empty"] += 1
            if len(page) < PAGE or (limit is not None and len(found) + sum(kept.values()) >= limit):
                complete = len(page) < PAGE  # the whole history was listed
                break
            if limit is None and pages >= RECENT_PAGES and oldest is not None and oldest < newest_stored:
                complete = False
                break
            max_id = page[-1].id
        return Polled(self.platform, self.account, found, kept, "" if complete else oldest)


class BlueskyLearner:
    """The account's feed from the public AppView (app.bsky.feed.getAuthorFeed): no login, as
    anyone reads a public profile. Reposts are kept out; of a quote post, only the person's words."""

    platform = "bluesky"
    page = 100  # the API's largest

    def __init__(self, settings):
        self.account = settings.learn_bluesky_handle.strip().removeprefix("@")
        if not self.account or " " in self.account:
            raise LearnError(f"DANN_LEARN_BLUESKY_HANDLE must be a handle such as sam.bsky.social, not "
                             f"{settings.learn_bluesky_handle!r}")
        self.url = settings.learn_bluesky_url
        self.client = Client(self.url, request=Request(timeout=bsky.TIMEOUT_S))
        self.backfill_max = settings.learn_backfill_max

    def poll(self, newest_stored: str | None) -> Polled:
        found, kept, oldest, cursor, pages = [], Counter(), None, None, 0
        limit = self.backfill_max if newest_stored is None else None
        while True:
            try:
                feed = bsky.call(self.url, "the feed is public: check DANN_LEARN_BLUESKY_URL", self.client.get_author_feed,
                                 self.account, cursor=cursor, filter="posts_with_replies", limit=self.page)
            except PosterError as error:
                if "Profile not found" in str(error) or "actor" in str(error).lower():
                    raise LearnError(f"there is no Bluesky account {self.account} (on {self.url})") from None
                raise
            pages += 1
            for item in feed.feed:
                post = item.post
                oldest = iso(post.record.created_at)
                if item.reason is not None or post.author.handle != self.account:
                    kept["reposts"] += 1
                    continue
                if post.record.embed is not None and "record" in (post.record.embed.py_type or ""):
                    kept["quoted_text"] += 1  # the quoted post is another's: only these words are stored
                text = bsky.without_handles(post.record.text)
                if not text:
                    kept["empty"] += 1
                    continue
                found.append(StoredPost(self.platform, post.uri, "reply" if post.record.reply else "post", text,
                                        iso(post.record.created_at), None, self.account))
            cursor = feed.cursor
            if not cursor or not feed.feed or (limit is not None and len(found) + sum(kept.values()) >= limit):
                complete = not cursor or not feed.feed
                break
            if limit is None and pages >= RECENT_PAGES and oldest is not None and oldest < newest_stored:
                complete = False
                break
        return Polled(self.platform, self.account, found, kept, "" if complete else oldest)


class XLearner:
    """The account's timeline through API v2 (GET /2/users/:id/tweets, the newest 3,200 at most),
    with an app's bearer token. Retweets are kept out; of a quote, only the person's words; an
    edited tweet is stored under its first id with its latest text."""

    platform = "x"
    page = 100  # the API's largest
    fields = ["created_at", "referenced_tweets", "edit_history_tweet_ids", "note_tweet"]

    def __init__(self, settings):
        self.account = settings.learn_x_user.strip().removeprefix("@")
        if not self.account or not self.account.replace("_", "").isalnum():
            raise LearnError(f"DANN_LEARN_X_USER must be an X user name, not {settings.learn_x_user!r}")
        if settings.learn_x_bearer_token is None:
            raise LearnError("reading an X account needs DANN_LEARN_X_BEARER_TOKEN (an app's bearer token, from "
                             "the developer portal)")
        self.client = tweepy.Client(bearer_token=settings.learn_x_bearer_token.get_secret_value())
        adapter = xapi.Rehost(settings.learn_x_api_url)
        self.client.session.mount("https://", adapter)
        self.client.session.mount("http://", adapter)
        self.backfill_max = settings.learn_backfill_max

    def call(self, function, *args, **params):
        return xapi.call(function, *args, user_auth=False, refused="X refused the bearer token (401): check "
                         "DANN_LEARN_X_BEARER_TOKEN", **params)

    def poll(self, newest_stored: str | None) -> Polled:
        user = self.call(self.client.get_user, username=self.account, user_fields=["protected"]).data
        if user is None:
            raise LearnError(f"there is no X account @{self.account}")
        if user.protected:
            raise LearnError(f"the X account @{self.account} is protected: dann learns from public posts only")
        found, kept, oldest, token, pages = [], Counter(), None, None, 0
        limit = self.backfill_max if newest_stored is None else None
        while True:
            answer = self.call(self.client.get_users_tweets, user.id, max_results=self.page, pagination_token=token,
                               tweet_fields=self.fields)
            pages += 1
            for tweet in answer.data or []:
                oldest = iso(tweet.created_at)
                kinds = {ref.type for ref in tweet.referenced_tweets or []}
                if "retweeted" in kinds:
                    kept["reposts"] += 1
                    continue
                if "quoted" in kinds:
                    kept["quoted_text"] += 1  # the quoted tweet is another's; its link becomes a domain
                note = (tweet.data.get("note_tweet") or {}).get("text")  # a long post's whole text
                text = html.unescape(without_handles(note or tweet.text)).strip()
                if not text:
                    kept["empty"] += 1
                    continue
                history = tweet.edit_history_tweet_ids or [tweet.id]
                found.append(StoredPost(self.platform, str(history[0]), "reply" if "replied_to" in kinds else "post",
                                        text, iso(tweet.created_at), iso(tweet.created_at) if len(history) > 1 else None,
                                        self.account))
            token = (answer.meta or {}).get("next_token")
            listed = len(found) + sum(kept.values())
            if not token or (limit is not None and listed >= limit):
                # The API lists the newest 3,200 only: past that, the end of the list is not the account's first post.
                complete = not token and listed < X_TIMELINE_CAP
                break
            if limit is None and pages >= RECENT_PAGES and oldest is not None and oldest < newest_stored:
                complete = False
                break
        return Polled(self.platform, self.account, found, kept, "" if complete else oldest)


def learners(settings) -> list:
    """One learner per account the settings name."""
    found = []
    if settings.learn_mastodon_account:
        found.append(MastodonLearner(settings))
    if settings.learn_bluesky_handle:
        found.append(BlueskyLearner(settings))
    if settings.learn_x_user:
        found.append(XLearner(settings))
    return found


def poll_account(learner, store: PostStore) -> dict:
    """One poll of one account into `store`; a rate limit is waited out once."""
    newest = store.newest(learner.platform, learner.account)  # None: never polled, so backfill
    for attempt in (1, 2):
        try:
            polled = learner.poll(newest)
            break
        except RateLimited as limited:
            wait = max(1.0, min(MAX_WAIT_S, (limited.reset_at or time.time() + 60) - time.time()))
            if attempt == 2:
                raise
            log.info("%s %s: rate limited; waiting %.0f s", learner.platform, learner.account, wait)
            time.sleep(wait)
    added = store.add(polled.posts, learner.platform)
    store.note_poll(learner.platform, learner.account, len(polled.posts), dict(polled.kept_out))
    deleted = 0
    if polled.complete_since is not None:
        deleted = store.reconcile(learner.platform, learner.account, [p.post_id for p in polled.posts],
                                  polled.complete_since)
    summary = {"platform": learner.platform, "account": learner.account, "listed": len(polled.posts),
               **added.as_dict(), "deleted": deleted, "kept_out": dict(polled.kept_out),
               "backfill": newest is None}
    log.info("learned from %s %s: %s", learner.platform, learner.account, summary)
    return summary


def learn_once(settings, store: PostStore | None = None) -> list[dict]:
    """Poll every account the settings name. A platform that is down, or an account that cannot be
    read, is logged and left for the next poll; the others go on."""
    store = store or post_store(settings)
    results = []
    for learner in learners(settings):
        try:
            results.append(poll_account(learner, store))
        except Unreachable as error:
            log.warning("cannot learn from %s %s now (%s); trying again at the next poll", learner.platform,
                        learner.account, error)
            results.append({"platform": learner.platform, "account": learner.account, "error": str(error)})
        except PosterError as error:
            log.error("cannot learn from %s %s: %s", learner.platform, learner.account, error)
            results.append({"platform": learner.platform, "account": learner.account, "error": str(error)})
    return results
