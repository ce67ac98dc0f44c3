"""read_corpus as a whole: choosing the format, the cleaning all exports share, refusing bad input."""

import dataclasses
import json
from pathlib import Path

import pytest

import trainer
from tests.trainer.fixtures import FIXTURES, zip_folder
from trainer.corpus import Corpus, CorpusError, Record
from trainer.exports import archive, read_corpus

SHAKESPEARE = Path(trainer.__file__).parent / "corpora" / "shakespeare.txt"


def test_the_shakespeare_demo_corpus_is_unchanged():
    # The trainer's recorded measurements were made on exactly these records.
    corpus = read_corpus(SHAKESPEARE)
    assert (corpus.format, len(corpus.records), corpus.data_hash()) == ("txt (paragraphs)", 8397, "7145fd7acda83343")
    assert {r.kind for r in corpus.records} == {"post"} and corpus.records[0].created_at is None


def test_a_txt_is_split_by_lines_or_paragraphs(tmp_path):
    path = tmp_path / "posts.txt"
    path.write_text("one\n\ntwo\nthree\n")
    assert [r.text for r in read_corpus(path).records] == ["one", "two", "three"]
    assert [r.text for r in read_corpus(path, split="paragraphs").records] == ["one", "two\nthree"]


def test_a_record_becomes_a_json_line_in_one_call():
    record = Record("reply", "ok 👍", "2024-01-01T00:00:00+00:00", "17")
    assert json.loads(json.dumps(dataclasses.asdict(record))) == {
        "kind": "reply", "text": "ok 👍", "created_at": "2024-01-01T00:00:00+00:00", "source_id": "17",
        "private": False, "platform": None, "source": None}


def test_from_records_orders_by_time_and_undated_records_stay_after_their_neighbour():
    records = [Record("post", "c", "2024-01-03T00:00:00+00:00"), Record("post", "c2"),
               Record("post", "a", "2024-01-01T00:00:00+00:00"), Record("post", "b", "2024-01-02T01:00:00+01:00")]
    corpus = Corpus.from_records("test", records, {})
    assert [r.text for r in corpus.records] == ["a", "b", "c", "c2"]


def test_from_records_keeps_file_order_when_nothing_has_a_time():
    corpus = Corpus.from_records("test", [Record("post", t) for t in "zyx"], {})
    assert [r.text for r in corpus.records] == ["z", "y", "x"]


def test_from_records_tidies_whitespace_and_drops_empty_posts_and_later_duplicates():
    records = [Record("post", " a \t b \r\n\r\n\r\n c "), Record("post", " \n "),
               Record("post", "same", "2024-01-02T00:00:00+00:00", "2"),
               Record("post", "same ", "2024-01-01T00:00:00+00:00", "1"), Record("reply", "same")]
    corpus = Corpus.from_records("test", records, {"retweets": 3})
    assert [(r.kind, r.text, r.source_id) for r in corpus.records] == [
        ("post", "a b\n\nc", None), ("post", "same", "1"), ("reply", "same", None)]
    assert corpus.dropped == {"retweets": 3, "empty": 1, "link_only": 0, "duplicates": 1}


def test_from_records_turns_links_into_domains_and_drops_posts_of_only_links():
    records = [Record("post", "see https://www.Example.org/a/b?c=d, wow"), Record("post", " https://x.example/ \n"),
               Record("post", "HTTP://[broken and https://ok.example")]
    corpus = Corpus.from_records("test", records, {})
    # A malformed address says nothing at all; the punctuation after a link is the person's.
    assert [r.text for r in corpus.records] == ["see example.org, wow", "and ok.example"]
    assert corpus.dropped["link_only"] == 1


def test_a_missing_path(tmp_path):
    with pytest.raises(CorpusError, match="nope.zip: no such file"):
        read_corpus(tmp_path / "nope.zip")


def test_an_unknown_file_type(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n")
    with pytest.raises(CorpusError, match=r"photo.png: unknown file type '.png'"):
        read_corpus(path)


def test_a_folder_that_is_no_export(tmp_path):
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / "album").mkdir()
    (tmp_path / "album" / "notes.txt").write_text("hi")
    with pytest.raises(CorpusError, match=r"no export in this folder \(2 file\(s\) that are not one"):
        read_corpus(tmp_path)


@pytest.mark.parametrize("name, problem", [
    ("huge.txt", "2048 MiB is too large"), ("tweets.js", "2048 MiB is too large"),
    ("tweets.csv", "2048 MiB is too large"), ("dump.json", "2048 MiB is too large"),
    ("export.zip", "is not a readable zip"), ("huge.bin", "unknown file type"),
])
def test_a_2gb_file_is_refused_without_reading_it(tmp_path, name, problem):
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(2 * 1024**3)  # sparse: no disk space, and reading it all would take seconds and 2 GB
    with pytest.raises(CorpusError, match=f"{name}: .*{problem}|{name}: {problem}"):
        read_corpus(path)


def test_json_that_is_not_utf8(tmp_path):
    path = tmp_path / "dump.json"
    path.write_bytes('{"messages": [{"content": "café"}]}'.encode("latin-1"))
    with pytest.raises(CorpusError, match="dump.json: is not UTF-8 text"):
        read_corpus(path)


def test_options_that_do_not_apply_to_the_input_are_refused(tmp_path):
    path = tmp_path / "posts.txt"
    path.write_text("hello\n")
    with pytest.raises(CorpusError, match="--author only applies to a DiscordChatExporter"):
        read_corpus(path, author="alice")
    with pytest.raises(CorpusError, match="--split only applies to a .txt"):
        read_corpus(tmp_path, split="lines")


def test_a_zip_without_its_suffix_is_still_read_as_a_zip(tmp_path):
    download = zip_folder(FIXTURES / "discord_package", tmp_path / "package")
    assert read_corpus(download).format == "discord package"


def test_a_folder_with_too_many_files_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_FOLDER_FILES", 3)
    for n in range(5):
        (tmp_path / f"{n}.txt").write_text("x")
    with pytest.raises(CorpusError, match="holds over 3 files"):
        read_corpus(tmp_path)
