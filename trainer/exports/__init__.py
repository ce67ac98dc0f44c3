"""Reading what the person gives us: one parser per export format, and `read_corpus`, which picks one.

`read_corpus(path)` is the one entry point; `dann train`, `dann corpus`, `dann eval` and the
scheduled trainer all call it. It decides the format from the path and calls that format's parser:
x.py (X archives), discord_package.py (Discord data packages), dce.py (DiscordChatExporter JSON) or
text.py (.txt). archive.py reads a zip or a folder the same way, never extracting anything.

A folder that is not itself an export is a folder of exports: every export in it is read, in any
mix of formats, and one dropped there later is read at the next run (`read_folder`). Each record
is labelled with its platform and its source ("export:NAME"), so that the post store
(dann/state/posts.py) can match it against the same post from the platform's API.
"""

import dataclasses
import json
import logging
from pathlib import Path

from trainer.corpus import Corpus, CorpusError, in_time_order
from trainer.exports import archive, dce, discord_package, text, x
from trainer.exports.archive import Archive, first_bytes, shown

__all__ = ["read_corpus"]

log = logging.getLogger("dann.exports")

# The files at the top of an unzipped export: a folder holding one is that export, not a folder of them.
EXPORT_TOPS = ("data/tweets.js", "data/tweet.js", "data/tweets-part1.js", "data/js/tweets", "tweets.csv",
               "messages/index.json")
PLATFORMS = {"x": "x", "discord": "discord", "txt": "text"}  # a format name's first word -> its platform


def read_corpus(path, split: str | None = None, author: str | None = None, include_dms: bool = False) -> Corpus:
    """Any supported input as a Corpus. `split` applies to a .txt, `author` to a DiscordChatExporter
    file. Private messages (DMs, group DMs) are left out unless `include_dms`."""
    path = Path(path)
    name = shown(path)
    try:
        exists = path.exists()
    except (OSError, ValueError) as error:  # a name too long for the system, or one holding a NUL
        raise CorpusError(f"{name}: cannot be read ({shown(getattr(error, 'strerror', None) or error)})") from None
    if not exists:
        raise CorpusError(f"{name}: no such file or directory")
    if path.is_dir() and split is None and author is None and not is_one_export(path):
        return read_folder(path, include_dms)
    corpus = read_one(path, name, split, author, include_dms)
    platform = PLATFORMS.get(corpus.format.split()[0].replace("discordchatexporter", "discord"), None)
    labelled = [dataclasses.replace(r, platform=platform, source=f"export:{path.name}") for r in corpus.records]
    return dataclasses.replace(corpus, records=labelled)


def is_one_export(folder: Path) -> bool:
    """Whether `folder` is an unzipped export itself, rather than a folder of exports."""
    return any((folder / top).exists() for top in EXPORT_TOPS) or any(folder.glob("data/tweets-part*.js"))


def read_folder(folder: Path, include_dms: bool = False) -> Corpus:
    """Every export in `folder`, as one corpus. A file that is not an export is named in the log
    and skipped (counted as `not_an_export`), while the rest is read. Of several archives of one
    account (an X archive's account id, a Discord package's user id), the newest (by its newest
    post) supersedes the others, whose posts are counted as `superseded`: a later archive holds
    everything an earlier one did, minus what the person deleted since."""
    read, skipped = [], 0
    entries = []
    for entry in folder.iterdir():  # counted as it goes: a home folder given by mistake holds millions
        entries.append(entry)
        if len(entries) > archive.MAX_FOLDER_FILES:
            raise CorpusError(f"{shown(folder)}: holds over {archive.MAX_FOLDER_FILES} files and folders; "
                              "give the export's own folder or zip, or a folder of exports")
    for entry in sorted(entries):
        if entry.name.startswith("."):
            continue
        try:
            corpus = read_corpus(entry, include_dms=include_dms) if not entry.is_dir() or is_one_export(entry) \
                else _not_an_export(entry)
            read.append((entry, corpus, account_of(entry)))
        except CorpusError as error:
            log.warning("skipping %s", error)
            skipped += 1
    if not read:
        raise CorpusError(f"{shown(folder)}: no export in this folder" + (f" ({skipped} file(s) that are not one; "
                                                                            "see the log)" if skipped else ""))
    newest: dict[str, tuple[str, Path]] = {}
    for entry, corpus, account in read:
        if account is not None:
            latest = max((r.created_at for r in corpus.records if r.created_at), default="")
            if account not in newest or (latest, entry.name) > (newest[account][0], newest[account][1].name):
                newest[account] = (latest, entry)
    records, dropped = [], {"not_an_export": skipped, "superseded": 0}
    for entry, corpus, account in read:
        if account is not None and newest[account][1] != entry:
            dropped["superseded"] += len(corpus.records)
            continue
        records += corpus.records
        for reason, count in corpus.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
    # Each reader cleaned its own; a .txt keeps its repeated lines, as it does read alone.
    return Corpus("folder", in_time_order(records), dropped)


