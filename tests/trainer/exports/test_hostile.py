"""Exports made to hurt: links and special files inside an export folder, a zip that would fill the
memory, and fields of the wrong type. Each ends in one line that names the file, never a traceback,
a hang or a read of something outside the export."""

import contextlib
import json
import os
import random
import shutil
import signal
import time

import pytest

from tests.trainer.fixtures import FIXTURES, zip_members
from trainer.corpus import CorpusError
from trainer.exports import archive, read_corpus
from trainer.exports.archive import Archive

X_ARCHIVE = FIXTURES / "x_archive"


@contextlib.contextmanager
def within(seconds: float):
    """Fail instead of hanging: a blocked open() of a FIFO or an endless read of /dev/zero is
    interrupted by the alarm, so a regression is a failure, not a stuck run."""
    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def refusal(path, **options) -> str:
    """The one-line message read_corpus refuses `path` with."""
    with within(10), pytest.raises(CorpusError) as error:
        read_corpus(path, **options)
    message = str(error.value)
    assert message.isprintable() and "\n" not in message, message
    return message


def tweets_js(*tweets) -> str:
    return "window.YTD.tweets.part0 = " + json.dumps([{"tweet": t} for t in tweets])


@pytest.fixture
def x_folder(tmp_path):
    """An unzipped X archive whose files the test may replace."""
    return shutil.copytree(X_ARCHIVE, tmp_path / "twitter-2024")


@pytest.fixture
def outside(tmp_path):
    """A valid tweets.js outside any export: nothing may read it through a link."""
    path = tmp_path / "private" / "tweets.js"
    path.parent.mkdir()
    path.write_text(tweets_js({"id_str": "9", "full_text": "secret from outside the export"}))
    return path


# Links and special files


def test_a_tweets_js_linked_to_dev_zero_is_refused_in_one_line(x_folder):
    (x_folder / "data" / "tweets.js").unlink()
    (x_folder / "data" / "tweets.js").symlink_to("/dev/zero")
    message = refusal(x_folder)
    assert message.startswith(f"{x_folder}/data/tweets.js: ") and "symbolic link" in message


def test_a_link_to_a_file_outside_the_export_is_refused_not_read(x_folder, outside):
    (x_folder / "data" / "tweets-part1.js").unlink()
    (x_folder / "data" / "tweets-part1.js").symlink_to(outside)
    assert "data/tweets-part1.js: is a symbolic link" in refusal(x_folder)


def test_a_link_inside_the_export_is_refused_even_when_it_stays_inside(x_folder):
    (x_folder / "data" / "note-tweet.js").unlink()
    (x_folder / "data" / "note-tweet.js").symlink_to(x_folder / "data" / "like.js")
    assert "data/note-tweet.js: is a symbolic link" in refusal(x_folder)


def test_a_linked_folder_inside_the_export_is_not_entered(tmp_path, outside):
    export = tmp_path / "export"
    export.mkdir()
    (export / "data").symlink_to(outside.parent)  # data/tweets.js would be the outside file
    assert "this folder is neither an X archive" in refusal(export)


def test_a_folder_swapped_for_a_link_after_listing_is_refused(x_folder, outside):
    with Archive(x_folder) as export:
        shutil.rmtree(x_folder / "data")
        (x_folder / "data").symlink_to(outside.parent)
        with pytest.raises(CorpusError, match="data/tweets.js: lies in a folder that is a symbolic link"):
            export.read_text("data/tweets.js")


def test_a_fifo_inside_the_export_is_refused_without_waiting_for_a_writer(x_folder):
    (x_folder / "data" / "tweets.js").unlink()
    os.mkfifo(x_folder / "data" / "tweets.js")
    assert "data/tweets.js: is a FIFO (named pipe), not a regular file" in refusal(x_folder)


@pytest.mark.parametrize("name", ["tweets.js", "tweets.csv", "dump.json", "posts.txt", "export.zip", "export"])
def test_a_fifo_given_directly_is_refused(tmp_path, name):
    os.mkfifo(tmp_path / name)
    message = refusal(tmp_path / name)
    assert message == f"{tmp_path / name}: is a FIFO (named pipe), not a regular file; refusing to read it"


