"""An export as the person downloaded it: a .zip, or the folder they unzipped it into.

The parsers see both the same way: a list of member names ("data/tweets.js") and a way to read one
member's text. Zip members are read into memory one at a time, never extracted, so nothing is ever
written next to the export, and every read is capped by the member's declared size first.
"""

import os
import re
import zipfile
from pathlib import Path, PurePosixPath

from trainer.corpus import CorpusError

MAX_TEXT_BYTES = 256 * 1024 * 1024  # one person's posts are megabytes; refuse to slurp more blindly
MAX_FOLDER_FILES = 500_000  # an X archive with years of photos has tens of thousands; a home folder has millions


class Archive:
    """Member names relative to the export's root, and their text. Use it as a context manager."""

    def __init__(self, path: Path):
        self.path = path
        self._zip = None
        if path.is_dir():
            self.names = sorted(_walk(path))
            if len(self.names) > MAX_FOLDER_FILES:
                raise CorpusError(f"{path}: holds over {MAX_FOLDER_FILES} files; give the export's own folder or zip")
            return
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, EOFError):
            # A truncated download loses the central directory at the end, so it lands here too.
            raise CorpusError(f"{path}: is not a readable zip (truncated or damaged)") from None
        except OSError as error:
            raise CorpusError(f"{path}: cannot be read ({error.strerror or error})") from None
        for info in self._zip.infolist():
            if _escapes(info.filename):
                self.close()
                # We never extract, but a member named like this means the zip was made to attack
                # whoever unpacks it, so nothing in it is trusted.
                raise CorpusError(f"{path}: member {info.filename!r} points outside the archive; refusing the zip")
        self._infos = {info.filename: info for info in self._zip.infolist() if not info.is_dir()}
        self.names = sorted(self._infos)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def where(self, name: str) -> str:
        """How error messages name a member: the file on disk, then the member inside a zip."""
        return str(self.path / name) if self._zip is None else f"{self.path}: {name}"

    def find(self, pattern: str) -> list[str]:
        """Member names matching a regular expression (searched, case-insensitive), in natural order."""
        regex = re.compile(pattern, re.IGNORECASE)
        return sorted((n for n in self.names if regex.search(n)), key=_natural)

    def read_text(self, name: str) -> str:
        if self._zip is None:
            return read_text(self.path / name)
        info = self._infos[name]
        where = self.where(name)
        if info.file_size > MAX_TEXT_BYTES:
            raise CorpusError(f"{where}: {info.file_size / 2**20:.0f} MiB is too large "
                              f"(the limit is {MAX_TEXT_BYTES // 2**20} MiB)")
        try:
            with self._zip.open(info) as member:
                data = member.read(MAX_TEXT_BYTES + 1)  # bounded even if the declared size lies
        except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, ValueError) as error:
            # zlib errors, bad CRCs, encryption and truncated data all come through as these.
            raise CorpusError(f"{where}: cannot be read from the zip ({error})") from None
        if len(data) > MAX_TEXT_BYTES:
            raise CorpusError(f"{where}: is larger than the {MAX_TEXT_BYTES // 2**20} MiB limit")
        return decode_text(data, where)


def _walk(root: Path):
    count = 0
    for folder, _, files in os.walk(root):  # does not follow symlinked folders
        for name in files:
            yield (Path(folder) / name).relative_to(root).as_posix()
            count += 1
            if count > MAX_FOLDER_FILES:
                return  # enough to know it is too many, without listing a whole disk


def _escapes(name: str) -> bool:
    # Zips made on Windows may use backslashes; a drive letter is as absolute as a leading slash.
    name = name.replace("\\", "/")
    return name.startswith("/") or bool(re.match(r"[A-Za-z]:", name)) or ".." in PurePosixPath(name).parts


def _natural(name: str):
    """tweets-part2.js before tweets-part10.js."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def first_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(4)
    except OSError as error:
        raise CorpusError(f"{path}: cannot be read ({error.strerror or error})") from None


def read_text(path: Path) -> str:
    """The file's text, refusing huge files, binary files and anything that is not UTF-8."""
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise CorpusError(f"{path}: {size / 2**20:.0f} MiB is too large (the limit is {MAX_TEXT_BYTES // 2**20} MiB)")
    return decode_text(path.read_bytes(), str(path))


def decode_text(data: bytes, where: str) -> str:
    """Bytes from a file or a zip member as text; `where` names it in the error."""
    if b"\x00" in data[:65536]:
        raise CorpusError(f"{where}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CorpusError(f"{where}: is not UTF-8 text (bad byte at offset {error.start})") from None