def _not_an_export(entry: Path):
    raise CorpusError(f"{shown(entry)}: a folder that is neither an X archive nor a Discord data package")


def account_of(path: Path) -> str | None:
    """Whose archive `path` is: "x:ID" from an X archive's data/account.js, "discord:ID" from a
    Discord package's account/user.json; None for anything else, which never supersedes."""
    try:
        with Archive(path) as archive:
            if found := archive.find(r"(^|/)data/account\.js$"):
                items = x.js_items(archive.read_text(found[0]), archive.where(found[0]))
                account = items[0][1].get("account", {}) if items else {}
                return f"x:{account['accountId']}" if account.get("accountId") else None
            if found := archive.find(r"(^|/)account/user\.json$"):
                user = json.loads(archive.read_text(found[0]))
                return f"discord:{user['id']}" if isinstance(user, dict) and user.get("id") else None
    except (CorpusError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def read_one(path: Path, name: str, split, author, include_dms) -> Corpus:
    suffix = path.suffix.lower()
    # Not is_file(): a FIFO or device given here must reach the readers, which refuse it by name,
    # rather than be called an unknown file type.
    is_dir = path.is_dir()
    zipped = not is_dir and (suffix == ".zip" or first_bytes(path) == b"PK\x03\x04")  # a download renamed
    is_txt = not is_dir and not zipped and suffix in text.SUFFIXES
    if split is not None and not is_txt:
        raise CorpusError(f"{name}: --split only applies to a .txt file")
    if author is not None and (is_dir or suffix != ".json"):
        raise CorpusError(f"{name}: --author only applies to a DiscordChatExporter .json file")

    if is_dir or zipped:
        with Archive(path) as archive:
            if x.holds_tweets(archive):
                corpus = x.read_archive(archive)
            elif discord_package.holds_messages(archive):
                corpus = discord_package.read_package(archive, include_dms)
            else:
                kind = "folder" if is_dir else "zip"
                raise CorpusError(f"{name}: this {kind} is neither an X archive (no data/tweets.js, data/tweet.js, "
                                  f"tweets.csv or data/js/tweets/) nor a Discord data package (no messages/index.json)")
    elif suffix == ".js":
        corpus = x.read_js_file(path)
    elif suffix == ".csv":
        corpus = x.read_csv_file(path)
    elif suffix == ".json":
        corpus = dce.read_dce(path, author, include_dms)
    elif is_txt:
        corpus = text.read_text_file(path, split)
    else:
        raise CorpusError(f"{name}: unknown file type {suffix!r}; expected an X archive (.zip, folder, tweets.js, "
                          f"tweets.csv), a Discord data package (.zip, folder), a DiscordChatExporter .json, or a .txt")
    if not corpus.records:
        hint = "; private messages (DMs) are left out unless --include-dms" if corpus.dropped.get("private") else ""
        raise CorpusError(f"{name}: no posts in it (the file is empty or only whitespace)"
                          if is_txt else f"{name}: no posts in it after cleaning (dropped: {corpus.dropped}){hint}")
    return corpus
