"""An export as the person downloaded it: a .zip, or the folder they unzipped it into.

The parsers see both the same way: a list of member names ("data/tweets.js") and a way to read one
member's text. Zip members are read into memory one at a time, never extracted, so nothing is ever
written next to the export, and every read is capped by the member's declared size first.

An export is a stranger's file tree, so reading one is bounded and never leaves it:
- Only regular files are read. A FIFO would block forever and `/dev/zero` never ends, so each file is
  opened without waiting (O_NONBLOCK) and checked with fstat on the open descriptor, which no rename
  or swap can change afterwards.
- The path the person gives may itself be a symlink: pointing dann at an export kept on another disk
  is their choice. Nothing inside the export is followed: a member is opened one folder at a time
  with O_NOFOLLOW, so a link in the tree cannot lead to a file elsewhere on this machine.
- One export reads at most MAX_TOTAL_BYTES and MAX_MEMBERS_READ files in all, whatever the zip
  holds, so a zip of a thousand well-compressed members cannot fill the memory one by one.
"""

import errno
import lzma
import os
import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from trainer.corpus import CorpusError

MAX_TEXT_BYTES = 256 * 1024 * 1024  # one person's posts are megabytes; refuse to slurp more blindly
MAX_FOLDER_FILES = 500_000  # an X archive with years of photos has tens of thousands; a home folder has millions
# A real X archive's text (tweets.js and the rest) is tens of MiB and a heavy Discord user's package a
# few hundred; media files are never read. A budget of 1 GiB refuses only what no person wrote.
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_MEMBERS_READ = 100_000  # a Discord package reads two files per channel; people have thousands, not 50,000

# O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer that never comes.
FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# What a zip can raise while a member is read: zlib, bzip2 (OSError) and lzma errors, bad CRCs and
# truncated data (BadZipFile, EOFError), encryption (RuntimeError), unknown compression methods
# (NotImplementedError), and names that do not decode (ValueError).
ZIP_ERRORS = (zipfile.BadZipFile, EOFError, OSError, RuntimeError, ValueError, NotImplementedError, zlib.error,
              lzma.LZMAError)