def test_a_link_to_a_device_given_directly_is_followed_but_the_device_is_refused(tmp_path):
    (tmp_path / "tweets.js").symlink_to("/dev/zero")
    assert refusal(tmp_path / "tweets.js").endswith("tweets.js: is a device, not a regular file; refusing to read it")


def test_the_path_given_may_itself_be_a_link_to_an_export(tmp_path, x_folder):
    (tmp_path / "latest").symlink_to(x_folder)
    (tmp_path / "tweets.js").symlink_to(x_folder / "data" / "tweets.js")
    assert read_corpus(tmp_path / "latest").records == read_corpus(x_folder).records
    linked = read_corpus(tmp_path / "tweets.js")  # no note-tweet.js beside the link: the cut copy stays
    assert linked.format == "x tweets.js"
    assert len(linked.records) == len(read_corpus(x_folder / "data" / "tweets.js").records)


def test_a_note_tweet_js_beside_a_given_tweets_js_is_not_followed(tmp_path, outside):
    (tmp_path / "tweets.js").write_text(tweets_js({"id_str": "1", "full_text": "mine"}))
    (tmp_path / "note-tweet.js").symlink_to(outside)
    assert "note-tweet.js: is a symbolic link" in refusal(tmp_path / "tweets.js")


def test_a_folder_nested_thousands_deep_is_walked_without_recursion(tmp_path, monkeypatch):
    deep, depth = tmp_path / "export", 1500  # past Python's recursion limit, which os.walk hit
    (deep / "data").mkdir(parents=True)
    (deep / "data" / "tweets.js").write_text(tweets_js({"id_str": "1", "full_text": "mine"}))
    monkeypatch.chdir(deep)  # one short name at a time: the whole path is more than one call may name
    for _ in range(depth):
        os.mkdir("d")
        os.chdir("d")
    try:
        assert [r.text for r in read_corpus(deep).records] == ["mine"]  # an X archive with a deep folder in it
    finally:
        for _ in range(depth):  # shutil.rmtree recurses too, so the tree goes as it came
            os.chdir("..")
            os.rmdir("d")


# Budgets


def test_an_export_whose_members_add_up_past_the_total_budget_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_TEXT_BYTES", 10_000)
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 20_000)
    part = tweets_js({"id_str": "1", "full_text": "x" * 8_000})  # each member under its own cap
    members = {f"data/tweets-part{n}.js": part.replace('"1"', f'"{n}"') for n in range(1, 4)}
    path = zip_members(tmp_path / "bomb.zip", {"data/tweets.js": "", **members})
    message = refusal(path)
    assert message.startswith(f"{path}: its files hold over 0 MiB of text in all (at data/tweets-part3.js)")
    assert "refusing the export" in message


def test_an_export_that_makes_us_open_too_many_members_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_MEMBERS_READ", 5)
    members = {"messages/index.json": "{}"}
    for n in range(10):
        members[f"messages/c{n}/messages.json"] = '[{"ID": 1, "Contents": "hi", "Attachments": ""}]'
    path = zip_members(tmp_path / "many.zip", members)
    assert refusal(path).startswith(f"{path}: reading more than 5 of its files")


# Fields of the wrong type, and other inputs that gave tracebacks


