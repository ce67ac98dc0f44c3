"""A .txt file: one post per line, or one per blank-line paragraph."""

import re
from pathlib import Path

from trainer.corpus import Corpus, CorpusError, Record
from trainer.exports.archive import read_text, shown

SUFFIXES = {".txt", ".text", ".md", ""}  # "" keeps a bare `posts` file working


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
        raise CorpusError(f"{shown(path)}: split must be 'lines' or 'paragraphs', not {split!r}")
    records, empty = [], 0
    for chunk in chunks:
        cleaned = "\n".join(line.rstrip() for line in chunk.strip().split("\n"))
        if cleaned:
            records.append(Record("post", cleaned))
        else:
            empty += 1
    return Corpus(format=f"txt ({split})", records=records, dropped={"empty": empty} if split == "lines" else {})
