"""DiscordChatExporter JSON: the fixture is a channel where alice and bob talk, with system messages,
replies, an attachment, and both rendered and raw mention markup."""

import dataclasses
import json

import pytest

from tests.trainer.fixtures import FIXTURES
from trainer.corpus import CorpusError
from trainer.exports import read_corpus

TWO_AUTHORS = FIXTURES / "dce_two_authors.json"
ALICE = [
    ("post", "hello tea people :blobcat:"),
    ("reply", "sencha, always 🍵"),  # type Reply; the rendered "@bob" goes
    ("reply", "forwarded this from, thoughts? :kettle:"),  # type Default with a reference; raw markup goes
]


def test_several_authors_without_author_is_an_error_that_lists_them():
    with pytest.raises(CorpusError) as error:
        read_corpus(TWO_AUTHORS)
    message = str(error.value)
    assert "dce_two_authors.json" in message and "--author" in message and "\n" not in message
    assert "alice (id 111111111111111111, 4 messages)" in message and "bob (id 222222222222222222" in message


@pytest.mark.parametrize("author", ["alice", "111111111111111111", "alice 🌸", "ALICE"])
def test_author_by_name_id_or_nickname(author):
    corpus = read_corpus(TWO_AUTHORS, author=author)
    assert [(r.kind, r.text) for r in corpus.records] == ALICE


def test_times_are_utc_and_in_order():
    records = read_corpus(TWO_AUTHORS, author="alice").records
    assert [r.created_at for r in records] == [
        "2024-06-01T07:01:00.123456+00:00", "2024-06-01T07:06:30+00:00", "2024-06-01T07:12:00+00:00"]


def test_stats_count_other_authors_system_messages_and_attachments():
    stats = read_corpus(TWO_AUTHORS, author="alice").stats()
    assert stats["format"] == "discordchatexporter" and (stats["posts"], stats["replies"]) == (1, 2)
    assert stats["dropped"] == {"other_authors": 2, "other_types": 2, "attachment_only": 1, "empty": 0,
                                "link_only": 0, "duplicates": 0}


def test_the_other_voice():
    corpus = read_corpus(TWO_AUTHORS, author="bob")
    assert [(r.kind, r.text) for r in corpus.records] == [
        ("reply", "welcome!! oolong or sencha?"), ("post", "bob again, no reply this time")]


def test_an_unknown_author_lists_who_is_there():
    with pytest.raises(CorpusError, match="no author 'carol' in it; the authors are: alice .*, bob"):
        read_corpus(TWO_AUTHORS, author="carol")


def test_a_name_two_authors_share_asks_for_the_id(tmp_path):
    data = json.loads(TWO_AUTHORS.read_text(encoding="utf-8"))
    for message in data["messages"]:
        message["author"]["nickname"] = "twin"
    path = tmp_path / "twins.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CorpusError, match="'twin' fits several authors; give the id"):
        read_corpus(path, author="twin")


def test_one_author_needs_no_flag(tmp_path):
    data = json.loads(TWO_AUTHORS.read_text(encoding="utf-8"))
    data["messages"] = [m for m in data["messages"] if m["author"]["name"] == "alice"]
    path = tmp_path / "alice.json"
    path.write_text(json.dumps(data))
    assert [(r.kind, r.text) for r in read_corpus(path).records] == ALICE


def test_json_that_is_not_a_dce_export(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('[{"message": "markov-discord style"}]')
    with pytest.raises(CorpusError, match="other.json: not a DiscordChatExporter JSON export"):
        read_corpus(path)


def test_broken_json(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(TWO_AUTHORS.read_text(encoding="utf-8")[:500])
    with pytest.raises(CorpusError, match="cut.json: broken JSON at line"):
        read_corpus(path, author="alice")


def test_a_dm_export_is_left_out_unless_asked_for(tmp_path):
    data = json.loads(TWO_AUTHORS.read_text())
    data["guild"] = {"id": "0", "name": "Direct Messages"}
    data["channel"]["type"] = "DirectTextChat"
    dm = tmp_path / "dm.json"
    dm.write_text(json.dumps(data))
    with pytest.raises(CorpusError, match=r"'private': \d+.*left out unless --include-dms"):
        read_corpus(dm, author="alice")
    asked = read_corpus(dm, author="alice", include_dms=True).records
    # Read when asked for, and marked private: trained on, never shown (lstm/postindex.py).
    assert asked == [dataclasses.replace(r, private=True, source="export:dm.json")
                     for r in read_corpus(TWO_AUTHORS, author="alice").records]
