"""Read what the user gives us into a corpus: a time-ordered list of post/reply records.

`read_corpus(path)` is the one entry point; `dann train`, `dann corpus` and the scheduled trainer
all call it. It decides the format from the path and calls that format's parser (export_x.py,
export_discord.py, export_dce.py, or `read_text_file` here). The cleaning every export shares
(whitespace, empty posts, duplicates, time order) is `Corpus.from_records`.
"""

import dataclasses
import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

MAX_TEXT_BYTES = 256 * 1024 * 1024  # one person's posts are megabytes; refuse to slurp more blindly
TEXT_SUFFIXES = {".txt", ".text", ".md", ""}  # "" keeps a bare `posts` file working as it did before exports


class CorpusError(Exception):
    """The input cannot be read into a corpus. The message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Record:
    kind: str  # "post" or "reply"
    text: str
    created_at: str | None = None  # ISO-8601
    source_id: str | None = None


@dataclasses.dataclass
class Corpus:
    format: str
    records: list[Record]
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_records(cls, format: str, records: list[Record], dropped: dict[str, int]) -> "Corpus":
        """The last steps every export shares: tidy whitespace, put the records in time order, and
        drop empty posts and exact duplicates (the first, earliest, copy stays). Counts go in `dropped`.
        """
        dropped = {**dropped, "empty": dropped.get("empty", 0), "duplicates": 0}
        kept, seen = [], set()
        for record in in_time_order(records):
            text = normalise_whitespace(record.text)
            if not text:
                dropped["empty"] += 1
            elif (record.kind, text) in seen:
                # The same words twice teach nothing new but would weigh twice (an X archive can hold
                # a tweet in two files; people paste the same message again).
                dropped["duplicates"] += 1
            else:
                seen.add((record.kind, text))
                kept.append(dataclasses.replace(record, text=text))
        return cls(format=format, records=kept, dropped=dropped)

    def data_hash(self) -> str:
        """Content hash of exactly what training sees, so an unchanged export can be recognised."""
        digest = hashlib.sha256()
        for r in self.records:
            digest.update(json.dumps([r.kind, r.text]).encode())
        return digest.hexdigest()[:16]

    def stats(self) -> dict:
        text = "".join(r.text for r in self.records)
        return {
            "format": self.format,
            "posts": sum(r.kind == "post" for r in self.records),
            "replies": sum(r.kind == "reply" for r in self.records),
            "dropped": self.dropped,
            "chars": len(text),
            "distinct_chars": len(set(text)),
            # The typical length of each kind: best-of-n prefers candidates near it (lstm/bestof.py).
            "median_chars": {kind: _median([len(r.text) for r in self.records if r.kind == kind])
                             for kind in ("post", "reply")},
        }


def _median(values: list[int]) -> int | None:
    return sorted(values)[len(values) // 2] if values else None


def read_corpus(path, split: str | None = None, author: str | None = None) -> Corpus:
    """Any supported input as a Corpus. `split` applies to a .txt, `author` to a DiscordChatExporter file."""
    # Imported here because each parser imports Record and CorpusError from this module.
    from trainer import export_dce, export_discord, export_x
    from trainer.archive import Archive

    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such file or directory")
    suffix = path.suffix.lower()
    zipped = path.is_file() and (suffix == ".zip" or _first_bytes(path) == b"PK\x03\x04")  # a download renamed
    is_txt = path.is_file() and not zipped and suffix in TEXT_SUFFIXES
    if split is not None and not is_txt:
        raise CorpusError(f"{path}: --split only applies to a .txt file")
    if author is not None and not (path.is_file() and suffix == ".json"):
        raise CorpusError(f"{path}: --author only applies to a DiscordChatExporter .json file")

    if path.is_dir() or zipped:
        with Archive(path) as archive:
            if export_x.holds_tweets(archive):
                corpus = export_x.read_archive(archive)
            elif export_discord.holds_messages(archive):
                corpus = export_discord.read_package(archive)
            else:
                kind = "folder" if path.is_dir() else "zip"
                raise CorpusError(f"{path}: this {kind} is neither an X archive (no data/tweets.js, data/tweet.js, "
                                  f"tweets.csv or data/js/tweets/) nor a Discord data package (no messages/index.json)")
    elif suffix == ".js":
        corpus = export_x.read_js_file(path)
    elif suffix == ".csv":
        corpus = export_x.read_csv_file(path)
    elif suffix == ".json":
        corpus = export_dce.read_dce(path, author)
    elif is_txt:
        corpus = read_text_file(path, split)
    else:
        raise CorpusError(f"{path}: unknown file type {suffix!r}; expected an X archive (.zip, folder, tweets.js, "
                          f"tweets.csv), a Discord data package (.zip, folder), a DiscordChatExporter .json, or a .txt")
    if not corpus.records:
        raise CorpusError(f"{path}: no posts in it (the file is empty or only whitespace)"
                          if is_txt else f"{path}: no posts in it after cleaning (dropped: {corpus.dropped})")
    return corpus


def _first_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(4)
    except OSError as error:
        raise CorpusError(f"{path}: cannot be read ({error.strerror or error})") from None


def read_text(path: Path) -> str:
    """The file's text, refusing huge files, binary files and anything that is not UTF-8."""
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise CorpusError(f"{path}: {size / 2**20:.0f} MiB is too large (the limit is {MAX_TEXT_BYTES // 2**20} MiB)")
    return decode_text(path.read_bytes(), str(path))