SERVER = {"guild": {"id": "1", "name": "Tea Club"}, "channel": {"id": "2", "type": "GuildTextChat"}}  # not a DM


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("tweet, problem", [
    ({"full_text": "hi", "created_at": 1700000000}, "item 1: created_at is a number, not text"),
    ({"full_text": 5}, "item 1: full_text is a number, not text"),
    ({"full_text": None, "text": ["a"]}, "item 1: text is a list, not text"),
    ({"full_text": "hi", "created_at": "9999-12-31T23:59:59-05:00"}, "item 1: the time .* is out of range"),
    ({"full_text": "hi", "created_at": "Mon Jan 01 00:00:00 +2359 0001"}, "item 1: the time .* is out of range"),
    ({"full_text": "hi", "entities": []}, "item 1: entities is a list, not an object"),
    ({"full_text": "hi", "entities": {"urls": [7]}}, "item 1: entities: urls holds a number, not only objects"),
    ({"full_text": "hi https://t.co/a", "entities": {"urls": [{"url": "https://t.co/a", "expanded_url": True}]}},
     "item 1: entities.urls: expanded_url is true or false, not text"),
    ({"full_text": "@a hi", "in_reply_to_status_id_str": "1", "display_text_range": {"0": 3}},
     "item 1: display_text_range is an object, not a list"),
    ({"full_text": "hi", "id_str": 1.5}, "item 1: id_str is a number, not an id"),
])
def test_a_tweet_field_of_the_wrong_type_is_named(tmp_path, tweet, problem):
    path = tmp_path / "tweets.js"
    path.write_text(tweets_js(tweet))
    assert pytest.raises(CorpusError, read_corpus, path).match(f"^{path}: {problem}")


