"""Reading what the person gives us: one parser per export format, and `read_corpus`, which picks one.

`read_corpus(path)` is the one entry point; `dann train`, `dann corpus`, `dann eval` and the
scheduled trainer all call it. It decides the format from the path and calls that format's parser:
x.py (X archives), discord_package.py (Discord data packages), dce.py (DiscordChatExporter JSON) or
text.py (.txt). archive.py reads a zip or a folder the same way, never extracting anything.
"""

from pathlib import Path

from trainer.corpus import Corpus, CorpusError
from trainer.exports import dce, discord_package, text, x
from trainer.exports.archive import Archive, first_bytes, shown

__all__ = ["read_corpus"]


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
