"""The post store: the person's posts as they keep arriving, beside the export they started from.

Each post is one row of `tables.posts`, keyed by (platform, its id there):
- the same post reaching dann twice is stored once: a tweet in an X archive and the same tweet
  from the X API share their id; a post seen through two platforms (a cross-poster) shares its
  text and its minute, its `fingerprint`, and the second copy is counted as a duplicate;
- an edit updates the row (its text and `edited_at`), never adds one;
- a deletion empties the row and keeps it as a tombstone, so that an older export read again, or
  a backfill, cannot bring the post back.

Every writer (the bot storing Discord messages, a learner polling an account, `dann import`, the
trainer applying the forget list) writes in short transactions of the state store, so a reader
(the trainer reading the corpus) waits at most one of them.
"""

import dataclasses
import datetime
import hashlib
import json
import time
from collections.abc import Callable, Iterable

from sqlalchemy import and_, func, insert, select, update

from dann.state import tables
from dann.state.store import Store, upsert

PLATFORMS = ("x", "mastodon", "bluesky", "discord", "text")
BATCH = 500  # rows per transaction: a large import never holds the write lock for long


@dataclasses.dataclass(frozen=True)
class StoredPost:
    platform: str
    post_id: str
    kind: str  # post or reply
    text: str
    created_at: str | None = None  # ISO-8601
    edited_at: str | None = None
    account: str | None = None
    source: str = ""  # how it reached dann (set by the store from `add`'s `source`)


@dataclasses.dataclass
class Added:
    """What one `add` did: new posts, edited ones, ones already stored as they are, copies of a post
    stored from another platform, and posts deleted earlier that stay deleted."""

    new: int = 0
    edited: int = 0
    unchanged: int = 0
    duplicates: int = 0
    stay_deleted: int = 0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def utc(moment: str | None) -> str | None:
    """An ISO-8601 time as UTC with an offset ("2026-11-01T10:00:00+00:00"); a time without an
    offset is taken as UTC, and one that is not ISO-8601 is dropped. Stored times compare and
    fingerprint alike whatever offset their platform gave them."""
    if not moment:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC).isoformat(timespec="seconds")


def fingerprint(text: str, created_at: str | None) -> str:
    """The same post seen through two platforms: its words, case and spacing aside, and its minute."""
    words = " ".join(text.lower().split())
    return hashlib.sha256(f"{words}\n{(created_at or '')[:16]}".encode()).hexdigest()[:32]


