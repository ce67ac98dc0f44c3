"""DiscordChatExporter (Tyrrrz) JSON: one channel's messages from everyone, of which we keep one author's.

Root object: {"guild", "channel", "messages": [...]}; each message has `id`, `type`, `timestamp`,
`content`, `author` {id, name, nickname, ...}, `mentions[]`, `attachments[]` and, on replies,
`reference` {messageId}. With DCE's default markdown processing `content` is plain text with
mentions as "@name"; with `--markdown false` it keeps Discord's raw `<@123>` markup. Both are cleaned.
"""

import re
from pathlib import Path

from trainer.corpus import Corpus, CorpusError, Record, normalise_whitespace
from trainer.exports.archive import read_text
from trainer.exports.discord_package import parse_json, parse_time, strip_markup

KEPT_TYPES = {"Default", "Reply"}  # joins, pins, calls and the like carry Discord's words, not the person's
LISTED_AUTHORS = 10  # an error message stays one readable line even for a busy server channel


def read_dce(path: Path, author: str | None, include_dms: bool = False) -> Corpus:
    data = parse_json(read_text(path), str(path))
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise CorpusError(f"{path}: not a DiscordChatExporter JSON export (no \"messages\" list)")
    messages = [m for m in data["messages"] if isinstance(m, dict) and isinstance(m.get("author"), dict)]
    if not include_dms and is_private(data):
        # A DM export is someone's private conversation: none of it is read unless asked for.
        return Corpus.from_records("discordchatexporter", [], {"private": len(messages)})
    subject = pick_author(path, messages, author)
    records, dropped = [], {"other_authors": 0, "other_types": 0, "attachment_only": 0}
    for message in messages:
        if str(message["author"].get("id")) != subject:
            dropped["other_authors"] += 1
            continue
        kind = message.get("type", "Default")
        if kind not in KEPT_TYPES:
            dropped["other_types"] += 1
            continue
        text = strip_rendered_mentions(strip_markup(str(message.get("content") or "")), message.get("mentions"))
        if not normalise_whitespace(text) and (message.get("attachments") or message.get("stickers")):
            dropped["attachment_only"] += 1
            continue
        reply = kind == "Reply" or bool(message.get("reference"))
        records.append(Record("reply" if reply else "post", text, parse_time(message.get("timestamp")),
                              str(message["id"]) if message.get("id") is not None else None))
    return Corpus.from_records("discordchatexporter", records, dropped)


def is_private(data: dict) -> bool:
    """A DM or group DM: DCE's channel types DirectTextChat and DirectGroupTextChat, or no server."""
    channel = data.get("channel") if isinstance(data.get("channel"), dict) else {}
    guild = data.get("guild") if isinstance(data.get("guild"), dict) else {}
    kind = str(channel.get("type") or "")
    return kind.startswith("Direct") or (not kind.startswith("Guild") and guild.get("name") in (None, "Direct Messages"))


def pick_author(path: Path, messages: list[dict], wanted: str | None) -> str:
    """The id of the author whose voice to learn: the only one, or the one `wanted` names (id, name,
    nickname or name#discriminator). Anything else is an error that lists who is in the file.
    """
    authors = {}  # id -> (author object, message count), over the messages we could keep
    for message in messages:
        if message.get("type", "Default") in KEPT_TYPES:
            key = str(message["author"].get("id"))
            authors[key] = (message["author"], authors.get(key, (None, 0))[1] + 1)
    if not authors:
        raise CorpusError(f"{path}: no chat messages in it")
    if wanted is None:
        if len(authors) == 1:
            return next(iter(authors))
        raise CorpusError(f"{path}: has messages from {len(authors)} authors; choose one with --author NAME_OR_ID: "
                          f"{_listing(authors)}")
    names = {key: _names(a) for key, (a, _) in authors.items()}
    matches = [key for key in authors if wanted == key or wanted.casefold() in names[key]]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CorpusError(f"{path}: --author {wanted!r} fits several authors; give the id instead: "
                          f"{_listing({k: authors[k] for k in matches})}")
    raise CorpusError(f"{path}: no author {wanted!r} in it; the authors are: {_listing(authors)}")


def strip_rendered_mentions(text: str, mentions) -> str:
    """Drop "@name" for each mentioned user, as the raw `<@123>` form is dropped (longest name first,
    so "@ann" does not eat the start of "@anna")."""
    names = sorted({n for user in mentions or [] if isinstance(user, dict)
                    for n in (user.get("nickname"), user.get("name")) if n}, key=len, reverse=True)
    if not names:
        return text
    return re.sub("[ \t]*@(?:" + "|".join(map(re.escape, names)) + r")(?!\w)", "", text)


def _names(author: dict) -> set[str]:
    names = {author.get("name"), author.get("nickname")}
    if author.get("discriminator") not in (None, "", "0000"):
        names.add(f"{author.get('name')}#{author['discriminator']}")
    return {n.casefold() for n in names if n}


def _listing(authors: dict) -> str:
    ranked = sorted(authors.items(), key=lambda item: -item[1][1])
    shown = [f"{a.get('name')} (id {key}, {count} messages)" for key, (a, count) in ranked[:LISTED_AUTHORS]]
    more = len(ranked) - LISTED_AUTHORS
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")