class Archive:
    """Member names relative to the export's root, and their text. Use it as a context manager."""

    def __init__(self, path: Path):
        self.path = path
        self.bytes_read = 0  # of all members together, against MAX_TOTAL_BYTES
        self.members_read = 0
        self._zip = self._file = self._folded = None
        if path.is_dir():
            self.names = sorted(_walk(path))
            return
        self._file = open_file(path)
        try:
            self._zip = zipfile.ZipFile(self._file)
        except ZIP_ERRORS:
            self.close()
            # A truncated download loses the central directory at the end, so it lands here too.
            raise CorpusError(f"{shown(path)}: is not a readable zip (truncated or damaged)") from None
        infos = self._zip.infolist()
        if len(infos) > MAX_FOLDER_FILES:
            self.close()
            raise CorpusError(f"{shown(path)}: holds over {MAX_FOLDER_FILES} files; give the export's own zip")
        for info in infos:
            if _escapes(info.filename):
                self.close()
                # We never extract, but a member named like this means the zip was made to attack
                # whoever unpacks it, so nothing in it is trusted.
                raise CorpusError(f"{shown(path)}: member {info.filename!r} points outside the archive; "
                                  f"refusing the zip")
        # A name cut to nothing (zipfile ends names at a NUL byte) is no file a parser could ask for.
        self._infos = {info.filename: info for info in infos if info.filename and not info.is_dir()}
        self.names = sorted(self._infos)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._file is not None:
            self._file.close()  # ZipFile leaves a file it was given open

    def where(self, name: str) -> str:
        """How error messages name a member: the file on disk, then the member inside a zip."""
        return shown(self.path / name) if self._zip is None else f"{shown(self.path)}: {shown(name)}"

    def find(self, pattern: str) -> list[str]:
        """Member names matching a regular expression (searched, case-insensitive), in natural order."""
        regex = re.compile(pattern, re.IGNORECASE)
        return sorted((n for n in self.names if regex.search(n)), key=_natural)

    def member(self, name: str) -> str | None:
        """The member called `name`, in any case, or None: a lookup, where `find` would scan every
        name, because a package with many channels asks once per channel."""
        if self._folded is None:
            self._folded = {}
            for n in self.names:
                self._folded.setdefault(n.casefold(), n)
        return self._folded.get(name.casefold())

    def read_text(self, name: str) -> str:
        where = self.where(name)
        if self.members_read >= MAX_MEMBERS_READ:
            raise CorpusError(f"{shown(self.path)}: reading more than {MAX_MEMBERS_READ} of its files "
                              f"(at {shown(name)}); refusing the export")
        self.members_read += 1
        limit = min(MAX_TEXT_BYTES, MAX_TOTAL_BYTES - self.bytes_read)
        if self._zip is None:
            with _open_inside(self.path, name, where) as file:
                data = _read_capped(file, where, limit, lambda size: self._refuse(size, name))
        else:
            info = self._infos[name]
            self._refuse(info.file_size, name)
            try:
                with self._zip.open(info) as member:
                    # zipfile stops at the declared size (and then fails the CRC), so this is the bound.
                    data = member.read(min(limit, info.file_size) + 1)
            except ZIP_ERRORS as error:
                raise CorpusError(f"{where}: cannot be read from the zip ({shown(error)})") from None
            self._refuse(len(data), name)
        self.bytes_read += len(data)
        return decode_text(data, where)

    def _refuse(self, size: int, name: str) -> None:
        """Raise if `size` bytes of member `name` would pass its cap or the export's total budget."""
        if size > MAX_TEXT_BYTES:
            raise CorpusError(f"{self.where(name)}: {size / 2**20:.0f} MiB is too large "
                              f"(the limit is {MAX_TEXT_BYTES // 2**20} MiB)")
        if self.bytes_read + size > MAX_TOTAL_BYTES:
            raise CorpusError(f"{shown(self.path)}: its files hold over {MAX_TOTAL_BYTES // 2**20} MiB of text in all "
                              f"(at {shown(name)}); refusing the export")


def _walk(root: Path) -> list[str]:
    """The files under `root` as member names, without entering symlinked folders (a link in an
    export could lead anywhere) and without recursion, so a folder nested 5,000 deep is only slow."""
    names, seen, stack = [], 0, [""]
    while stack:
        prefix = stack.pop()
        try:
            with os.scandir(root / prefix if prefix else root) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_FOLDER_FILES:  # enough to know it is too many, without listing a whole disk
                        raise CorpusError(f"{shown(root)}: holds over {MAX_FOLDER_FILES} files and folders; "
                                          f"give the export's own folder or zip")
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(f"{prefix}{entry.name}/")
                    else:
                        names.append(f"{prefix}{entry.name}")  # links, FIFOs and the like are refused when read
        except OSError:
            continue  # a folder we may not list holds nothing we could read; as os.walk, skip it
    return names


def _escapes(name: str) -> bool:
    # Zips made on Windows may use backslashes; a drive letter is as absolute as a leading slash.
    name = name.replace("\\", "/")
    return name.startswith("/") or bool(re.match(r"[A-Za-z]:", name)) or ".." in PurePosixPath(name).parts


def _natural(name: str):
    """tweets-part2.js before tweets-part10.js. Numbers compare by length, then digits, not by int():
    a member name may hold 5,000 digits, more than int() takes. re.split puts the runs of digits
    at the odd places, so "1²1" (a digit to isdigit, not to \\d) stays text."""
    return [(len(part.lstrip("0")), part.lstrip("0")) if i % 2 else part.lower()
            for i, part in enumerate(re.split(r"(\d+)", name))]


