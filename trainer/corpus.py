"""A corpus: a time-ordered list of post/reply records, and the cleaning every export shares
(links, whitespace, empty and link-only posts, duplicates, time order: `Corpus.from_records`).

Links: a web address becomes its domain ("youtube.com"), so the model learns that this person
shares links and where to, without learning random paths and codes. A post that is nothing but
links says nothing in the person's words and is dropped as `link_only`. (X archives hide links
behind t.co; trainer/exports/x.py expands them to domains and counts its link-only posts itself.)

The parsers that read exports into a corpus are trainer/exports/; this module imports none of them.
"""

import dataclasses
import hashlib
import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from lstm.errors import DannError

# Up to whitespace or a quote; punctuation that ends a sentence after a link is not part of it.
URL = re.compile(r"\bhttps?://[^\s<>\"']*[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)
# JSON can spell half of a surrogate pair ("\ud83d" alone); it decodes to a str that no encoder
# accepts, so printing the record or saving a vocabulary holding it would fail far from the export.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class CorpusError(DannError):
    """The input cannot be read into a corpus. The message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Record:
    kind: str  # "post" or "reply"
    text: str
    created_at: str | None = None  # ISO-8601
    source_id: str | None = None
    private: bool = False  # from a DM or group DM, read only because DMs were asked for: never shown
    platform: str | None = None  # x, discord or text for an export; its platform for a stored post
    # How it reached dann: "export:NAME", or the store's source (mastodon, discord…). Where, not what:
    # the same post read from a zip and from its unzipped folder is the same record.
    source: str | None = dataclasses.field(default=None, compare=False)


@dataclasses.dataclass
class Corpus:
    format: str
    records: list[Record]
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    forget_digest: str = ""  # the forget list applied by `without` (dann/voice/forget.py), if any

    @classmethod
    def from_records(cls, format: str, records: list[Record], dropped: dict[str, int]) -> "Corpus":
        """The last steps every export shares: tidy whitespace, put the records in time order, and
        drop empty posts, posts that are only links, and exact duplicates (the first, earliest, copy
        stays). Links become their domain. Counts go in `dropped`.
        """
        dropped = {**dropped, "empty": dropped.get("empty", 0), "link_only": dropped.get("link_only", 0),
                   "duplicates": 0}
        kept, seen = [], set()
        for record in in_time_order(records):
            if only_links(record.text, URL):
                dropped["link_only"] += 1
                continue
            text = normalise_whitespace(URL.sub(lambda m: domain(m.group()), LONE_SURROGATE.sub("\ufffd", record.text)))
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

    def without(self, forget) -> "Corpus":
        """This corpus minus every record holding a phrase of the forget list `forget` (its `match`
        and `digest`), counted as `forgotten`."""
        kept = [r for r in self.records if not forget.match(r.text)]
        return dataclasses.replace(self, records=kept, forget_digest=forget.digest(),
                                   dropped={**self.dropped, "forgotten": len(self.records) - len(kept)})

    def with_stored(self, stored: list[Record], deleted: set[tuple[str, str]]) -> "Corpus":
        """This export plus the post store's posts (`stored`, already records), as the trainer
        reads them: a post in both is the store's (it has the edits), and an export's post that was
        deleted on its platform since (`deleted`: its platform and id) is left out, counted as
        `deleted`. The stored posts are cleaned as an export's are; the export's records stay as
        their reader left them (a .txt keeps its repeated lines), and all go in time order."""
        in_store = {(r.platform, r.source_id) for r in stored}
        kept, gone = [], 0
        for record in self.records:
            key = (record.platform, record.source_id)
            if record.source_id and key in deleted:
                gone += 1
            elif not (record.source_id and key in in_store):
                kept.append(record)
        cleaned = Corpus.from_records("store", stored, {}) if stored else Corpus("store", [])
        dropped = {**self.dropped, "deleted": self.dropped.get("deleted", 0) + gone}
        for reason, count in cleaned.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
        return dataclasses.replace(self, format=self.format if not stored else f"{self.format} + store",
                                   records=in_time_order(kept + cleaned.records), dropped=dropped)

    @property
    def chars(self) -> int:
        """Characters of text in all the records: what sizes the defaults (trainer/config.py)."""
        return sum(len(r.text) for r in self.records)

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
            # Where the posts came from ("export:NAME", "mastodon"…), and each source's newest post.
            "sources": _by_source(self.records),
            "chars": len(text),
            "distinct_chars": len(set(text)),
            # The newest post's time: `/dann about` says the voice was learned from posts up to it.
            "until": max((r.created_at for r in self.records if r.created_at), default=None),
            # The typical length of each kind: best-of-n prefers candidates near it (dann/voice/bestof.py).
            "median_chars": {kind: _median([len(r.text) for r in self.records if r.kind == kind])
                             for kind in ("post", "reply")},
        }


def _by_source(records: list[Record]) -> dict:
    """Posts per source, with each source's newest post, in one pass."""
    found: dict[str, dict] = {}
    for r in records:
        if r.source:
            entry = found.setdefault(r.source, {"posts": 0, "newest": None})
            entry["posts"] += 1
            if r.created_at and (entry["newest"] is None or r.created_at > entry["newest"]):
                entry["newest"] = r.created_at
    return dict(sorted(found.items()))


def _median(values: list[int]) -> int | None:
    return sorted(values)[len(values) // 2] if values else None


def only_links(text: str, links: re.Pattern) -> bool:
    """Whether `text` holds at least one link (`links` finds them) and nothing else but whitespace."""
    return bool(links.search(text)) and not links.sub("", text).strip()


def domain(url: str | None) -> str:
    """The host a link points to, without "www.": what a shared link says in a post."""
    try:
        host = urlsplit(url).hostname or "" if url else ""
    except ValueError:  # a malformed address ("http://[oops") is not worth losing the post over
        host = ""
    return host.removeprefix("www.")


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
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def in_time_order(records: list[Record]) -> list[Record]:
    """Sorted by created_at. A record without a time keeps its place after the record before it in
    the file, so a file with no times at all keeps file order (Python's sort is stable).
    """
    keys, last = [], datetime.min.replace(tzinfo=UTC)
    for record in records:
        if record.created_at is not None:
            last = datetime.fromisoformat(record.created_at)
        keys.append(last)
    order = sorted(range(len(records)), key=keys.__getitem__)
    return [records[i] for i in order]
