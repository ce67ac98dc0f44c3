"""Property-based fuzzing of every export parser: whatever the bytes, reading them ends in a Corpus
or in one CorpusError whose message is one printable line naming the export, within a memory bound.

Inputs grow from the fixture exports (tests/trainer/fixtures), mutated the way damage and malice
do: a field's type swapped, a value replaced by any JSON, objects nested deep, numbers of thousands
of digits, NaN, lone surrogates, then the text truncated, bytes flipped, ranges dropped or doubled.
Every example is written to a fresh temporary folder. Profiles (ci, long) are in conftest.py.
"""

import copy
import csv
import io
import json
import os
import tempfile
import tracemalloc
import zipfile
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.trainer.fixtures import FIXTURES
from trainer.corpus import Corpus, CorpusError
from trainer.exports import archive, dce, discord_package, read_corpus, text, x
from trainer.exports.archive import Archive

X_DATA = FIXTURES / "x_archive" / "data"
PACKAGE = FIXTURES / "discord_package"
# Peak Python allocation while one example is read. Inputs stay under about 1 MiB (the zip bombs'
# members decompress to more, but the caps are lowered there), so a parser that reads without a
# bound or keeps copies per member passes this at once.
MEMORY_BOUND = 48 * 2**20


def js_doc(path: Path) -> list:
    return json.loads(path.read_text(encoding="utf-8").split("=", 1)[1])


TWEET_DOCS = [js_doc(X_DATA / "tweets.js"), js_doc(X_DATA / "tweets-part1.js")]
NOTE_DOC = js_doc(X_DATA / "note-tweet.js")
GRAILBIRD_DOC = [dict(item["tweet"], text=item["tweet"].get("full_text", "")) for item in TWEET_DOCS[1]]
DCE_DOC = json.loads((FIXTURES / "dce_two_authors.json").read_text(encoding="utf-8"))
X_MEMBERS = {p.relative_to(FIXTURES / "x_archive").as_posix(): p.read_bytes()
             for p in sorted((FIXTURES / "x_archive").rglob("*")) if p.is_file()}
PACKAGE_MEMBERS = {p.relative_to(PACKAGE).as_posix(): p.read_bytes() for p in sorted(PACKAGE.rglob("*")) if p.is_file()}
CSV_COLUMNS = ["tweet_id", "in_reply_to_status_id", "in_reply_to_user_id", "timestamp", "source", "text",
               "retweeted_status_id", "retweeted_status_user_id", "retweeted_status_timestamp", "expanded_urls"]
CSV_ROWS = [[t["tweet"]["id_str"], t["tweet"].get("in_reply_to_status_id_str", ""), "", "2013-01-02 10:00:00 +0000",
             "web", t["tweet"].get("full_text", ""), "", "", "", "http://a.example/1"] for t in TWEET_DOCS[0]]
WRAPPERS = ["window.YTD.tweets.part0 = ", "window.YTD.tweet.part0 = ", "window.YTD.tweets.part1 =\n",
            "Grailbird.data.tweets_2012_01 = \n", "", "window['YTD'].x = ", "var x;", "window.YTD.tweets.part0 "]

# The fields the parsers read, so that an insertion lands where a parser looks.
READ_FIELDS = ["tweet", "full_text", "text", "created_at", "id_str", "id", "entities", "urls", "media",
               "extended_entities", "url", "expanded_url", "display_text_range", "in_reply_to_status_id_str",
               "in_reply_to_status_id", "retweeted", "retweeted_status", "noteTweet", "core", "createdAt", "shortUrl",
               "expandedUrl", "messages", "author", "content", "type", "timestamp", "mentions", "name", "nickname",
               "discriminator", "attachments", "stickers", "reference", "guild", "channel", "recipients", "ID",
               "Timestamp", "Contents", "Attachments"]
# Raw JSON that json.dumps cannot write, or that sits at the edges of what parsers accept.
RAW = ["[" * 3000 + "]" * 3000, "[" * 200 + "{}" + "]" * 200, "9" * 5000, "-" + "1" * 4301, "NaN", "-Infinity",
       "1e999", '"\\ud800"', '"a\\udfffb"', '"' + "x" * 200_000 + '"', '"' + " " * 50_000 + '<@1>"', "1.5e300",
       '"9999-12-31T23:59:59-05:00"', '"0001-01-01T00:00:00+05:00"', '"Fri Dec 31 23:59:59 -2359 9999"',
       '"2012-01-31 21:44:55 +9999"', '"RT @a: b"', '"https://t.co/x"', '"<@123> <#4> <:e:5>"', '"\\n\\r\\u2028"',
       "18446744073709551617", "true", "null", "{}", "[]", '""', '{"tweet": 1}', '[{"ID": 1}]']

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**53, max_value=2**80)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.sampled_from(READ_FIELDS) | st.text(max_size=8), kids, max_size=4),
                           max_leaves=12)
