"""A fake of the Bluesky endpoints dann uses (under /xrpc/), on a FakeServer, with the posts and
notifications held in memory for the tests to drive:

    bsky = FakeBluesky(server)                     # dann.test / app-pass, labelled as a bot
    root = bsky.post("sam.test", "hi all")         # a post nobody is told of (by "dann.test": dann's)
    uri = bsky.mention("sam.test", "@dann.test hi", parent=root)   # a post and dann's notification
    bsky.posted()                                  # the records dann created, oldest first

Every answer is checked against the atproto SDK's models (string formats included); one that
does not fit is answered 500 and kept in `invalid`, which the tests assert empty.
"""

import base64
import datetime
import hashlib
import json

from atproto import models
from atproto_client.exceptions import ModelError
from atproto_client.models.utils import get_or_create

HANDLE, PASSWORD = "dann.test", "app-pass"
XRPC = "/xrpc/"
EPOCH = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"


def did_of(handle: str) -> str:
    return "did:plc:" + handle.replace(".", "-")


def jwt(subject: str, scope: str) -> str:
    """A well-formed unsigned JWT: the SDK reads its `exp` (far off, so it never refreshes)."""
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return ".".join([part({"alg": "none", "typ": "JWT"}), part({"sub": subject, "scope": scope, "exp": 4_000_000_000}),
                     "c2ln"])