def decode_text(data: bytes, where: str) -> str:
    """Bytes from a file or a zip member as text; `where` names it in the error."""
    if b"\x00" in data[:65536]:
        raise CorpusError(f"{where}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CorpusError(f"{where}: is not UTF-8 text (bad byte at offset {error.start})") from None


def normalise_whitespace(text: str) -> str:
    """Runs of spaces and tabs become one space, lines are trimmed, and at most one blank line is kept.

    Line breaks stay: how a person breaks lines is part of their voice. Emoji joiners (U+200D) and
    variation selectors are not whitespace, so emoji sequences survive.
    """
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def utc_iso(moment: datetime) -> str:
    """ISO-8601 in UTC, so records from any source sort together. A time without a zone is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def in_time_order(records: list[Record]) -> list[Record]:
    """Sorted by created_at. A record without a time keeps its place after the record before it in
    the file, so a file with no times at all keeps file order (Python's sort is stable).
    """
    keys, last = [], datetime.min.replace(tzinfo=timezone.utc)
    for record in records:
        if record.created_at is not None:
            last = datetime.fromisoformat(record.created_at)
        keys.append(last)
    order = sorted(range(len(records)), key=keys.__getitem__)
    return [records[i] for i in order]


def read_text_file(path: Path, split: str | None = None) -> Corpus:
    """A .txt: one post per line, or posts separated by blank lines. Every record is a post.

    Without `split`, blank-line paragraphs are used when the file has them and most of them span
    several lines (verse, speeches, long posts); otherwise each line is a post.
    """
    text = read_text(path).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    if split is None:
        multi_line = sum("\n" in p.strip() for p in paragraphs)
        split = "paragraphs" if len(paragraphs) > 1 and multi_line * 2 > len(paragraphs) else "lines"
    if split == "paragraphs":
        chunks = paragraphs
    elif split == "lines":
        chunks = text.split("\n")
    else:
        raise CorpusError(f"split must be 'lines' or 'paragraphs', not {split!r}")
    records, empty = [], 0
    for chunk in chunks:
        cleaned = "\n".join(line.rstrip() for line in chunk.strip().split("\n"))
        if cleaned:
            records.append(Record("post", cleaned))
        else:
            empty += 1
    return Corpus(format=f"txt ({split})", records=records, dropped={"empty": empty} if split == "lines" else {})
