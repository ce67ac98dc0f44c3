"""The few endpoints of X's API v2 that the X destination and the learner use, on a FakeServer."""

import datetime
import itertools

DANN_ID = "100"


class FakeX:
    def __init__(self, server):
        self.server = server
        self.tweets: dict[str, dict] = {}
        self.users = {DANN_ID: "dann_ebooks"}
        self.ids = itertools.count(1000)
        server.route("GET", "/2/users/me", lambda r: (200, {"data": {"id": DANN_ID, "name": "dann",
                                                                        "username": "dann_ebooks"}}))
        server.route("POST", "/2/tweets", self.create)
        server.route("GET", f"/2/users/{DANN_ID}/mentions", self.mentions)
        server.route("GET", "/2/tweets/*", self.tweet)
        server.route("GET", "/2/users/by/username/*", self.user_by_name)
        server.route("GET", "/2/users/*", self.timeline)
        self.protected: set[str] = set()

    def add(self, text: str, author_id: str, in_reply_to: str | None = None, username: str = "",
            tweet_id: str | None = None) -> str:
        tweet_id = tweet_id or str(next(self.ids))
        self.users.setdefault(author_id, username or f"user{author_id}")
        created = datetime.datetime(2026, 3, 1, tzinfo=datetime.UTC) + datetime.timedelta(minutes=int(tweet_id) % 10**6)
        tweet = {"id": tweet_id, "text": text, "author_id": author_id, "edit_history_tweet_ids": [tweet_id],
                 "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        if in_reply_to:
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": in_reply_to}]
        self.tweets[tweet_id] = tweet
        return tweet_id

    def retweet(self, author_id: str, tweet_id: str) -> str:
        new = self.add(f"RT @{self.users[self.tweets[tweet_id]['author_id']]}: {self.tweets[tweet_id]['text']}",
                       author_id)
        self.tweets[new]["referenced_tweets"] = [{"type": "retweeted", "id": tweet_id}]
        return new

    def edit(self, tweet_id: str, text: str) -> str:
        """A new version of `tweet_id`: a new id, the old one gone from the timeline."""
        old = self.tweets.pop(tweet_id)
        new = self.add(text, old["author_id"])
        self.tweets[new]["edit_history_tweet_ids"] = [*old["edit_history_tweet_ids"], new]
        self.tweets[new]["created_at"] = old["created_at"]
        return new

    def user_by_name(self, request):
        name = request.path.rsplit("/", 1)[1]
        found = [a for a, n in self.users.items() if n == name]
        if not found:
            return 200, {"errors": [{"value": name, "detail": f"Could not find user with username: [{name}].",
                                     "title": "Not Found Error", "type": "https://api.twitter.com/2/problems/resource-not-found"}]}
        return 200, {"data": {"id": found[0], "name": name, "username": name, "protected": found[0] in self.protected}}

    def timeline(self, request):
        user_id, _, rest = request.path.removeprefix("/2/users/").partition("/")
        if rest != "tweets":
            return 404, {"title": "Not Found Error"}
        theirs = sorted((t for t in self.tweets.values() if t["author_id"] == user_id), key=lambda t: -int(t["id"]))
        start, size = int(request.query.get("pagination_token") or 0), int(request.query.get("max_results", 10))
        page = theirs[start : start + size]
        meta = {"result_count": len(page), **({"next_token": str(start + size)} if start + size < len(theirs) else {})}
        return 200, {"data": page, "meta": meta} if page else {"meta": meta}

    def create(self, request):
        body = request.json
        reply = body.get("reply", {}).get("in_reply_to_tweet_id")
        tweet_id = self.add(body["text"], DANN_ID, reply)
        return 201, {"data": {"id": tweet_id, "text": body["text"]}}

    def mentions(self, request):
        since = int(request.query.get("since_id") or 0)
        found = [t for t in self.tweets.values() if "@dann_ebooks" in t["text"] and t["author_id"] != DANN_ID
                 and int(t["id"]) > since]
        found.sort(key=lambda t: -int(t["id"]))  # newest first, as X lists them
        users = [{"id": a, "name": n, "username": n} for a, n in self.users.items()
                 if any(t["author_id"] == a for t in found)]
        meta = {"result_count": len(found), **({"newest_id": found[0]["id"]} if found else {})}
        return 200, {"data": found, "includes": {"users": users}, "meta": meta} if found else {"meta": meta}

    def tweet(self, request):
        tweet = self.tweets.get(request.path.rsplit("/", 1)[1])
        if tweet is None:
            return 404, {"errors": [{"message": "Could not find tweet"}], "title": "Not Found Error"}
        return 200, {"data": tweet}

    def posted(self) -> list[dict]:
        return [r.json for r in self.server.of("POST", "/2/tweets")]
