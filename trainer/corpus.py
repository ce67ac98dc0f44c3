"""Read what the user gives us into a corpus: a time-ordered list of post/reply records.

`read_corpus(path)` is the one entry point; `dann train`, `dann corpus` and the scheduled trainer
all call it. It decides the format from the path and calls that format's parser.
"""

import dataclasses
import hashlib
import json
import re
from pathlib import Path

MAX_TEXT_BYTES = 256 * 1024 * 1024  # one person's posts are megabytes; refuse to slurp more blindly


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
        }


def read_corpus(path, split: str | None = None) -> Corpus:
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such file or directory")
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, not a post export or a .txt file")
    corpus = read_text_file(path, split)
    if not corpus.records:
        raise CorpusError(f"{path}: no posts in it (the file is empty or only whitespace)")
    return corpus


def read_text(path: Path) -> str:
    """The file's text, refusing huge files, binary files and anything that is not UTF-8."""
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise CorpusError(f"{path}: {size / 2**20:.0f} MiB is too large (the limit is {MAX_TEXT_BYTES // 2**20} MiB)")
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise CorpusError(f"{path}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CorpusError(f"{path}: is not UTF-8 text (bad byte at offset {error.start})") from None


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