class PostStore:
    def __init__(self, store: Store):
        self.store = store

    def add(self, posts: Iterable[StoredPost], source: str) -> Added:
        """Store `posts` that arrived through `source` ("mastodon", "discord", "export:NAME"…)."""
        added = Added()
        posts = [dataclasses.replace(p, created_at=utc(p.created_at), edited_at=utc(p.edited_at)) for p in posts]
        for start in range(0, len(posts), BATCH):
            with self.store.write("store posts in") as conn:
                for post in posts[start : start + BATCH]:
                    self._add_one(conn, post, source, added)
                if added.new or added.edited:
                    self.store.bump(conn, "posts")
        return added

    @staticmethod
    def _add_one(conn, post: StoredPost, source: str, added: Added) -> None:
        if post.platform not in PLATFORMS:
            raise ValueError(f"unknown platform {post.platform!r}")
        posts = tables.posts
        key = and_(posts.c.platform == post.platform, posts.c.post_id == post.post_id)
        found = conn.execute(select(posts.c.text, posts.c.deleted, posts.c.account).where(key)).first()
        mark = fingerprint(post.text, post.created_at)
        if found is not None and found.account is None and post.account:
            # First stored from an export, now seen on its account: reconciling that account covers it.
            conn.execute(update(posts).where(key).values(account=post.account))
        if found is not None:
            if found.deleted:
                added.stay_deleted += 1
            elif found.text == post.text:
                added.unchanged += 1
            else:
                conn.execute(update(posts).where(key).values(
                    text=post.text, fingerprint=mark,
                    edited_at=post.edited_at or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())))
                added.edited += 1
            return
        elsewhere = conn.execute(select(posts.c.platform).where(
            posts.c.fingerprint == mark, posts.c.platform != post.platform, posts.c.deleted.is_(False))).first()
        if elsewhere is not None:
            added.duplicates += 1
            return
        conn.execute(insert(posts).values(
            platform=post.platform, post_id=post.post_id, source=source, account=post.account, kind=post.kind,
            text=post.text, created_at=post.created_at, edited_at=post.edited_at, stored_at=time.time(),
            deleted=False, fingerprint=mark))
        added.new += 1

    def delete(self, platform: str, post_ids: Iterable[str]) -> int:
        """Delete these posts (deleted on their platform): emptied, kept as tombstones. Returns how
        many were live."""
        ids = [str(i) for i in post_ids]
        gone = 0
        with self.store.write("delete posts from") as conn:
            for start in range(0, len(ids), BATCH):
                gone += conn.execute(update(tables.posts).where(
                    tables.posts.c.platform == platform, tables.posts.c.post_id.in_(ids[start : start + BATCH]),
                    tables.posts.c.deleted.is_(False)).values(deleted=True, text="")).rowcount
            if gone:
                self.store.bump(conn, "posts")
        return gone

    def reconcile(self, platform: str, account: str, seen: Iterable[str], since: str) -> int:
        """After a poll that listed every post of `account` created at or after `since` (ISO-8601):
        delete the stored ones it did not list, which were deleted on the platform. Returns how many."""
        seen = {str(i) for i in seen}
        posts = tables.posts
        with self.store.read("read posts from") as conn:
            stored = conn.execute(select(posts.c.post_id).where(
                posts.c.platform == platform, posts.c.account == account, posts.c.deleted.is_(False),
                posts.c.created_at >= since)).scalars().all()
        return self.delete(platform, [i for i in stored if i not in seen])

    def forget(self, matches: Callable[[str], object]) -> int:
        """Delete every live post whose text `matches` (the forget list's `match`). Returns how many."""
        doomed: dict[str, list[str]] = {}
        for post in self.live():
            if matches(post.text):
                doomed.setdefault(post.platform, []).append(post.post_id)
        return sum(self.delete(platform, ids) for platform, ids in doomed.items())

    def live(self) -> list[StoredPost]:
        """Every post not deleted, oldest first."""
        posts = tables.posts
        with self.store.read("read posts from") as conn:
            rows = conn.execute(select(posts).where(posts.c.deleted.is_(False))
                                .order_by(posts.c.created_at, posts.c.platform, posts.c.post_id)).all()
        return [StoredPost(r.platform, r.post_id, r.kind, r.text, r.created_at, r.edited_at, r.account, r.source)
                for r in rows]

    def newest(self, platform: str, account: str) -> str | None:
        """The creation time of the newest live post of one account (None: none stored yet)."""
        posts = tables.posts
        with self.store.read("read posts from") as conn:
            return conn.execute(select(func.max(posts.c.created_at)).where(
                posts.c.platform == platform, posts.c.account == account, posts.c.deleted.is_(False))).scalar()

    def tombstones(self) -> set[tuple[str, str]]:
        """(platform, id) of every post deleted on its platform: an export's copy of one is left out."""
        posts = tables.posts
        with self.store.read("read posts from") as conn:
            return {(r.platform, r.post_id) for r in conn.execute(
                select(posts.c.platform, posts.c.post_id).where(posts.c.deleted.is_(True)))}

    def new_since(self, moment: float) -> int:
        """Live posts that reached dann after `moment` (Unix seconds)."""
        posts = tables.posts
        with self.store.read("read posts from") as conn:
            return conn.execute(select(func.count()).select_from(posts).where(
                posts.c.deleted.is_(False), posts.c.stored_at > moment)).scalar()

    def since_trained(self, trained_at: str | None) -> int:
        """Live posts that reached dann after a model trained at `trained_at` (ISO-8601; None: all)."""
        moment = datetime.datetime.fromisoformat(trained_at).timestamp() if trained_at else 0.0
        return self.new_since(moment)

    def note_poll(self, platform: str, account: str, listed: int, kept_out: dict) -> None:
        """Remember what the last poll of an account listed and kept out (`polls`)."""
        with self.store.write("note a poll in") as conn:
            upsert(conn, tables.learned, {"platform": platform, "account": account, "at": time.time(),
                                          "listed": listed, "kept_out": json.dumps(kept_out, sort_keys=True)})

    def polls(self) -> dict:
        """The last poll of each account: {"platform account": {"at", "listed", "kept_out"}}."""
        with self.store.read("read the polls from") as conn:
            rows = conn.execute(select(tables.learned)).all()
        return {f"{r.platform} {r.account}": {"at": datetime.datetime.fromtimestamp(r.at, datetime.UTC).isoformat(
            timespec="seconds"), "listed": r.listed, "kept_out": json.loads(r.kept_out)} for r in rows}

    def stats(self) -> dict:
        """Per source: live posts and the newest one's time; and how many were deleted."""
        posts = tables.posts
        with self.store.read("read posts from") as conn:
            rows = conn.execute(select(posts.c.source, func.count(), func.max(posts.c.created_at))
                                .where(posts.c.deleted.is_(False)).group_by(posts.c.source)).all()
            deleted = conn.execute(select(func.count()).select_from(posts).where(posts.c.deleted.is_(True))).scalar()
        return {"sources": {source: {"posts": count, "newest": newest} for source, count, newest in rows},
                "deleted": deleted}


def post_store(settings) -> PostStore:
    """The post store of these settings' state store (DANN_DATABASE_URL, or beside the checkpoints)."""
    from dann.state.store import open_store

    return PostStore(open_store(settings))
