"""The few endpoints of X's API v2 that the X destination uses, on a FakeServer."""

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

    def add(self, text: str, author_id: str, in_reply_to: str | None = None, username: str = "") -> str:
        tweet_id = str(next(self.ids))
        self.users.setdefault(author_id, username or f"user{author_id}")
        tweet = {"id": tweet_id, "text": text, "author_id": author_id, "edit_history_tweet_ids": [tweet_id]}
        if in_reply_to:
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": in_reply_to}]
        self.tweets[tweet_id] = tweet
        return tweet_id

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
