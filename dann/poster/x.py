"""X (Twitter) through tweepy's API v2 client, with OAuth 1.0a user keys (DANN_X_*).

- post: POST /2/tweets, the text cut to X's weighted 280 (most scripts count 1 a character;
  CJK, emoji and some symbols count 2).
- mentions, only with DANN_X_REPLIES=true, as reading them costs more on X's paid tiers:
  GET /2/users/:id/mentions since the last one seen, and for each the tweets it replies to, up
  the thread (GET /2/tweets/:id, one a tweet), for priming and the depth cap.
- X's API tells nothing of an "Automated" account label: the account's owner sets it in X's
  settings (Account information -> Automation), and no author can be recognised as a bot here.

tweepy talks to api.twitter.com only: DANN_X_API_URL, for a local stand-in, rewrites that host in
the requests its session sends. Every request has a timeout (tweepy sets none).
"""

import logging

import requests
import tweepy

from dann.poster.destination import (
    Forbidden,
    Mention,
    PosterError,
    RateLimited,
    Unauthorized,
    Unreachable,
    without_handles,
)

log = logging.getLogger("dann.poster")
X_HOST = "https://api.twitter.com"
TIMEOUT_S = 30
MAX_CHARS = 280
MAX_WALK = 50  # tweets followed up one thread at most (each one request), whatever the settings
KEYS = ("x_api_key", "x_api_secret", "x_access_token", "x_access_secret")


def weight(character: str) -> int:
    """X's weight of one character (twitter-text v3): 1 for the common Latin, Greek, Cyrillic,
    Hebrew, Arabic, Indic and punctuation ranges, 2 for everything else."""
    code = ord(character)
    light = code <= 0x10FF or 0x2000 <= code <= 0x200D or 0x2010 <= code <= 0x201F or 0x2032 <= code <= 0x2037
    return 1 if light else 2


def fit(text: str, limit: int = MAX_CHARS) -> str:
    """The longest prefix of `text` within X's weighted limit."""
    total = 0
    for i, character in enumerate(text):
        total += weight(character)
        if total > limit:
            return text[:i]
    return text


KEYS_HINT = ("X refused the keys (401): check DANN_X_API_KEY, DANN_X_API_SECRET, DANN_X_ACCESS_TOKEN and "
             "DANN_X_ACCESS_SECRET")


def call(function, *args, user_auth: bool, refused: str, **params):
    """`function(*args, **params)` of tweepy's Client, its failures as the poster's; `refused` is
    the one line for a 401."""
    try:
        return function(*args, user_auth=user_auth, **params)
    except tweepy.TooManyRequests as error:
        raise RateLimited("X answered 429", error.reset_time) from None
    except tweepy.Unauthorized:
        raise Unauthorized(refused) from None
    except tweepy.Forbidden as error:
        raise Forbidden(f"X refused (403: {one_line(error)}); if every request is refused, the app needs Read "
                        "and Write permission, and keys made after that was set") from None
    except tweepy.TwitterServerError as error:
        raise Unreachable(f"X answered {error.response.status_code}") from None
    except requests.RequestException as error:
        raise Unreachable(f"cannot reach X ({type(error).__name__})") from None
    except tweepy.HTTPException as error:
        raise PosterError(f"X refused the request ({error.response.status_code}: {one_line(error)})") from None


class Rehost(requests.adapters.HTTPAdapter):
    """Sends what tweepy addresses to api.twitter.com to `base` instead, with a timeout."""

    def __init__(self, base: str):
        super().__init__()
        self.base = base.rstrip("/")

    def send(self, request, timeout=None, **options):
        if request.url.startswith(X_HOST):
            request.url = self.base + request.url[len(X_HOST):]
        return super().send(request, timeout=timeout or TIMEOUT_S, **options)


class XDestination:
    name = "x"
    max_chars = MAX_CHARS

    def __init__(self, settings):
        missing = [f"DANN_{key.upper()}" for key in KEYS if getattr(settings, key) is None]
        if missing:
            raise PosterError(f"X needs all four keys: set {', '.join(missing)} (or none of them)")
        keys = [getattr(settings, key).get_secret_value() for key in KEYS]
        self.client = tweepy.Client(consumer_key=keys[0], consumer_secret=keys[1], access_token=keys[2],
                                    access_token_secret=keys[3])
        adapter = Rehost(settings.x_api_url)
        self.client.session.mount("https://", adapter)
        self.client.session.mount("http://", adapter)
        self.replies = settings.poster_replies and settings.x_replies
        self.thread_messages, self.thread_chars = settings.thread_messages, settings.thread_chars
        self.me: str | None = None

    def call(self, function, *args, **params):
        return call(function, *args, user_auth=True, refused=KEYS_HINT, **params)

    def check(self, live: bool) -> None:
        me = self.call(self.client.get_me).data
        self.me = str(me.id)
        log.info("x: signed in as @%s; mark it as automated in X's settings if it is not", me.username)

    def post(self, text: str) -> str:
        return str(self.call(self.client.create_tweet, text=fit(text)).data["id"])

    def mentions(self, after: str | None, depth_cap: int) -> tuple[list[Mention], str | None]:
        page = self.call(self.client.get_users_mentions, self.me, since_id=after,
                         tweet_fields=["author_id", "referenced_tweets"], expansions=["author_id"])
        users = {str(u.id): u.username for u in (page.includes or {}).get("users", [])}
        found = []
        for tweet in sorted(page.data or [], key=lambda t: int(t.id)):
            thread, dann_posts = self.thread_above(tweet, depth_cap)
            found.append(Mention(id=str(tweet.id), text=without_handles(tweet.text),
                                 author=users.get(str(tweet.author_id), str(tweet.author_id)), author_is_bot=False,
                                 thread=thread, dann_posts=dann_posts, reply_to=str(tweet.id)))
        newest = (page.meta or {}).get("newest_id") or (found[-1].id if found else after)
        return found, newest

    def thread_above(self, tweet, depth_cap: int) -> tuple[tuple[str, ...], int]:
        texts, chars, dann_posts = [], 0, 0
        # As far as Bluesky's walk reads: enough for priming, and for depth_cap of dann's tweets in a
        # chain where dann's and another's alternate. Each step is one request of X's quota.
        for _ in range(min(MAX_WALK, 2 * depth_cap + self.thread_messages)):
            parent_id = next((r.id for r in tweet.referenced_tweets or [] if r.type == "replied_to"), None)
            if parent_id is None:
                break
            try:
                tweet = self.call(self.client.get_tweet, parent_id, tweet_fields=["author_id", "referenced_tweets"]).data
            except PosterError:  # deleted or protected: the thread ends here
                break
            if tweet is None:
                break
            if str(tweet.author_id) == self.me:
                dann_posts += 1
                if dann_posts >= depth_cap:
                    break
            text = without_handles(tweet.text)
            if text and len(texts) < self.thread_messages and chars + len(text) <= self.thread_chars:
                texts.append(text)
                chars += len(text)
        return tuple(reversed(texts)), dann_posts

    def reply(self, mention: Mention, text: str) -> str:
        return str(self.call(self.client.create_tweet, text=fit(text), in_reply_to_tweet_id=mention.reply_to).data["id"])


def one_line(error: tweepy.HTTPException) -> str:
    return "; ".join(error.api_messages) or str(error.response.reason)
