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
import json
import re
from datetime import datetime
from pathlib import Path

from trainer.corpus import Corpus, CorpusError, Record, normalise_whitespace, only_links, utc_iso
from trainer.corpus import domain as host_of
from trainer.exports.archive import read_text

TWEET_FILES = r"(^|/)data/tweets?(-part\d+)?\.js$"
NOTE_FILES = r"(^|/)data/note-tweets?(-part\d+)?\.js$"
GRAILBIRD_FILES = r"(^|/)data/js/tweets/\d{4}_\d{2}\.js$"
CSV_FILES = r"(^|/)tweets\.csv$"

TCO = re.compile(r"https?://t\.co/\w+")
LEADING_MENTIONS = re.compile(r"^(?:@\w+\s*)+")
NOTE_WINDOW_S = 10  # a note and its cut tweets.js copy share no id; public importers match them on time


def holds_tweets(archive) -> bool:
    return any(archive.find(p) for p in (TWEET_FILES, GRAILBIRD_FILES, CSV_FILES))


def read_archive(archive) -> Corpus:
    if files := archive.find(TWEET_FILES):
        tweets = [t for name in files for t in parse_js(archive.read_text(name), archive.where(name))]
        notes = [n for name in archive.find(NOTE_FILES) for n in parse_js(archive.read_text(name), archive.where(name))]
        return tweets_corpus("x archive", tweets, notes)
    if files := archive.find(GRAILBIRD_FILES):
        tweets = [t for name in files for t in parse_js(archive.read_text(name), archive.where(name))]
        return tweets_corpus("x archive (grailbird)", tweets, [])
    name = archive.find(CSV_FILES)[0]
    return csv_corpus(archive.read_text(name), archive.where(name))


def read_js_file(path: Path) -> Corpus:
    """A single tweets.js, tweet.js or Grailbird month file. A note-tweet.js beside it is used too."""
    if re.search(NOTE_FILES, path.as_posix(), re.IGNORECASE):
        raise CorpusError(f"{path}: holds only the long posts; give the archive or its tweets.js instead")
    tweets = parse_js(read_text(path), str(path))
    beside = path.parent / "note-tweet.js"
    notes = parse_js(read_text(beside), str(beside)) if beside.is_file() else []
    return tweets_corpus("x tweets.js", tweets, notes)


def read_csv_file(path: Path) -> Corpus:
    return csv_corpus(read_text(path), str(path))


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
    try:
        items = json.loads(body)
    except json.JSONDecodeError as error:
        raise CorpusError(f"{where}: broken JSON at line {error.lineno} column {error.colno} ({error.msg})") from None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise CorpusError(f"{where}: expected a list of tweet objects after `=`")
    return items


def tweets_corpus(format: str, items: list[dict], note_items: list[dict]) -> Corpus:
    records, retweets, link_only = [], 0, 0
    for item in items:
        tweet = item["tweet"] if isinstance(item.get("tweet"), dict) else item  # some early files are unwrapped
        text = tweet.get("full_text") or tweet.get("text") or ""
        # GDPR archives drop retweeted_status and often leave `retweeted` false on retweets; the
        # "RT @" prefix is the marker that always holds.
        if text.startswith("RT @") or tweet.get("retweeted") in (True, "true") or "retweeted_status" in tweet:
            retweets += 1
            continue
        reply = bool(tweet.get("in_reply_to_status_id_str") or tweet.get("in_reply_to_status_id"))
        if reply:
            text = strip_reply_prefix(text, tweet.get("display_text_range"))
        if only_links(text, TCO):
            link_only += 1
            continue
        entities = tweet.get("entities") or {}
        media = entities.get("media", []) + (tweet.get("extended_entities") or {}).get("media", [])
        links = {m.get("url"): "" for m in media}
        links.update({u.get("url"): domain(u.get("expanded_url")) for u in entities.get("urls", [])})
        text = html.unescape(TCO.sub(lambda m: links.get(m.group(), ""), text))  # once: "&amp;lt;" is "&lt;"
        records.append(Record("reply" if reply else "post", text, parse_time(tweet.get("created_at")),
                              str(tweet.get("id_str") or tweet.get("id") or "") or None))
    dropped = {"retweets": retweets, "link_only": link_only}
    if note_items:
        dropped["unmatched_notes"] = attach_notes(records, note_items)
    return Corpus.from_records(format, records, dropped)


def attach_notes(records: list[Record], note_items: list[dict]) -> int:
    """Put each long post's full text in place of its cut copy; returns how many notes found no copy.

    A note with no copy is left out: its tweet was deleted or retweet-like, and the person chose that.
    """
    unmatched = 0
    times = [_moment(r.created_at) for r in records]
    for item in note_items:
        note = item.get("noteTweet") or item
        core = note.get("core") or {}
        links = {u.get("shortUrl") or u.get("url"): domain(u.get("expandedUrl") or u.get("expanded_url"))
                 for u in core.get("urls") or []}
        text = html.unescape(TCO.sub(lambda m: links.get(m.group(), ""), core.get("text") or note.get("text") or ""))
        moment = _moment(parse_time(note.get("createdAt") or note.get("created_at")))
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
    if not {"tweet_id", "text"} <= set(reader.fieldnames or []):
        raise CorpusError(f"{where}: not an X tweets.csv (it needs the columns tweet_id and text)")
    records, retweets, link_only = [], 0, 0
    try:
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
            text = html.unescape(TCO.sub(lambda m: domain(next(expanded, None)), text))
            records.append(Record("reply" if reply else "post", text, parse_time(row.get("timestamp")),
                                  row["tweet_id"] or None))
    except csv.Error as error:
        raise CorpusError(f"{where}: broken CSV at line {reader.line_num} ({error})") from None
    return Corpus.from_records("x archive (tweets.csv)", records, {"retweets": retweets, "link_only": link_only})


def strip_reply_prefix(text: str, display_text_range) -> str:
    """Drop the "@sam @alex " that X fills in before a reply. display_text_range[0] says where the
    person's own words start; it counts code points, and the prefix is ASCII handles, so it is a
    Python index. Without it (older tweets), or if it does not land after handles, a regex decides.
    """
    try:
        start = int(display_text_range[0])
    except (TypeError, ValueError, IndexError):
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


def parse_time(value) -> str | None:
    """The archive's times ("Wed Oct 10 20:19:24 +0000 2018", "2012-01-31 21:44:55 +0000", ISO) as UTC ISO."""
    if not value:
        return None
    for layout in ("%a %b %d %H:%M:%S %z %Y", "%Y-%m-%d %H:%M:%S %z"):
        try:
            return utc_iso(datetime.strptime(value, layout))
        except ValueError:
            pass
    try:
        return utc_iso(datetime.fromisoformat(value))
    except ValueError:
        return None  # an odd time is not worth losing the post; it keeps its place in the file


def _moment(iso: str | None):
    return datetime.fromisoformat(iso) if iso else None