odd_text = st.text(max_size=40) | st.sampled_from(
    ["", '"', "\n", "\r", "\r\n", "\x00", ",", '""', "x" * 200_000, "9999-12-31 23:59:59 -0500", "RT @a: b",
     "https://t.co/abc", "@a @b", "\ud800", "\u2028", "0001-01-01T00:00:00+05:00", "\ufeff"])


# What every example checks


@contextmanager
def scratch():
    with tempfile.TemporaryDirectory(prefix="dann-fuzz-") as folder:
        yield Path(folder)


def check(call, export: Path, bound: int = MEMORY_BOUND):
    """Run `call` (a read of `export`): it returns a usable Corpus or raises a one-line CorpusError
    that names the export, and its peak allocation stays under `bound`. Anything else propagates
    and fails the example."""
    tracemalloc.start()
    try:
        corpus = call()
    except CorpusError as error:
        message = str(error)
        assert message.isprintable(), repr(message)  # one line: no newline or other control character
        assert str(export) in message, message
        return None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < bound, f"{peak / 2**20:.1f} MiB at peak"
    assert isinstance(corpus, Corpus)
    for record in corpus.records:
        assert record.kind in ("post", "reply") and record.text, record
        record.text.encode("utf-8")  # no lone surrogate reaches the corpus
    json.dumps(corpus.stats())
    return corpus


# Mutations


def slots(doc):
    """Every (container, key) in a JSON document, so a mutation can land anywhere in it."""
    found, stack = [], [doc]
    while stack:
        node = stack.pop()
        pairs = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in pairs:
            found.append((node, key))
            stack.append(value)
    return found


def swapped(draw, value):
    """The same content as a value of another type: what a careless or hostile exporter writes."""
    if isinstance(value, str):
        options = [len(value), float(len(value)), [value], {"text": value}, None, True, value.encode().hex()]
    elif isinstance(value, bool):
        options = [str(value).lower(), int(value), None]
    elif isinstance(value, int | float):
        options = [str(value), [value], None, {"value": value}, -value]
    elif isinstance(value, list):
        options = [{str(i): v for i, v in enumerate(value)}, value[0] if value else None, "list", value * 3]
    elif isinstance(value, dict):
        options = [list(value.values()), list(value), "", 0, [value]]
    else:
        options = ["null", 0, [], {}]
    return draw(st.sampled_from(options))


@st.composite
def mutated_json(draw, doc, raw_ok=True) -> str:
    """`doc` with a few structural mutations, as JSON text."""
    doc, raws = copy.deepcopy(doc), {}
    for _ in range(draw(st.integers(0, 5))):
        places = slots(doc)
        if not places:
            break
        container, key = places[draw(st.integers(0, len(places) - 1))]
        op = draw(st.sampled_from(["replace", "swap", "delete", "nest", "insert", "raw" if raw_ok else "swap"]))
        if op == "replace":
            container[key] = draw(json_values)
        elif op == "swap":
            container[key] = swapped(draw, container[key])
        elif op == "delete":
            del container[key]
        elif op == "nest":
            for _ in range(draw(st.integers(1, 50))):
                container[key] = draw(st.sampled_from([[container[key]], {"tweet": container[key]}]))
        elif op == "insert" and isinstance(container[key], dict):
            container[key][draw(st.sampled_from(READ_FIELDS))] = draw(json_values)
        elif op == "raw":
            marker = f"@@raw{len(raws)}@@"
            raws[f'"{marker}"'] = draw(st.sampled_from(RAW))
            container[key] = marker
    out = json.dumps(doc, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1])))
    for marker, raw in raws.items():
        out = out.replace(marker, raw)
    return out