def shown(text) -> str:
    """A path, a member name or a library's error as a message shows it: control characters (a
    newline in a file's name, say) and undecodable bytes escaped, so the message stays one line."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def open_file(path: Path, follow: bool = True):
    """`path` opened for reading in binary, if it is a regular file. `follow=False` refuses a symlink:
    for files the person did not name themselves (a note-tweet.js found beside their tweets.js)."""
    try:
        fd = os.open(path, FILE_FLAGS | (0 if follow else os.O_NOFOLLOW))
    except OSError as error:
        raise _refusal(error, shown(path)) from None
    return _regular(fd, shown(path))


def _open_inside(root: Path, name: str, where: str):
    """Member `name` of the folder export `root`, opened one folder at a time from the root without
    following any symlink, so nothing outside the root is reached, whatever the tree holds or
    becomes between listing and reading. The root itself may be a symlink (see the module's note)."""
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):  # _walk never makes these; keep it so
        raise CorpusError(f"{where}: is not a plain name inside the export")
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise _refusal(error, shown(root)) from None
    try:
        for part in parts[:-1]:
            inner = os.open(part, FOLDER_FLAGS, dir_fd=folder)
            os.close(folder)
            folder = inner
        fd = os.open(parts[-1], FILE_FLAGS | os.O_NOFOLLOW, dir_fd=folder)
    except OSError as error:
        raise _refusal(error, where) from None
    finally:
        os.close(folder)
    return _regular(fd, where)


def _refusal(error: OSError, where: str) -> CorpusError:
    if error.errno == errno.ELOOP:  # what O_NOFOLLOW answers for a symlink
        return CorpusError(f"{where}: is a symbolic link; files inside an export are read only as themselves")
    if error.errno == errno.ENOTDIR:  # what O_DIRECTORY | O_NOFOLLOW answers for a symlinked folder
        return CorpusError(f"{where}: lies in a folder that is a symbolic link; refusing to follow it")
    return CorpusError(f"{where}: cannot be read ({shown(error.strerror or error)})")


def _regular(fd: int, where: str):
    """The open descriptor `fd` as a binary file, if it is a regular file; otherwise closed and refused."""
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a plain file")
        raise CorpusError(f"{where}: is {kind}, not a regular file; refusing to read it")
    return os.fdopen(fd, "rb")


def _read_capped(file, where: str, limit: int, refuse) -> bytes:
    """At most `limit` bytes of `file`; `refuse(size)` raises when a size is over what may be read."""
    size = os.fstat(file.fileno()).st_size
    refuse(size)
    # Ask for the size the file declares, not for `limit`: read(n) allocates n bytes up front, and
    # 256 MiB per small file adds up. A file that grows while it is read goes on in 1 MiB steps.
    chunks, total, want = [], 0, min(size, limit) + 1
    try:
        while total <= limit and (chunk := file.read(min(want, limit + 1 - total))):
            chunks.append(chunk)
            total += len(chunk)
            want = 2**20
    except OSError as error:
        raise CorpusError(f"{where}: cannot be read ({shown(error.strerror or error)})") from None
    refuse(total)
    return b"".join(chunks)  # one chunk, the usual case, is returned as it is, not copied


def first_bytes(path: Path) -> bytes:
    with open_file(path) as file:
        return _read_capped(file, shown(path), 4, lambda size: None)[:4]


def read_text(path: Path, follow: bool = True) -> str:
    """The file's text, refusing huge files, binary files, anything that is not UTF-8 and anything
    that is not a regular file; `follow=False` also refuses a symlink (see `open_file`)."""
    where = shown(path)

    def refuse(size):
        if size > MAX_TEXT_BYTES:
            raise CorpusError(f"{where}: {size / 2**20:.0f} MiB is too large "
                              f"(the limit is {MAX_TEXT_BYTES // 2**20} MiB)")

    with open_file(path, follow) as file:
        return decode_text(_read_capped(file, where, MAX_TEXT_BYTES, refuse), where)


def decode_text(data: bytes, where: str) -> str:
    """Bytes from a file or a zip member as text; `where` names it in the error."""
    if b"\x00" in data[:65536]:
        raise CorpusError(f"{where}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CorpusError(f"{where}: is not UTF-8 text (bad byte at offset {error.start})") from None
