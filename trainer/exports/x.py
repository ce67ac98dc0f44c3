"""X (Twitter) archives: the person's own posts and replies, cleaned, without retweets.

Three layouts (field notes: shared/notes/export-formats.md), read from the newest one an archive holds,
because a classic archive carries the same tweets twice (Grailbird files and tweets.csv):
- `data/tweets.js`, `data/tweets-partN.js`, and the older `data/tweet.js`: `window.YTD.tweets.part0 = [...]`,
  items `{"tweet": {...}}` with numbers as strings. `data/note-tweet.js` holds the full text of posts
  longer than 280 characters, whose tweets.js copy is cut short with "…".
- `data/js/tweets/YYYY_MM.js` (Grailbird, 2012-2018): `Grailbird.data.tweets_2012_01 = [...]`, API v1.1 tweets.
- `tweets.csv` at the root (same era): one row per tweet, with a `text` column.

Links: a t.co link becomes the domain of its expanded_url ("youtube.com"), as any link does in a
corpus (trainer/corpus.py). Links to attached media, "show more" links of cut posts, and t.co links
with no expansion are removed. A post that was nothing but t.co links is dropped as `link_only`.
"""

import csv
import html
import io
import os
import re
from datetime import datetime
from pathlib import Path

from trainer.corpus import Corpus, CorpusError, Record, normalise_whitespace, only_links
from trainer.corpus import domain as host_of
from trainer.exports.archive import read_text, shown
from trainer.exports.fields import id_field, list_field, numbered, object_field, objects_field, parse_json, text_field
from trainer.exports.fields import parse_time as parse_any_time

TWEET_FILES = r"(^|/)data/tweets?(-part\d+)?\.js$"
NOTE_FILES = r"(^|/)data/note-tweets?(-part\d+)?\.js$"
GRAILBIRD_FILES = r"(^|/)data/js/tweets/\d{4}_\d{2}\.js$"
CSV_FILES = r"(^|/)tweets\.csv$"

TCO = re.compile(r"https?://t\.co/\w+")
LEADING_MENTIONS = re.compile(r"^(?:@\w+\s*)+")
NOTE_WINDOW_S = 10  # a note and its cut tweets.js copy share no id; public importers match them on time
TIME_LAYOUTS = ("%a %b %d %H:%M:%S %z %Y", "%Y-%m-%d %H:%M:%S %z")  # "Wed Oct 10 20:19:24 +0000 2018", Grailbird


def holds_tweets(archive) -> bool:
    return any(archive.find(p) for p in (TWEET_FILES, GRAILBIRD_FILES, CSV_FILES))


def read_archive(archive) -> Corpus:
    def items(names):
        return [item for name in names for item in js_items(archive.read_text(name), archive.where(name))]

    if files := archive.find(TWEET_FILES):
        return tweets_corpus("x archive", items(files), items(archive.find(NOTE_FILES)))
    if files := archive.find(GRAILBIRD_FILES):
        return tweets_corpus("x archive (grailbird)", items(files), [])
    name = archive.find(CSV_FILES)[0]
    return csv_corpus(archive.read_text(name), archive.where(name))


def read_js_file(path: Path) -> Corpus:
    """A single tweets.js, tweet.js or Grailbird month file. A note-tweet.js beside it is used too."""
    if re.search(NOTE_FILES, path.as_posix(), re.IGNORECASE):
        raise CorpusError(f"{shown(path)}: holds only the long posts; give the archive or its tweets.js instead")
    tweets = js_items(read_text(path), shown(path))
    beside = path.parent / "note-tweet.js"
    # The person named tweets.js, not the file beside it: that one is read only as itself, never
    # through a symlink, as a member of an unzipped archive is (archive.py).
    notes = js_items(read_text(beside, follow=False), shown(beside)) if os.path.lexists(beside) else []
    return tweets_corpus("x tweets.js", tweets, notes)


def read_csv_file(path: Path) -> Corpus:
    return csv_corpus(read_text(path), shown(path))


def parse_js(text: str, where: str) -> list:
    """The list assigned in `window.YTD.tweets.part0 = [...]` (or `Grailbird.data.tweets_2012_01 = [...]`)."""
    if not text.strip():
        return []  # some archives ship data files with nothing in them
    match = re.match(r"\s*[\w$.\[\]'\"]+\s*=", text)
    if match is None and not text.lstrip().startswith("["):
        raise CorpusError(f"{where}: does not start with `window.YTD.<name>.partN = [`; not an X archive data file")
    end = match.end() if match else 0
    # Blanking the assignment (not cutting it) keeps JSON error positions true to the file.
    body = re.sub(r"[^\n]", " ", text[:end]) + text[end:].rstrip().rstrip(";")
    items = parse_json(body, where)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise CorpusError(f"{where}: expected a list of tweet objects after `=`")
    return items


def js_items(text: str, where: str) -> list[tuple[str, dict]]:
    """`parse_js`'s items, each with how an error names it ("data/tweets.js: item 3")."""
    return numbered(parse_js(text, where), where)