@st.composite
def mutated_bytes(draw, data: bytes, most: int = 3) -> bytes:
    """`data` truncated, with bytes flipped, ranges dropped or doubled, or random bytes put in."""
    data = bytearray(data)
    for _ in range(draw(st.integers(0, most))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["truncate", "flip", "drop", "double", "insert"]))
        if op == "truncate":
            del data[at:]
        elif op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "drop":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "double":
            data[at:at] = data[at:at + draw(st.integers(1, 256))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def maybe_damaged(draw, text_: str) -> bytes:
    """Text as UTF-8 (a lone surrogate from a raw string passes through as it would on disk), and
    now and then damaged as bytes."""
    data = text_.encode("utf-8", "surrogatepass")
    return draw(mutated_bytes(data)) if draw(st.integers(0, 3)) == 0 else data


@st.composite
def js_file(draw, doc) -> bytes:
    wrapper = draw(st.sampled_from(WRAPPERS))
    return maybe_damaged(draw, wrapper + draw(mutated_json(doc)) + draw(st.sampled_from(["", ";", ";\n", "\n"])))


@st.composite
def csv_file(draw, header, rows) -> bytes:
    """A CSV grown from `header` and `rows`: cells replaced with odd text, rows cut or lengthened,
    written properly quoted or joined raw with commas."""
    table = [list(header)] + [list(r) for r in rows]
    for _ in range(draw(st.integers(0, 6))):
        row = table[draw(st.integers(0, len(table) - 1))]
        op = draw(st.sampled_from(["cell", "cut", "grow", "drop_row"]))
        if op == "cell" and row:
            row[draw(st.integers(0, len(row) - 1))] = draw(odd_text)
        elif op == "cut":
            del row[draw(st.integers(0, len(row))):]
        elif op == "grow":
            row.extend(draw(st.lists(odd_text, max_size=3)))
        elif op == "drop_row" and len(table) > 1:
            table.remove(row)
    if draw(st.booleans()):
        out = io.StringIO(newline="")
        csv.writer(out).writerows(table)
        body = out.getvalue()
    else:
        body = "\n".join(",".join(row) for row in table)
    return maybe_damaged(draw, body)


def zipped(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data, compress_type=method)
    return out.getvalue()


def write_export(folder: Path, members: dict[str, bytes], as_zip: bool, special: tuple | None = None) -> Path:
    """The members as an export in `folder`: a zip, or an unzipped folder, where `special`
    (member name, what) turns one member into a FIFO or a link to /dev/zero, outside or inside."""
    if as_zip:
        path = folder / "export.zip"
        path.write_bytes(zipped(members))
        return path
    root = folder / "export"
    for name, data in members.items():
        target = root / name
        if not target.resolve().is_relative_to(root.resolve()):
            continue  # a folder export cannot hold what a zip member name points at outside it
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except (IsADirectoryError, NotADirectoryError, FileExistsError):
            pass  # "a" and "a/b" both as files: the file system keeps one
    root.mkdir(exist_ok=True)
    if special is not None:
        name, what = special
        target = root / name
        target.unlink()
        if what == "fifo":
            os.mkfifo(target)
        else:
            outside = folder / "outside.js"
            outside.write_bytes(members[name])
            target.symlink_to({"dev_zero": "/dev/zero", "outside": outside, "inside": root / "data"}.get(what, outside))
    return root


def specials(draw, members: dict, as_zip: bool):
    """Now and then, for a folder export, one member to turn into a FIFO or a link."""
    if as_zip or draw(st.integers(0, 4)):
        return None
    return draw(st.sampled_from(sorted(members))), draw(st.sampled_from(["fifo", "dev_zero", "outside", "inside"]))


def through_archive(path: Path, parse):
    """`parse` (a format's reader of an Archive) called on the export at `path`, as read_corpus does."""
    with Archive(path) as export:
        return parse(export)


# The parsers


@given(st.data())
def test_tweets_js(data):
    """A single tweets.js (or tweet.js), mutated, with a mutated note-tweet.js beside it or not."""
    with scratch() as folder:
        path = folder / data.draw(st.sampled_from(["tweets.js", "tweet.js"]))
        path.write_bytes(data.draw(js_file(data.draw(st.sampled_from(TWEET_DOCS)))))
        if data.draw(st.booleans()):
            (folder / "note-tweet.js").write_bytes(data.draw(js_file(NOTE_DOC)))
        check(lambda: read_corpus(path), folder)  # an error may name the note-tweet.js beside it
        check(lambda: x.read_js_file(path), folder)


@given(st.data())
def test_grailbird(data):
    """Grailbird month files (`Grailbird.data.tweets_2012_01 = [...]`), in a classic archive zip."""
    with scratch() as folder:
        month = maybe_damaged(data.draw, "Grailbird.data.tweets_2012_01 = \n" + data.draw(mutated_json(GRAILBIRD_DOC)))
        members = {"data/js/tweets/2012_01.js": month, "data/js/tweet_index.js": b"var tweet_index = []"}
        if data.draw(st.booleans()):
            members["tweets.csv"] = data.draw(csv_file(CSV_COLUMNS, CSV_ROWS))
        path = write_export(folder, members, as_zip=data.draw(st.booleans()))
        check(lambda: read_corpus(path), path)
        direct = folder / "2012_01.js"
        direct.write_bytes(month)
        check(lambda: x.read_js_file(direct), direct)


@given(st.data())
def test_tweets_csv(data):
    with scratch() as folder:
        path = folder / "tweets.csv"
        path.write_bytes(data.draw(csv_file(CSV_COLUMNS, CSV_ROWS)))
        check(lambda: read_corpus(path), path)
        check(lambda: x.read_csv_file(path), path)


@given(st.data())
def test_x_archive(data):
    """The fixture X archive, zipped or as a folder, with one or two of its data files mutated."""
    with scratch() as folder:
        members = dict(X_MEMBERS)
        for _ in range(data.draw(st.integers(1, 2))):
            name = data.draw(st.sampled_from(["data/tweets.js", "data/tweets-part1.js", "data/note-tweet.js"]))
            doc = NOTE_DOC if "note" in name else TWEET_DOCS[name.endswith("part1.js")]
            members[name] = data.draw(js_file(doc))
        as_zip = data.draw(st.booleans())
        path = write_export(folder, members, as_zip, specials(data.draw, members, as_zip))
        check(lambda: read_corpus(path), path)
        check(lambda: through_archive(path, x.read_archive), path)


@given(st.data())
def test_dce(data):
    with scratch() as folder:
        path = folder / "channel.json"
        path.write_bytes(maybe_damaged(data.draw, data.draw(mutated_json(DCE_DOC))))
        author = data.draw(st.sampled_from([None, "alice", "111111111111111111", "bob#0000"]) | st.text(max_size=8))
        include_dms = data.draw(st.booleans())
        check(lambda: read_corpus(path, author=author, include_dms=include_dms), path)
        check(lambda: dce.read_dce(path, author, include_dms), path)


@given(st.data())
def test_discord_package(data):
    """The fixture package, zipped or as a folder, with index.json, a channel.json, a messages.json
    or a messages.csv mutated, and channels added."""
    with scratch() as folder:
        members = dict(PACKAGE_MEMBERS)
        for _ in range(data.draw(st.integers(1, 3))):
            name = data.draw(st.sampled_from(sorted(members)))
            if name.endswith(".json"):
                members[name] = maybe_damaged(data.draw, data.draw(mutated_json(json.loads(PACKAGE_MEMBERS[name]))))
            elif name.endswith(".csv"):
                rows = list(csv.reader(io.StringIO(PACKAGE_MEMBERS[name].decode(), newline="")))
                members[name] = data.draw(csv_file(rows[0], rows[1:]))
        for n in range(data.draw(st.integers(0, 3))):
            members[f"messages/c{n}/messages.json"] = data.draw(mutated_json(
                [{"ID": n, "Timestamp": "2024-01-01 00:00:00", "Contents": "added", "Attachments": ""}])).encode()
        as_zip = data.draw(st.booleans())
        path = write_export(folder, members, as_zip, specials(data.draw, members, as_zip))
        include_dms = data.draw(st.booleans())
        check(lambda: read_corpus(path, include_dms=include_dms), path)
        check(lambda: through_archive(path, lambda export: discord_package.read_package(export, include_dms)), path)


@given(st.data())
def test_txt(data):
    with scratch() as folder:
        path = folder / data.draw(st.sampled_from(["posts.txt", "posts.md", "posts"]))
        body = data.draw(st.text() | st.binary() | st.sampled_from(["\n" * 5000, " \n\n \r\n" * 2000, "a\x00b"]))
        path.write_bytes(body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body)
        split = data.draw(st.sampled_from([None, "lines", "paragraphs"]))
        check(lambda: read_corpus(path, split=split), path)
        check(lambda: text.read_text_file(path, split), path)


X_ZIP = zipped(X_MEMBERS)
PACKAGE_ZIP = zipped(PACKAGE_MEMBERS)


@given(st.data())
def test_zip_bytes(data):
    """Random bytes named .zip (or not), and the fixture zips damaged anywhere, their directory most."""
    with scratch() as folder:
        path = folder / data.draw(st.sampled_from(["export.zip", "download"]))
        kind = data.draw(st.sampled_from(["random", "damaged", "directory"]))
        if kind == "random":
            body = data.draw(st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06"])) + data.draw(st.binary(max_size=2000))
        else:
            source = data.draw(st.sampled_from([X_ZIP, PACKAGE_ZIP]))
            if kind == "damaged":
                body = data.draw(mutated_bytes(source, most=6))
            else:  # the central directory and end record: where sizes, offsets and names are
                cut = source.rindex(b"PK\x01\x02", 0, source.rindex(b"PK\x01\x02"))
                body = source[:cut] + data.draw(mutated_bytes(source[cut:], most=6))
        path.write_bytes(body)
        check(lambda: read_corpus(path), path)


member_names = st.sampled_from(["data/tweets.js", "data/tweet.js", "tweets.csv", "data/note-tweet.js",
                                "messages/index.json", "Messages/index.json", "data/js/tweets/2012_01.js",
                                "../evil.js", "/abs.js", "C:/x.js", "data/", "data/tweets.js\n", "messages/c1/",
                                "data/tweets-part" + "9" * 5000 + ".js", "1\u00b21/data/tweets.js",
                                "messages/c" + "1" * 5000 + "/messages.json"]) \
    | st.builds(lambda n: f"data/tweets-part{n}.js", st.integers(0, 10**6)) \
    | st.builds(lambda n, kind: f"messages/c{n}/messages.{kind}", st.integers(0, 10**6),
                st.sampled_from(["json", "csv"])) \
    | st.builds(lambda n: f"messages/c{n}/channel.json", st.integers(0, 10**6)) \
    | st.text(min_size=1, max_size=20)
member_bodies = st.sampled_from([b"", b"[]", b"{}", b"window.YTD.tweets.part0 = []", b'{"1": "general in S"}',
                                 b'[{"ID": 1, "Contents": "hi", "Attachments": ""}]', b'{"type": 0, "guild": {}}',
                                 b"tweet_id,text\n1,hi\n", b"ID,Timestamp,Contents,Attachments\n1,,hi,\n"]) \
    | st.binary(max_size=200)


@pytest.mark.slow
@given(st.data())
def test_zip_members(data):
    """Zips with many members, odd member names, every compression method, and members that
    decompress far past the caps, read under lowered caps so that the budget is what bounds them."""
    with scratch() as folder, mock.patch.object(archive, "MAX_TEXT_BYTES", 512 * 1024), \
            mock.patch.object(archive, "MAX_TOTAL_BYTES", 1024 * 1024), \
            mock.patch.object(archive, "MAX_MEMBERS_READ", 50):
        if data.draw(st.booleans()):  # many small members
            most = data.draw(st.sampled_from([5, 300]))
            members = data.draw(st.dictionaries(member_names, member_bodies, max_size=most))
            if data.draw(st.booleans()):
                members.update({f"data/tweets-part{n}.js": b"window.YTD.tweets.part0 = []" for n in range(500)})
            method = data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                                zipfile.ZIP_LZMA]))
        else:  # up to 40 tweets.js parts, each compressing a thousandfold: 20 MiB of text in all, unbounded
            size = data.draw(st.integers(1, 768)) * 1024
            tweet = json.dumps({"tweet": {"id_str": "1", "full_text": ""}})[:-3]  # ends in `"full_text": "`
            body = ("window.YTD.tweets.part0 = [" + tweet + "a " * (size // 2) + '"}}]').encode()
            members = {f"data/tweets-part{n}.js": body for n in range(data.draw(st.integers(1, 40)))}
            method = zipfile.ZIP_DEFLATED  # the others take seconds to compress this much
        path = folder / "export.zip"
        path.write_bytes(zipped(members, method))
        # The budget is 1 MiB of text here; without it, 40 members of 768 KiB would peak far above this.
        check(lambda: read_corpus(path, include_dms=data.draw(st.booleans())), path, bound=12 * 2**20)


def test_the_fixture_exports_pass_the_checks_unmutated():
    """The checks pass real reads: a parser that refused everything would fail here."""
    with scratch() as folder:
        for n, (members, as_zip) in enumerate([(X_MEMBERS, True), (X_MEMBERS, False), (PACKAGE_MEMBERS, True)]):
            (folder / str(n)).mkdir()
            path = write_export(folder / str(n), members, as_zip)
            assert check(lambda path=path: read_corpus(path), path).records


def test_the_checks_catch_what_they_are_for(tmp_path):
    """A multi-line message, a message that does not name the export, an exception that is not a
    CorpusError and a read past the memory bound each fail `check`."""
    for bad in (CorpusError(f"{tmp_path}: one\ntwo"), CorpusError("names no file"), KeyError("x")):
        def fail(bad=bad):
            raise bad
        with pytest.raises((AssertionError, KeyError)):
            check(fail, tmp_path)
    with pytest.raises(AssertionError, match="MiB at peak"):
        check(lambda: bytearray(2**20) and read_corpus(tmp_path), tmp_path, bound=2**19)
