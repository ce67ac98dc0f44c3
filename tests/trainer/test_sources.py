"""What the trainer learns from: a folder of exports, newer archives superseding older ones, and the
post store's posts merged in (dann/state/posts.py)."""

import json
import shutil
import time
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from dann.settings import Settings
from dann.state import store_beside
from dann.state.posts import PostStore, StoredPost
from dann.voice.forget import ForgetList
from tests.helpers import assert_one_line_error, run_main
from tests.trainer.fixtures import FIXTURES
from trainer.exports import read_corpus
from trainer.retrain import read_export
from trainer.runner import check_new_posts, new_posts


def package(root: Path, user_id: str, messages: dict[int, tuple[str, str]]) -> Path:
    """A Discord data package of one server channel: message id -> (time, text)."""
    folder = root / "messages" / "c1"
    folder.mkdir(parents=True)
    (folder / "channel.json").write_text(json.dumps({"id": "1", "type": "GUILD_TEXT", "guild": {"id": "9", "name": "S"}}))
    (folder / "messages.json").write_text(json.dumps([{"ID": i, "Timestamp": when, "Contents": text, "Attachments": ""}
                                                       for i, (when, text) in messages.items()]))
    (root / "messages" / "index.json").write_text(json.dumps({"1": "general in S"}))
    (root / "account").mkdir()
    (root / "account" / "user.json").write_text(json.dumps({"id": user_id, "username": "sam"}))
    return root


def test_a_folder_reads_every_export_in_it_and_names_what_it_skips(tmp_path, caplog):
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copytree(FIXTURES / "x_archive", folder / "twitter-2024")
    (folder / "notes.txt").write_text("a line of my own\nanother line of mine\n")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    corpus = read_corpus(folder)
    x_only = read_corpus(FIXTURES / "x_archive")
    assert len(corpus.records) == len(x_only.records) + 2
    assert {r.source for r in corpus.records} == {"export:twitter-2024", "export:notes.txt"}
    assert {r.platform for r in corpus.records} == {"x", "text"}
    assert corpus.dropped["not_an_export"] == 1 and "photo.png" in caplog.text
    # The same archive again under another name changes nothing the trainer sees.
    shutil.copytree(FIXTURES / "x_archive", folder / "twitter-2024-copy")
    again = read_corpus(folder)
    assert again.data_hash() == corpus.data_hash() and again.dropped["superseded"] == len(x_only.records)


def test_a_newer_archive_of_the_same_account_supersedes_the_older(tmp_path):
    folder = tmp_path / "exports"
    old = {1: ("2024-01-01 10:00:00", "first post"), 2: ("2024-01-02 10:00:00", "deleted later"),
           3: ("2024-01-03 10:00:00", "third post")}
    new = {1: old[1], 3: old[3], 4: ("2024-02-01 10:00:00", "a newer post")}
    package(folder / "package-january", "70", old)
    package(folder / "package-february", "70", new)
    package(folder / "someone-else", "71", {9: ("2024-01-05 10:00:00", "not the same account")})
    texts = [r.text for r in read_corpus(folder).records]
    assert texts == ["first post", "third post", "not the same account", "a newer post"]


def test_a_folder_with_no_export_is_one_line(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "photo.png").write_bytes(b"png")
    code, _, err = run_main(capsys, "corpus", str(tmp_path / "x"))
    assert_one_line_error(code, err, "no export in this folder", "1 file(s)")


def test_the_trainer_reads_the_store_with_the_export_edits_and_deletions_applied(tmp_path):
    export = FIXTURES / "x_archive"
    x_records = read_corpus(export).records
    store = store_beside(tmp_path)
    posts = PostStore(store)
    edited, deleted = x_records[0], x_records[1]
    posts.add([StoredPost("x", edited.source_id, edited.kind, "edited on x", edited.created_at),
               StoredPost("x", deleted.source_id, deleted.kind, deleted.text, deleted.created_at),
               StoredPost("mastodon", "m1", "post", "a toot from this week", "2026-11-30T10:00:00+00:00")], "x")
    posts.delete("x", [deleted.source_id])
    corpus = read_export(export, ForgetList(store), posts=posts)
    texts = [r.text for r in corpus.records]
    assert "edited on x" in texts and edited.text not in texts
    assert deleted.text not in texts and corpus.dropped["deleted"] == 1
    assert texts[-1] == "a toot from this week" and len(texts) == len(x_records)
    assert corpus.stats()["sources"]["export:x_archive"]["posts"] == len(x_records) - 2