def tweets_corpus(format: str, items: list[tuple[str, dict]], note_items: list[tuple[str, dict]]) -> Corpus:
    """The corpus of tweet items and note items, each with how an error names it ("data/tweets.js: item 3")."""
    records, retweets, link_only = [], 0, 0
    for where, item in items:
        tweet = object_field(item, "tweet", where) if "tweet" in item else item  # some early files are unwrapped
        text = text_field(tweet, "full_text", where) or text_field(tweet, "text", where) or ""
        # GDPR archives drop retweeted_status and often leave `retweeted` false on retweets; the
        # "RT @" prefix is the marker that always holds.
        if text.startswith("RT @") or tweet.get("retweeted") in (True, "true") or "retweeted_status" in tweet:
            retweets += 1
            continue
        reply = bool(tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id"))
        if reply:
            text = strip_reply_prefix(text, list_field(tweet, "display_text_range", where))
        if only_links(text, TCO):
            link_only += 1
            continue
        entities = object_field(tweet, "entities", where)
        media = objects_field(entities, "media", f"{where}: entities") + objects_field(
            object_field(tweet, "extended_entities", where), "media", f"{where}: extended_entities")
        links = {text_field(m, "url", f"{where}: media"): "" for m in media}
        links.update({text_field(u, "url", f"{where}: entities.urls"):
                      domain(text_field(u, "expanded_url", f"{where}: entities.urls"))
                      for u in objects_field(entities, "urls", f"{where}: entities")})
        text = html.unescape(TCO.sub(lambda m, links=links: links.get(m.group(), ""), text))  # once: "&amp;lt;" is "&lt;"
        created = parse_time(text_field(tweet, "created_at", where), where)
        source_id = id_field(tweet, "id_str", where) or id_field(tweet, "id", where) or None
        records.append(Record("reply" if reply else "post", text, created, source_id))
    dropped = {"retweets": retweets, "link_only": link_only}
    if note_items:
        dropped["unmatched_notes"] = attach_notes(records, note_items)
    return Corpus.from_records(format, records, dropped)


def attach_notes(records: list[Record], note_items: list[tuple[str, dict]]) -> int:
    """Put each long post's full text in place of its cut copy; returns how many notes found no copy.

    A note with no copy is left out: its tweet was deleted or retweet-like, and the person chose that.
    """
    unmatched = 0
    times = [_moment(r.created_at) for r in records]
    for where, item in note_items:
        note = object_field(item, "noteTweet", where) or item
        core = object_field(note, "core", where)
        urls = f"{where}: core.urls"
        links = {text_field(u, "shortUrl", urls) or text_field(u, "url", urls):
                 domain(text_field(u, "expandedUrl", urls) or text_field(u, "expanded_url", urls))
                 for u in objects_field(core, "urls", f"{where}: core")}
        text = text_field(core, "text", f"{where}: core") or text_field(note, "text", where) or ""
        text = html.unescape(TCO.sub(lambda m, links=links: links.get(m.group(), ""), text))
        created = text_field(note, "createdAt", where) or text_field(note, "created_at", where)
        moment = _moment(parse_time(created, where))
        near = [i for i, t in enumerate(times)
                if moment and t and abs((t - moment).total_seconds()) <= NOTE_WINDOW_S]
        if not near:
            unmatched += 1
            continue
        # A thread can put several tweets within seconds; the cut copy also starts with the note's words.
        same_start = [i for i in near if normalise_whitespace(text).startswith(
            normalise_whitespace(records[i].text).rstrip("…").strip()[:20])]
        best = min(same_start or near, key=lambda i: abs((times[i] - moment).total_seconds()))
        if records[best].kind == "reply":
            text = LEADING_MENTIONS.sub("", text)
        records[best] = Record(records[best].kind, text, records[best].created_at, records[best].source_id)
        times[best] = None  # one note per tweet
    return unmatched


def csv_corpus(text: str, where: str) -> Corpus:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    records, retweets, link_only = [], 0, 0
    try:
        if not {"tweet_id", "text"} <= set(reader.fieldnames or []):
            raise CorpusError(f"{where}: not an X tweets.csv (it needs the columns tweet_id and text)")
        for row in reader:
            text = row["text"] or ""
            if text.startswith("RT @") or row.get("retweeted_status_id"):
                retweets += 1
                continue
            reply = bool(row.get("in_reply_to_status_id"))
            if reply:
                text = LEADING_MENTIONS.sub("", text)  # no display_text_range in this era
            if only_links(text, TCO):
                link_only += 1
                continue
            # expanded_urls lists the expansions in the order the links appear in the text.
            expanded = iter([u for u in (row.get("expanded_urls") or "").split(",") if u])
            text = html.unescape(TCO.sub(lambda m, expanded=expanded: domain(next(expanded, None)), text))
            records.append(Record("reply" if reply else "post", text,
                                  parse_time(row.get("timestamp"), f"{where}: line {reader.line_num}"),
                                  row["tweet_id"] or None))
    except csv.Error as error:
        # The csv reader's count: the DictReader's stops at the last good row.
        raise CorpusError(f"{where}: broken CSV at line {reader.reader.line_num} ({error})") from None
    return Corpus.from_records("x archive (tweets.csv)", records, {"retweets": retweets, "link_only": link_only})


def strip_reply_prefix(text: str, display_text_range) -> str:
    """Drop the "@sam @alex " that X fills in before a reply. display_text_range[0] says where the
    person's own words start; it counts code points, and the prefix is ASCII handles, so it is a
    Python index. Without it (older tweets), or if it does not land after handles, a regex decides.
    """
    try:
        start = int(display_text_range[0])
    except (TypeError, ValueError, IndexError, OverflowError):  # anything but a whole number: no range
        start = None
    if start == 0:
        return text  # the person removed the handles X filled in; any they typed themselves are meant
    if start is not None and LEADING_MENTIONS.fullmatch(text[:start]):
        return text[start:]
    return LEADING_MENTIONS.sub("", text)


def domain(url: str | None) -> str:
    if not url or "/i/web/status/" in url:  # the "show more" link of a cut post is not the person's words
        return ""
    return host_of(url)


def parse_time(value: str | None, where: str) -> str | None:
    """The archive's times ("Wed Oct 10 20:19:24 +0000 2018", "2012-01-31 21:44:55 +0000", ISO) as UTC ISO."""
    return parse_any_time(value, where, TIME_LAYOUTS)


def _moment(iso: str | None):
    return datetime.fromisoformat(iso) if iso else None
