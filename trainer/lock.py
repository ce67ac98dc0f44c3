"""One trainer per checkpoint directory: an exclusive, non-blocking flock held for the process's life.

The kernel drops a flock when its process dies, even by kill -9, so a crash never leaves a stale lock.
"""

import fcntl
import os
from pathlib import Path

from lstm.errors import DannError


class Locked(DannError):
    """Another trainer holds the lock."""


class TrainerLock:
    def __init__(self, directory):
        self.path = Path(directory) / ".trainer.lock"
        self._file = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise Locked(f"another trainer (pid {holder}) is already writing {self.path.parent}; exiting") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