@pytest.mark.parametrize("name, content, problem", [
    ("tweets.js", "window.YTD.tweets.part0 = " + deep(100_000), "JSON nested too deeply"),
    ("tweets.js", "window.YTD.tweets.part0 = [" + "9" * 5000 + "]", "holds a number of over 4300 digits"),
    ("tweets.js", 'window.YTD.tweets.part0 = [{"tweet": {"full_text": NaN}}]', "item 1: full_text is a number"),
    ("tweets.js", 'window.YTD.tweets.part0 = [{"tweet": 3}]', "item 1: tweet is a number, not an object"),
    ("dump.json", deep(100_000), "JSON nested too deeply"),
    ("dump.json", json.dumps({"messages": [{"author": {"id": "1"}, "content": 42}]}),
     "message 1: content is a number, not text"),
    ("dump.json", json.dumps({"messages": [{"author": {"id": "1"}, "content": "hi", "type": ["Default"]}]}),
     "message 1: type is a list, not text"),
    ("dump.json", json.dumps({"messages": [{"author": {"id": {}}, "content": "hi"}]}),
     "message 1: author: id is an object, not an id"),
    ("dump.json", json.dumps({**SERVER, "messages": [{"author": {"id": "1", "name": "a\nb"}},
                                                     {"author": {"id": "2"}}]}),
     r"has messages from 2 authors; .*: a\\nb \(id 1, 1 messages\)"),
    ("dump.json", json.dumps({"messages": [{"author": {"id": "1"}, "content": "hi", "timestamp": 1.0}]}),
     "message 1: timestamp is a number, not text"),
    ("tweets.csv", "tweet_id,text\n1,\"" + "x" * 200_000 + "\"\n", r"broken CSV at line 2 \(field larger than"),
    ("tweets.csv", "tweet_id,\"" + "x" * 200_000 + "\"\n", r"broken CSV at line 1 \(field larger than"),
    ("tweets.csv", "tweet_id,text,timestamp\n1,hi,9999-12-31T23:59:59-05:00\n", "line 2: the time .* is out of range"),
    ("posts.txt", b"caf\xe9", "is not UTF-8 text"),
    ("export.zip", random.Random(0).randbytes(100), "is not a readable zip"),  # the same bytes every run
    ("export.zip", b"PK\x03\x04" + bytes(100), "is not a readable zip"),
])
def test_inputs_that_gave_tracebacks_give_one_line(tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert pytest.raises(CorpusError, read_corpus, path, author=None).match(f"^{path}: .*{problem}|^{path}: {problem}")


@pytest.mark.parametrize("member, content, problem", [
    ("messages/c1/messages.json", '[{"ID": 1, "Contents": 5}]', "message 1: Contents is a number, not text"),
    ("messages/c1/messages.json", '[{"ID": [1], "Contents": "hi"}]', "message 1: ID is a list, not an id"),
    ("messages/c1/messages.json", '[{"ID": 1, "Contents": "", "Attachments": 3}]',
     "message 1: Attachments is a number"),
    ("messages/c1/messages.json", '[{"ID": 1, "Contents": "hi", "Timestamp": "9999-12-31 23:59:59-05:00"}]',
     "message 1: the time .* is out of range"),
    ("messages/c1/messages.json", deep(50_000), "JSON nested too deeply"),
    ("messages/c1/messages.csv", 'ID,Timestamp,Contents,Attachments\n1,,"' + "x" * 200_000 + '",\n',
     "broken CSV at line"),
    ("messages/c1/messages.csv", '"' + "C" * 200_000 + '"\n', "broken CSV at line 1"),
])
def test_a_discord_package_member_of_the_wrong_shape_is_named(tmp_path, member, content, problem):
    path = zip_members(tmp_path / "package.zip", {"messages/index.json": '{"1": "general in S"}', member: content})
    assert pytest.raises(CorpusError, read_corpus, path, include_dms=True).match(f"^{path}: {member}: {problem}")


def test_a_member_name_with_a_newline_stays_on_one_line(tmp_path):
    path = zip_members(tmp_path / "x.zip", {"data/tweets.js\n": "not javascript"})
    assert refusal(path) == (f"{path}: data/tweets.js\\n: does not start with `window.YTD.<name>.partN = [`; "
                             f"not an X archive data file")


def test_a_member_with_an_unknown_compression_method_is_refused(tmp_path):
    path = zip_members(tmp_path / "x.zip", {"data/tweets.js": tweets_js({"full_text": "hi"})})
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # the method field of both headers
        start = raw.index(signature)
        raw[start + offset:start + offset + 2] = (99).to_bytes(2, "little")
    path.write_bytes(bytes(raw))
    assert "x.zip: data/tweets.js: cannot be read from the zip (" in refusal(path)


@pytest.mark.parametrize("odd", ["data/tweets-part" + "9" * 5000 + ".js", "1\u00b21/data/tweets.js"])
def test_member_names_that_int_refuses_are_still_put_in_order(tmp_path, odd):
    # 5,000 digits are more than int() takes; "²" is a digit to str.isdigit but not to int().
    path = zip_members(tmp_path / "x.zip", {"data/tweets.js": tweets_js({"id_str": "1", "full_text": "one"}),
                                             odd: tweets_js({"id_str": "2", "full_text": "two"})})
    assert sorted(r.text for r in read_corpus(path).records) == ["one", "two"]


def test_a_member_whose_name_is_cut_to_nothing_is_passed_over(tmp_path):
    # zipfile ends a name at its first NUL byte, which leaves this one empty.
    path = zip_members(tmp_path / "x.zip", {"\x00": "?", "data/tweets.js": tweets_js({"full_text": "fine"})})
    assert [r.text for r in read_corpus(path).records] == ["fine"]


def test_a_path_too_long_for_the_system(tmp_path):
    assert refusal(tmp_path / ("x" * 5000)).endswith("x: cannot be read (File name too long)")


def test_a_lone_surrogate_in_json_text_becomes_a_replacement_character(tmp_path):
    path = tmp_path / "tweets.js"
    path.write_text('window.YTD.tweets.part0 = [{"tweet": {"full_text": "half \\ud83d a face"}}]')
    assert [r.text for r in read_corpus(path).records] == ["half \ufffd a face"]


def test_a_message_of_a_million_spaces_is_cleaned_in_linear_time(tmp_path):
    contents = " " * 1_000_000 + "<@1> hi"
    for name, data in [
        ("package.zip", None),
        ("dump.json", {**SERVER, "messages": [{"author": {"id": "1"}, "content": contents.replace("<@1>", "@bob"),
                                               "mentions": [{"name": "bob"}]}]}),
    ]:
        path = tmp_path / name
        if data is None:
            zip_members(path, {"messages/index.json": '{"1": "general in S"}',
                               "messages/c1/messages.json": json.dumps([{"ID": 1, "Contents": contents}])})
        else:
            path.write_text(json.dumps(data))
        started = time.monotonic()
        assert [r.text for r in read_corpus(path).records] == ["hi"]
        assert time.monotonic() - started < 5  # the quadratic pattern took hours for this
