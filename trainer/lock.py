"""One writer per checkpoint directory: an exclusive, non-blocking flock on CHECKPOINT_DIR/.trainer.lock.

`dann trainer` holds it for its life; `dann train`, `dann tune` and `dann demo` hold it while they
write there, so none of them picks a version number another is writing. The file names the holder:
its pid, and after it the command when that is not the trainer.

The kernel drops a flock when its process dies, even by kill -9, so a crash never leaves a stale lock.
"""

import fcntl
import os
from pathlib import Path

from lstm.errors import DannError


class Locked(DannError):
    """Another trainer, or another writer, holds the lock."""


class TrainerLock:
    def __init__(self, directory, command: str | None = None, instead: str = "another --checkpoint-dir"):
        """`command`: the writer taking the lock ("dann train"), None for the trainer itself; `instead`:
        what to give that command so that it writes elsewhere, for the refusal."""
        self.path = Path(directory) / ".trainer.lock"
        self.command, self.instead = command, instead
        self._file = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            pid, _, command = self._file.read().strip().partition(" ")
            self._file.close()
            raise Locked(self._refusal(pid or "unknown", command)) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"{os.getpid()} {self.command}" if self.command else str(os.getpid()))
        self._file.flush()
        return self

    def _refusal(self, pid: str, command: str) -> str:
        directory = self.path.parent
        holder = f"`{command}`" if command else "the trainer"
        if self.command is None:
            what = "another trainer" if not command else holder
            return f"{what} (pid {pid}) is already writing {directory}; exiting"
        return (f"{holder} (pid {pid}) is writing {directory} (it holds {self.path.name}); stop it or give "
                f"`{self.command}` {self.instead}")

    def __exit__(self, *exc):
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
