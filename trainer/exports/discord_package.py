"""Discord data packages (Settings → Data & Privacy → Request my data): the person's own messages.

Layout (shared/notes/export-formats.md): `messages/index.json` maps channel ids to labels, and each
channel has a folder `messages/c<id>/` (`<id>/` in early packages; newer ones capitalise `Messages/`)
holding `messages.json` (newer: a list of {"ID", "Timestamp", "Contents", "Attachments"}) or
`messages.csv` (older: columns ID,Timestamp,Contents,Attachments).

The package says nothing about which message answered which, so every message is a "post".

Private channels (DMs and group DMs) are left out unless asked for (`include_dms`): what someone
wrote to one friend must not be trained into a model that a public page and a server serve. Which
channels are private is read from each folder's channel.json, whose `type` is a name (DM, GROUP_DM)
or Discord's number (1, 3) depending on the package's year, and, failing that, from the index
label ("Direct Message with …"). A channel that names no server is private: when in doubt, out.
"""

import csv
import io
import re

from trainer.corpus import Corpus, CorpusError, Record, normalise_whitespace
from trainer.exports.fields import id_field, kind, numbered, parse_json, parse_time, text_field

INDEX_FILE = r"(^|/)messages/index\.json$"
CHANNEL_FILES = r"(^|/)messages/c?\d+/messages\.(json|csv)$"

# User, nickname, role and channel mentions: the ids mean nothing as text. The space before one goes
# too, so "from <#1>, ok" reads "from, ok". The lookbehind starts a try only where a run of spaces
# starts: without it a message of a million spaces takes hours (each start rescans the run).
MENTION = re.compile(r"(?<![ \t])[ \t]*<(?:@[!&]?|#)\d+>")
CUSTOM_EMOJI = re.compile(r"<a?(:\w+:)\d+>")  # <:name:123> and animated <a:name:123> read as :name:
PRIVATE_TYPES = {"DM", "GROUP_DM", 1, 3, "1", "3"}
SERVER_TYPES = {"GUILD_TEXT", "GUILD_VOICE", "GUILD_NEWS", "GUILD_ANNOUNCEMENT", "GUILD_FORUM", "GUILD_STAGE_VOICE",
                "PUBLIC_THREAD", "PRIVATE_THREAD", "ANNOUNCEMENT_THREAD", "GUILD_NEWS_THREAD", 0, 2, 5, 10, 11, 12,
                13, 15}


def holds_messages(archive) -> bool:
    return bool(archive.find(INDEX_FILE))


def read_package(archive, include_dms: bool = False) -> Corpus:
    index = archive.find(INDEX_FILE)[0]
    labels = parse_json(archive.read_text(index), archive.where(index))
    if not isinstance(labels, dict):
        raise CorpusError(f"{archive.where(index)}: expected an object mapping channel ids to names")
    # index.json only labels channels; the folders are what holds messages, so read every one of them.
    chosen = {}
    for name in archive.find(CHANNEL_FILES):
        folder = name.rsplit("/", 1)[0]
        if folder not in chosen or name.lower().endswith(".json"):  # both present: the newer format wins
            chosen[folder] = name
    records, attachment_only, private = [], 0, 0
    for folder, name in chosen.items():
        where = archive.where(name)
        text = archive.read_text(name)
        rows = json_rows(text, where) if name.lower().endswith(".json") else csv_rows(text, where)
        secret = is_private(archive, folder, labels)
        if secret and not include_dms:
            private += len(rows)
            continue
        for row_where, row in rows:
            contents = strip_markup(text_field(row, "Contents", row_where) or "")
            if not normalise_whitespace(contents) and has_attachments(row, row_where):
                attachment_only += 1
                continue
            records.append(Record("post", contents, parse_time(text_field(row, "Timestamp", row_where), row_where),
                                  id_field(row, "ID", row_where) or None, private=secret))
    return Corpus.from_records("discord package", records, {"attachment_only": attachment_only, "private": private})


def is_private(archive, folder: str, labels: dict) -> bool:
    """Whether the channel in `folder` is a DM or group DM (or cannot be shown to be a server's)."""
    described = archive.member(f"{folder}/channel.json")
    if described:
        channel = parse_json(archive.read_text(described), archive.where(described))
        if not isinstance(channel, dict):
            return True
        channel_type = channel.get("type")
        channel_type = channel_type if isinstance(channel_type, str | int) else None  # a list or object is no type
        if channel_type in PRIVATE_TYPES or channel.get("recipients"):
            return True
        return not (channel.get("guild") or channel_type in SERVER_TYPES)
    label = labels.get(folder.rsplit("/", 1)[-1].lstrip("c"))
    # Without channel.json only the index says where it was: "general in Cool Server" is a server's.
    return not (isinstance(label, str) and " in " in label and not label.startswith("Direct Message"))


def json_rows(text: str, where: str) -> list[tuple[str, dict]]:
    """The messages of a messages.json, each with how an error names it ("…/messages.json: message 3")."""
    rows = parse_json(text, where)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise CorpusError(f"{where}: expected a list of messages")
    return numbered(rows, where, "message")


def csv_rows(text: str, where: str) -> list[tuple[str, dict]]:
    """The rows of a messages.csv, each with how an error names it ("…/messages.csv: line 3")."""
    reader = csv.DictReader(io.StringIO(text, newline=""))  # contents hold commas, quotes and newlines
    rows = []
    try:
        if "Contents" not in (reader.fieldnames or []):
            raise CorpusError(f"{where}: not a Discord messages.csv (it needs the columns "
                              f"ID,Timestamp,Contents,Attachments)")
        for row in reader:
            rows.append((f"{where}: line {reader.line_num}", row))
    except csv.Error as error:
        # The csv reader's count: the DictReader's stops at the last good row.
        raise CorpusError(f"{where}: broken CSV at line {reader.reader.line_num} ({error})") from None
    return rows


def has_attachments(row: dict, where: str) -> bool:
    """Whether a message had files: Attachments holds their links as text (a list of links is
    taken too rather than refused; any other type is no package's)."""
    value = row.get("Attachments")
    if value is None or isinstance(value, str | list):
        return bool(value and (not isinstance(value, str) or value.strip()))
    raise CorpusError(f"{where}: Attachments is {kind(value)}, not text")


def strip_markup(text: str) -> str:
    return CUSTOM_EMOJI.sub(r"\1", MENTION.sub("", text))