class FakeBluesky:
    def __init__(self, server, *, handle: str = HANDLE, password: str = PASSWORD, bot: bool = True):
        self.server = server
        self.handle, self.password, self.did = handle, password, did_of(handle)
        self.access, self.refresh = jwt(self.did, "com.atproto.appPass"), jwt(self.did, "com.atproto.refresh")
        self.bots: set[str] = {self.did} if bot else set()  # DIDs that carry the `bot` self-label
        self.labeler: str | None = None  # a DID: the bot labels are that labeler's, not each account's own
        self.posts: dict[str, dict] = {}  # uri -> {"uri", "cid", "did", "record", "indexedAt", "created"}
        self.notifications: list[dict] = []  # oldest first
        self.invalid: list[str] = []
        self.count = 0
        for method, name, answer in [
            ("POST", "com.atproto.server.createSession", self.create_session),
            ("POST", "com.atproto.server.refreshSession", self.refresh_session),
            ("GET", "app.bsky.actor.getProfile", self.get_profile),
            ("POST", "com.atproto.repo.createRecord", self.create_record),
            ("GET", "app.bsky.notification.listNotifications", self.list_notifications),
            ("GET", "app.bsky.feed.getPostThread", self.get_post_thread),
        ]:
            server.route(method, XRPC + name, self.guarded(answer))
        # The public AppView's feed of one account: no session needed, as for anyone reading a profile.
        server.route("GET", XRPC + "app.bsky.feed.getAuthorFeed", self.unguarded(self.get_author_feed))
        self.reposts: list[tuple[str, str, str]] = []  # (reposter's did, uri reposted, indexedAt)

    # --- what the tests drive ----------------------------------------------------------------

    def post(self, handle: str, text: str, parent: str | None = None, *, bot: bool = False) -> str:
        """A post by `handle` (a reply to `parent`'s uri when given); returns its uri."""
        did = did_of(handle)
        if bot:
            self.bots.add(did)
        record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": self.stamp()}
        if parent is not None:
            above = self.posts[parent]
            root = above["record"].get("reply", {}).get("root") or {"uri": above["uri"], "cid": above["cid"]}
            record["reply"] = {"root": root, "parent": {"uri": above["uri"], "cid": above["cid"]}}
        return self.store(did, record)

    def mention(self, handle: str, text: str, parent: str | None = None, *, bot: bool = False) -> str:
        """A post that tells dann: a reply to one of dann's posts ("reply"), or one naming it ("mention")."""
        uri = self.post(handle, text, parent, bot=bot)
        post = self.posts[uri]
        reason = "reply" if parent is not None and self.posts[parent]["did"] == self.did else "mention"
        self.notifications.append({"uri": uri, "cid": post["cid"], "author": self.profile(post["did"]),
                                   "reason": reason, "record": post["record"], "isRead": False,
                                   "indexedAt": post["indexedAt"]})
        return uri

    def repost(self, handle: str, uri: str) -> None:
        self.reposts.append((did_of(handle), uri, self.stamp()))

    def quote(self, handle: str, text: str, uri: str) -> str:
        """A post by `handle` quoting `uri`: the quoted post is embedded, not in the text."""
        record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": self.stamp(),
                  "embed": {"$type": "app.bsky.embed.record", "record": {"uri": uri, "cid": self.posts[uri]["cid"]}}}
        return self.store(did_of(handle), record)

    def delete(self, uri: str) -> None:
        del self.posts[uri]

    def posted(self) -> list[dict]:
        """The records dann created (through createRecord), oldest first."""
        return [p["record"] for p in self.posts.values() if p["created"]]

    # --- the endpoints -----------------------------------------------------------------------

    def create_session(self, request):
        body = request.json
        if body.get("identifier") not in (self.handle, self.did) or body.get("password") != self.password:
            return 401, {"error": "AuthenticationRequired", "message": "Invalid identifier or password"}
        return 200, self.checked(self.session(), models.ComAtprotoServerCreateSession.Response)

    def refresh_session(self, request):
        if request.headers.get("authorization") != f"Bearer {self.refresh}":
            return 400, {"error": "ExpiredToken", "message": "Token has expired"}
        return 200, self.checked(self.session(), models.ComAtprotoServerRefreshSession.Response)

    def get_profile(self, request):
        actor = request.query.get("actor", "")
        did = actor if actor.startswith("did:") else did_of(actor)
        return 200, self.checked(self.profile(did), models.AppBskyActorDefs.ProfileViewDetailed)

    def create_record(self, request):
        body = request.json
        if body.get("repo") not in (self.did, self.handle) or body.get("collection") != "app.bsky.feed.post":
            return 400, {"error": "InvalidRequest", "message": "Input/repo must be the session's"}
        self.checked(body["record"], models.AppBskyFeedPost.Record)
        uri = self.store(self.did, body["record"], created=True)
        answer = {"uri": uri, "cid": self.posts[uri]["cid"], "validationStatus": "valid"}
        return 200, self.checked(answer, models.ComAtprotoRepoCreateRecord.Response)

    def list_notifications(self, request):
        limit = int(request.query.get("limit", 50))
        newest_first = list(reversed(self.notifications))[:limit]
        return 200, self.checked({"notifications": newest_first}, models.AppBskyNotificationListNotifications.Response)

    def get_author_feed(self, request):
        actor = request.query.get("actor", "")
        did = actor if actor.startswith("did:") else did_of(actor)
        if did not in {p["did"] for p in self.posts.values()} | {r[0] for r in self.reposts}:
            return 400, {"error": "InvalidRequest", "message": "Profile not found"}
        items = [(p["indexedAt"], {"post": self.post_view(uri)}) for uri, p in self.posts.items() if p["did"] == did]
        items += [(when, {"post": self.post_view(uri), "reason": {
            "$type": "app.bsky.feed.defs#reasonRepost", "by": self.profile(by), "indexedAt": when}})
            for by, uri, when in self.reposts if by == did and uri in self.posts]
        items.sort(key=lambda item: item[0], reverse=True)  # newest first
        start, limit = int(request.query.get("cursor", 0)), int(request.query.get("limit", 50))
        page = [item for _, item in items[start : start + limit]]
        answer = {"feed": page, **({"cursor": str(start + limit)} if start + limit < len(items) else {})}
        return 200, self.checked(answer, models.AppBskyFeedGetAuthorFeed.Response)

    def get_post_thread(self, request):
        uri, height = request.query["uri"], int(request.query.get("parentHeight", 80))
        if uri not in self.posts:
            return 400, {"error": "NotFound", "message": f"Post not found: {uri}"}
        thread = view = {"$type": "app.bsky.feed.defs#threadViewPost", "post": self.post_view(uri)}
        for _ in range(height):
            parent = self.posts[uri]["record"].get("reply", {}).get("parent", {}).get("uri")
            if parent is None:
                break
            view["parent"] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": self.post_view(parent)}
            view, uri = view["parent"], parent
        return 200, self.checked({"thread": thread}, models.AppBskyFeedGetPostThread.Response)

    # --- the pieces --------------------------------------------------------------------------

    def guarded(self, answer):
        """Sessions aside, every endpoint wants dann's access token, as Bluesky's do."""
        def guard(request):
            session = request.path.startswith(XRPC + "com.atproto.server.")
            if not session and request.headers.get("authorization") != f"Bearer {self.access}":
                return 401, {"error": "AuthenticationRequired", "message": "Authentication Required"}
            try:
                return answer(request)
            except ModelError as error:  # the SDK's models refused the fake's answer
                self.invalid.append(f"{request.path}: {error}")
                return 500, {"error": "InternalServerError", "message": "the fake's answer does not fit the SDK"}
        return guard

    def unguarded(self, answer):
        def check(request):
            try:
                return answer(request)
            except ModelError as error:
                self.invalid.append(f"{request.path}: {error}")
                return 500, {"error": "InternalServerError", "message": "the fake's answer does not fit the SDK"}
        return check

    def checked(self, body: dict, model) -> dict:
        get_or_create(body, model, strict_string_format=True)
        return body

    def stamp(self) -> str:
        """Each event one second after the last: indexedAt and createdAt always increase."""
        self.count += 1
        return (EPOCH + datetime.timedelta(seconds=self.count)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def store(self, did: str, record: dict, *, created: bool = False) -> str:
        number, rkey = self.count + 1_000_000, ""
        for _ in range(11):
            number, digit = divmod(number, 32)
            rkey = TID_CHARS[digit] + rkey
        uri = f"at://{did}/app.bsky.feed.post/3k{rkey}"
        cid = "bafyrei" + hashlib.sha256(uri.encode()).hexdigest()[:52]
        self.posts[uri] = {"uri": uri, "cid": cid, "did": did, "record": record, "indexedAt": self.stamp(),
                           "created": created}
        return uri

    def session(self) -> dict:
        return {"accessJwt": self.access, "refreshJwt": self.refresh, "handle": self.handle, "did": self.did,
                "active": True}

    def profile(self, did: str) -> dict:
        handle = self.handle if did == self.did else did.removeprefix("did:plc:").replace("-", ".")
        profile = {"did": did, "handle": handle}
        if did in self.bots:
            profile["labels"] = [{"src": self.labeler or did, "uri": f"at://{did}/app.bsky.actor.profile/self", "val": "bot",
                                  "cts": EPOCH.isoformat().replace("+00:00", "Z")}]
        return profile

    def post_view(self, uri: str) -> dict:
        post = self.posts[uri]
        return {"uri": uri, "cid": post["cid"], "author": self.profile(post["did"]), "record": post["record"],
                "indexedAt": post["indexedAt"]}
