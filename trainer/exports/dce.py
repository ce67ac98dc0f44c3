"""DiscordChatExporter (Tyrrrz) JSON: one channel's messages from everyone, of which we keep one author's.

Root object: {"guild", "channel", "messages": [...]}; each message has `id`, `type`, `timestamp`,
`content`, `author` {id, name, nickname, ...}, `mentions[]`, `attachments[]` and, on replies,
`reference` {messageId}. With DCE's default markdown processing `content` is plain text with
mentions as "@name"; with `--markdown false` it keeps Discord's raw `<@123>` markup. Both are cleaned.
"""

import re
from pathlib import Path

from trainer.corpus import Corpus, CorpusError, Record, normalise_whitespace
from trainer.exports.archive import read_text, shown
from trainer.exports.discord_package import strip_markup
from trainer.exports.fields import id_field, list_field, object_field, parse_json, parse_time, text_field

KEPT_TYPES = {"Default", "Reply"}  # joins, pins, calls and the like carry Discord's words, not the person's
LISTED_AUTHORS = 10  # an error message stays one readable line even for a busy server channel


def read_dce(path: Path, author: str | None, include_dms: bool = False) -> Corpus:
    name = shown(path)
    data = parse_json(read_text(path), name)
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise CorpusError(f"{name}: not a DiscordChatExporter JSON export (no \"messages\" list)")
    messages = [chat_message(m, f"{name}: message {n}") for n, m in enumerate(data["messages"], 1)
                if isinstance(m, dict) and isinstance(m.get("author"), dict)]
    secret = is_private(data)
    if secret and not include_dms:
        # A DM export is someone's private conversation: none of it is read unless asked for.
        return Corpus.from_records("discordchatexporter", [], {"private": len(messages)})
    subject = pick_author(name, messages, author)
    records, dropped = [], {"other_authors": 0, "other_types": 0, "attachment_only": 0}
    for message in messages:
        if message["author_id"] != subject:
            dropped["other_authors"] += 1
            continue
        if message["type"] not in KEPT_TYPES:
            dropped["other_types"] += 1
            continue
        text = strip_rendered_mentions(strip_markup(message["content"]), message["mentioned"])
        if not normalise_whitespace(text) and message["attachments"]:
            dropped["attachment_only"] += 1
            continue
        kind = "reply" if message["type"] == "Reply" or message["reference"] else "post"
        records.append(Record(kind, text, message["timestamp"], message["id"], private=secret))
    return Corpus.from_records("discordchatexporter", records, dropped)


def chat_message(message: dict, where: str) -> dict:
    """The fields of one DCE message that we use, each checked for its type (a message whose `author`
    is not an object was skipped before this)."""
    author = message["author"]
    names = {key: text_field(author, key, f"{where}: author") for key in ("name", "nickname", "discriminator")}
    mentions = [m for m in list_field(message, "mentions", where) if isinstance(m, dict)]
    return {
        "author_id": str(id_field(author, "id", f"{where}: author")),
        "author": names,
        "type": text_field(message, "type", where) if "type" in message else "Default",
        "content": text_field(message, "content", where) or "",
        "mentioned": {n for m in mentions for n in (text_field(m, "nickname", f"{where}: mentions"),
                                                    text_field(m, "name", f"{where}: mentions")) if n},
        "attachments": bool(list_field(message, "attachments", where) or list_field(message, "stickers", where)),
        "reference": bool(object_field(message, "reference", where)),
        "timestamp": parse_time(text_field(message, "timestamp", where), where),
        "id": id_field(message, "id", where),
    }


def is_private(data: dict) -> bool:
    """A DM or group DM: DCE's channel types DirectTextChat and DirectGroupTextChat, or no server."""
    channel = data.get("channel") if isinstance(data.get("channel"), dict) else {}
    guild = data.get("guild") if isinstance(data.get("guild"), dict) else {}
    kind = channel.get("type") if isinstance(channel.get("type"), str) else ""  # anything else is no type
    return kind.startswith("Direct") or (not kind.startswith("Guild")
                                         and guild.get("name") in (None, "Direct Messages"))


def pick_author(name: str, messages: list[dict], wanted: str | None) -> str:
    """The id of the author whose voice to learn: the only one, or the one `wanted` names (id, name,
    nickname or name#discriminator). Anything else is an error that lists who is in the file
    (`name` names the file).
    """
    authors = {}  # id -> (author's names, message count), over the messages we could keep
    for message in messages:
        if message["type"] in KEPT_TYPES:
            key = message["author_id"]
            authors[key] = (message["author"], authors.get(key, (None, 0))[1] + 1)
    if not authors:
        raise CorpusError(f"{name}: no chat messages in it")
    if wanted is None:
        if len(authors) == 1:
            return next(iter(authors))
        raise CorpusError(f"{name}: has messages from {len(authors)} authors; choose one with --author NAME_OR_ID: "
                          f"{_listing(authors)}")
    names = {key: _names(a) for key, (a, _) in authors.items()}
    matches = [key for key in authors if wanted == key or wanted.casefold() in names[key]]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CorpusError(f"{name}: --author {wanted!r} fits several authors; give the id instead: "
                          f"{_listing({k: authors[k] for k in matches})}")
    raise CorpusError(f"{name}: no author {wanted!r} in it; the authors are: {_listing(authors)}")


def strip_rendered_mentions(text: str, names: set[str]) -> str:
    """Drop "@name" for each mentioned user, as the raw `<@123>` form is dropped (longest name first,
    so "@ann" does not eat the start of "@anna"). As with MENTION in discord_package.py, the
    lookbehind keeps a long run of spaces from being rescanned at every position."""
    if not names:
        return text
    alternatives = "|".join(map(re.escape, sorted(names, key=len, reverse=True)))
    return re.sub("(?<![ \t])[ \t]*@(?:" + alternatives + r")(?!\w)", "", text)


def _names(author: dict) -> set[str]:
    names = {author["name"], author["nickname"]}
    if author["discriminator"] not in (None, "", "0000"):
        names.add(f"{author['name']}#{author['discriminator']}")
    return {n.casefold() for n in names if n}


def _listing(authors: dict) -> str:
    ranked = sorted(authors.items(), key=lambda item: -item[1][1])
    # A name is the file's text: shown() keeps a newline in one from breaking the message's line.
    entries = [f"{shown(a['name'])} (id {shown(key)}, {count} messages)" for key, (a, count) in ranked[:LISTED_AUTHORS]]
    more = len(ranked) - LISTED_AUTHORS
    return ", ".join(entries) + (f", and {more} more" if more > 0 else "")
