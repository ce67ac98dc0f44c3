"""A fake Mastodon on a FakeServer: the endpoints MastodonDestination uses, answering JSON shaped
like Mastodon's, over an in-memory state the tests drive.

    mastodon = FakeMastodon(fake_server, bot=False)
    root = mastodon.status("alice", "first words")             # a post without a notification
    mastodon.mention("alice", "hi", in_reply_to=root)           # a post that notifies dann
    mastodon.posts                                              # what dann sent, oldest first

The person's own account, for learning (dann/poster/learn.py): `boost`, `edit` and `delete` change
what GET /api/v1/accounts/:id/statuses lists.
"""

import datetime
import html
from urllib.parse import parse_qs

CREATED_AT = "2026-01-01T12:00:00.000Z"


class FakeMastodon:
    def __init__(self, server, *, bot: bool = True, may_set_bot: bool = True):
        self.server = server
        self.may_set_bot = may_set_bot
        self.accounts: dict[str, dict] = {}
        self.statuses: dict[str, dict] = {}
        self.notifications: list[dict] = []
        self.posts: list[dict] = []  # what dann posted: the form it sent (status, visibility, …) and the new id
        self.last_id = 100
        self.me = self.account("dann", bot=bot)
        server.route("GET", "/api/v1/accounts/verify_credentials", lambda request: (200, self.credential()))
        server.route("PATCH", "/api/v1/accounts/update_credentials", self.update_credentials)
        server.route("POST", "/api/v1/statuses", self.create_status)
        server.route("GET", "/api/v1/notifications", self.list_notifications)
        server.route("GET", "/api/v1/statuses/*", self.context)
        server.route("GET", "/api/v1/accounts/lookup", self.lookup)
        server.route("GET", "/api/v1/accounts/*", self.account_statuses)

    # --- what the tests drive ----------------------------------------------------------------

    def account(self, username: str, *, bot: bool = False) -> dict:
        if username not in self.accounts:
            self.accounts[username] = {
                "id": self.new_id(), "username": username, "acct": username, "display_name": username.title(),
                "locked": False, "bot": bot, "discoverable": True, "group": False, "created_at": CREATED_AT,
                "note": "", "url": f"{self.server.url}/@{username}", "uri": f"{self.server.url}/users/{username}",
                "avatar": "", "avatar_static": "", "header": "", "header_static": "", "followers_count": 0,
                "following_count": 0, "statuses_count": 0, "last_status_at": None, "emojis": [], "fields": []}
        return self.accounts[username]

    def status(self, username: str, text: str, *, in_reply_to: str | None = None, visibility: str = "public",
               bot: bool = False) -> str:
        """A post by `username` (written as Mastodon renders it: HTML, @handles as links); its id."""
        author = self.account(username, bot=bot)
        parent = self.statuses.get(in_reply_to)
        status_id = self.new_id()
        self.statuses[status_id] = {
            "id": status_id, "uri": f"{author['uri']}/statuses/{status_id}", "url": f"{author['url']}/{status_id}",
            "created_at": minute(int(status_id)), "account": author, "content": rendered(text), "visibility": visibility,
            "sensitive": False, "spoiler_text": "", "in_reply_to_id": in_reply_to,
            "in_reply_to_account_id": parent["account"]["id"] if parent else None, "reblog": None,
            "mentions": [], "media_attachments": [], "emojis": [], "tags": [], "reblogs_count": 0,
            "favourites_count": 0, "replies_count": 0, "language": "en", "application": None, "card": None,
            "poll": None, "edited_at": None}
        author["statuses_count"] += 1
        return status_id

    def mention(self, username: str, text: str, *, in_reply_to: str | None = None, visibility: str = "public",
                bot: bool = False) -> str:
        """A post by `username` that starts with @dann, and dann's notification of it; its id."""
        status_id = self.status(username, f"@dann {text}", in_reply_to=in_reply_to, visibility=visibility, bot=bot)
        self.notifications.append({"id": self.new_id(), "type": "mention", "created_at": CREATED_AT,
                                   "account": self.accounts[username], "status": self.statuses[status_id],
                                   "group_key": f"ungrouped-{status_id}"})
        return status_id

    def boost(self, username: str, status_id: str) -> str:
        """`username` boosts another's status: a status of theirs whose `reblog` is that one."""
        boost_id = self.status(username, "")
        self.statuses[boost_id]["reblog"] = self.statuses[status_id]
        return boost_id

    def edit(self, status_id: str, text: str) -> None:
        self.statuses[status_id]["content"] = rendered(text)
        self.statuses[status_id]["edited_at"] = minute(int(self.new_id()))

    def delete(self, status_id: str) -> None:
        del self.statuses[status_id]

    def new_id(self) -> str:
        self.last_id += 1
        return str(self.last_id)

    # --- the endpoints -----------------------------------------------------------------------

    def credential(self) -> dict:
        return {**self.me, "source": {"privacy": "public", "sensitive": False, "language": "en", "note": "",
                                      "fields": []}}

    def update_credentials(self, request):
        if not self.may_set_bot:
            return 403, {"error": "This action is outside the authorized scopes"}
        form = parse_qs(request.body.decode())
        if "bot" in form:
            self.me["bot"] = form["bot"][0] in ("1", "true")
        return 200, self.credential()

    def create_status(self, request):
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if not form.get("status"):
            return 422, {"error": "Validation failed: Text can't be blank"}
        if len(form["status"]) > 500:
            return 422, {"error": "Validation failed: Text character limit of 500 exceeded"}
        in_reply_to = form.get("in_reply_to_id")
        if in_reply_to is not None and in_reply_to not in self.statuses:
            return 404, {"error": "Record not found"}
        status_id = self.status("dann", form["status"], in_reply_to=in_reply_to,
                                visibility=form.get("visibility", "public"))
        self.posts.append({**form, "id": status_id})
        return 200, self.statuses[status_id]

    def list_notifications(self, request):
        query = request.query
        found = [n for n in self.notifications if query.get("types[]") in (None, n["type"])]
        limit = int(query.get("limit", 40))
        if "min_id" in query:  # the page right after min_id
            found = [n for n in found if int(n["id"]) > int(query["min_id"])][:limit]
        elif "since_id" in query:  # the newest page after since_id
            found = [n for n in found if int(n["id"]) > int(query["since_id"])][-limit:]
        else:
            found = found[-limit:]
        return 200, list(reversed(found))  # newest first, as Mastodon lists them

    def lookup(self, request):
        found = self.accounts.get(request.query.get("acct", "").split("@")[0])
        return (200, found) if found else (404, {"error": "Record not found"})

    def account_statuses(self, request):
        account_id, _, rest = request.path.removeprefix("/api/v1/accounts/").partition("/")
        if rest != "statuses" or account_id not in {a["id"] for a in self.accounts.values()}:
            return 404, {"error": "Record not found"}
        theirs = sorted((s for s in self.statuses.values() if s["account"]["id"] == account_id),
                        key=lambda s: -int(s["id"]))  # newest first
        if "max_id" in request.query:
            theirs = [s for s in theirs if int(s["id"]) < int(request.query["max_id"])]
        return 200, theirs[: int(request.query.get("limit", 20))]

    def context(self, request):
        status_id, _, rest = request.path.removeprefix("/api/v1/statuses/").partition("/")
        if rest != "context" or status_id not in self.statuses:
            return 404, {"error": "Record not found"}
        ancestors = []
        parent = self.statuses[status_id]["in_reply_to_id"]
        while parent in self.statuses:
            ancestors.insert(0, self.statuses[parent])
            parent = self.statuses[parent]["in_reply_to_id"]
        return 200, {"ancestors": ancestors, "descendants": []}


def rendered(text: str) -> str:
    """Plain text as Mastodon renders it: escaped, in a paragraph, lines broken with <br />, and
    each @handle a link in an h-card."""
    words = []
    for word in html.escape(text).split(" "):
        if word.startswith("@") and len(word) > 1:
            name = word[1:]
            word = (f'<span class="h-card" translate="no"><a href="https://example.social/@{name}" '
                    f'class="u-url mention">@<span>{name}</span></a></span>')
        words.append(word)
    return "<p>" + " ".join(words).replace("\n", "<br />") + "</p>"


def minute(n: int) -> str:
    """The creation time of status number `n`: one minute apart, in id order, as Mastodon's are."""
    return (datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.UTC) + datetime.timedelta(minutes=n)).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
