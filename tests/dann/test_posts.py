"""The post store: stored once, edits applied, deletions kept as tombstones, counted by source."""

import time

from dann.state import Store
from dann.state.posts import PostStore, StoredPost


def store(url) -> PostStore:
    return PostStore(Store(url))


def toot(post_id, text, when="2026-11-01T10:00:00+00:00", kind="post"):
    return StoredPost("mastodon", post_id, kind, text, when, account="@sam@example.social")


def test_a_post_is_stored_once_edits_update_it_and_a_deletion_stays(state_url):
    posts = store(state_url)
    first = posts.add([toot("1", "hello there"), toot("2", "second", kind="reply")], "mastodon")
    assert (first.new, first.unchanged) == (2, 0)
    again = posts.add([toot("1", "hello there"), toot("2", "second, edited")], "mastodon")
    assert (again.new, again.unchanged, again.edited) == (0, 1, 1)
    assert [(p.post_id, p.text, p.kind) for p in posts.live()] == [("1", "hello there", "post"),
                                                                    ("2", "second, edited", "reply")]
    assert posts.live()[1].edited_at is not None
    assert posts.delete("mastodon", ["1", "404"]) == 1
    assert [p.post_id for p in posts.live()] == ["2"]
    # Read again from an older export or a backfill: it stays deleted.
    assert posts.add([toot("1", "hello there")], "export:old.zip").stay_deleted == 1
    assert [p.post_id for p in posts.live()] == ["2"] and posts.stats()["deleted"] == 1


def test_the_same_post_through_two_platforms_is_stored_once(state_url):
    posts = store(state_url)
    posts.add([toot("1", "Cross  posted!")], "mastodon")
    added = posts.add([StoredPost("bluesky", "at://x/1", "post", "cross posted!", "2026-11-01T10:00:30+00:00")],
                      "bluesky")
    assert added.duplicates == 1 and len(posts.live()) == 1
    # Another minute, or other words: another post.
    assert posts.add([StoredPost("bluesky", "at://x/2", "post", "cross posted!", "2026-11-02T10:00:00+00:00")],
                     "bluesky").new == 1


def test_reconcile_deletes_what_a_complete_poll_no_longer_lists(state_url):
    posts = store(state_url)
    posts.add([toot("1", "old", "2026-10-01T00:00:00+00:00"), toot("2", "recent", "2026-11-02T00:00:00+00:00"),
               toot("3", "recent too", "2026-11-03T00:00:00+00:00")], "mastodon")
    # The poll saw everything since November 1st: only post 3 is still there.
    assert posts.reconcile("mastodon", "@sam@example.social", ["3"], "2026-11-01T00:00:00+00:00") == 1
    assert [p.post_id for p in posts.live()] == ["1", "3"]  # the older one was outside the poll's window


def test_forget_deletes_matching_posts_and_new_since_counts_arrivals(state_url):
    posts = store(state_url)
    before = time.time()
    posts.add([toot("1", "my secret plan"), toot("2", "lunch")], "mastodon")
    assert posts.new_since(before - 1) == 2 and posts.new_since(time.time() + 1) == 0
    assert posts.forget(lambda text: "secret" in text) == 1
    assert [p.text for p in posts.live()] == ["lunch"] and posts.new_since(before - 1) == 1
    stats = posts.stats()
    assert stats["sources"] == {"mastodon": {"posts": 1, "newest": "2026-11-01T10:00:00+00:00"}}


WRITER = """
import sys, time
from dann.state import Store
from dann.state.posts import PostStore, StoredPost
posts = PostStore(Store(sys.argv[1]))
longest = 0.0
for i in range(int(sys.argv[2])):  # as the bot stores messages: one short transaction each
    began = time.perf_counter()
    posts.add([StoredPost("discord", str(i), "post", f"message number {i}", f"2026-12-01T10:{i % 60:02d}:00")], "discord")
    longest = max(longest, time.perf_counter() - began)
print(longest)
"""


def test_the_bot_storing_and_the_trainer_reading_at_once_lose_nothing_and_wait_only_for_one_transaction(state_url):
    import subprocess
    import sys

    url = state_url
    posts = PostStore(Store(url))
    posts.add([StoredPost("mastodon", "m0", "post", "a toot to forget later")], "mastodon")
    count = 300
    writer = subprocess.Popen([sys.executable, "-c", WRITER, url, str(count)], stdout=subprocess.PIPE, text=True)
    reads, longest_read, longest_write, stored = 0, 0.0, 0.0, set()
    while writer.poll() is None:  # the trainer's side: read the corpus, and apply the forget list
        began = time.perf_counter()
        seen = {p.post_id for p in posts.live() if p.platform == "discord"}
        longest_read = max(longest_read, time.perf_counter() - began)
        assert stored <= seen  # a committed post never disappears from a later read
        stored = seen
        began = time.perf_counter()
        posts.forget(lambda text: "to forget" in text)
        longest_write = max(longest_write, time.perf_counter() - began)
        reads += 1
    writer_longest = float(writer.stdout.read())
    assert writer.returncode == 0 and reads > 1
    assert sorted(int(p.post_id) for p in posts.live()) == list(range(count))  # nothing lost
    # SQLite's WAL (and PostgreSQL's MVCC): a reader never waits for the writer; writers wait at most
    # for the other's one short transaction, far below the 10 s busy timeout after which SQLite would give up.
    assert longest_read < 2.0 and longest_write < 2.0 and writer_longest < 2.0, (longest_read, longest_write,
                                                                                 writer_longest)


def test_times_are_stored_in_utc_so_the_same_moment_dedups_across_offsets(tmp_path):
    posts = store(f"sqlite:///{tmp_path / 'state.db'}")
    posts.add([StoredPost("mastodon", "1", "post", "same words, same minute", "2026-11-01T11:00:30+01:00"),
               StoredPost("discord", "9", "post", "a message without an offset", "2026-11-02T08:00:00")], "mixed")
    posts.add([StoredPost("bluesky", "b1", "post", "Same words,  same minute", "2026-11-01T10:00:59Z")], "bluesky")
    assert sorted((p.platform, p.created_at) for p in posts.live()) == [
        ("discord", "2026-11-02T08:00:00+00:00"), ("mastodon", "2026-11-01T10:00:30+00:00")]