def test_dann_import_then_corpus_without_a_path_shows_what_the_trainer_reads(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DANN_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    monkeypatch.delenv("DANN_EXPORT_PATH", raising=False)
    code, _, err = run_main(capsys, "corpus")
    assert_one_line_error(code, err, "nothing to learn from yet")
    code, out, err = run_main(capsys, "import", str(FIXTURES / "discord_package"))
    assert code == 0, err
    first = json.loads(out)
    assert first["new"] == first["posts"] > 0
    code, out, _ = run_main(capsys, "import", str(FIXTURES / "discord_package"))
    assert json.loads(out)["new"] == 0 and json.loads(out)["unchanged"] == first["posts"]  # stored once
    code, out, _ = run_main(capsys, "forget", "look at this one")
    code, out, err = run_main(capsys, "corpus", "--stats")
    stats = json.loads(out)
    assert stats["sources"]["export:discord_package"]["posts"] == first["posts"] - 1  # forgetting deletes it
    code, out, _ = run_main(capsys, "corpus")
    texts = [json.loads(line)["text"] for line in out.splitlines()]
    assert "look at this one" not in texts and not any("oldest one" in t for t in texts)  # never a DM
    code, out, _ = run_main(capsys, "status", "--json")
    assert json.loads(out)["new_posts"] == first["posts"] - 1
    code, out, _ = run_main(capsys, "status")
    assert f"{first['posts'] - 1} post(s) of the person are in the post store" in out


def test_enough_new_posts_start_a_run_and_fewer_do_not(tmp_path):
    settings = Settings(_env_file=None, checkpoint_dir=tmp_path, retrain_min_new_posts=3)
    posts = PostStore(store_beside(tmp_path))
    scheduler = BackgroundScheduler()
    scheduler.add_job(lambda: None, "interval", days=1, id="retrain")
    scheduler.start(paused=True)
    try:
        later = scheduler.get_job("retrain").next_run_time
        posts.add([StoredPost("mastodon", str(i), "post", f"toot {i}") for i in range(2)], "mastodon")
        assert new_posts(settings) == 2 and not check_new_posts(settings, scheduler)
        assert scheduler.get_job("retrain").next_run_time == later
        posts.add([StoredPost("mastodon", "2", "post", "toot 2")], "mastodon")
        assert check_new_posts(settings, scheduler)
        assert scheduler.get_job("retrain").next_run_time.timestamp() <= time.time() + 1  # now
    finally:
        scheduler.shutdown(wait=False)


def test_a_post_deleted_on_its_platform_leaves_the_next_models_copy_index(tmp_path):
    from trainer.data import prepare
    from trainer.retrain import configured

    store = store_beside(tmp_path)
    posts = PostStore(store)
    kept = "a long public post about the harbour lights and the ferries at dawn"
    gone = "a long public post about the bakery on the corner and its sourdough"
    posts.add([StoredPost("mastodon", "1", "post", kept, "2026-11-01T10:00:00+00:00"),
               StoredPost("mastodon", "2", "post", gone, "2026-11-02T10:00:00+00:00")]
              # newer posts, some of them the validation tenth: the two above are training posts
              + [StoredPost("mastodon", str(n), "post", f"another day number {n} of posting things", f"2026-11-{n:02d}")
                 for n in range(3, 30)], "mastodon")
    settings = Settings(_env_file=None, checkpoint_dir=tmp_path)

    def copy_index():
        corpus = read_export(None, ForgetList(store), posts=posts)
        return prepare(corpus, configured(settings, corpus).train).copy_index

    assert copy_index().copies(gone) and copy_index().copies(kept)
    posts.delete("mastodon", ["2"])  # as a poll that no longer lists it applies it
    after = copy_index()
    assert not after.copies(gone) and after.copies(kept)
