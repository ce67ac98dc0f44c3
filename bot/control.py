"""Who is in charge of the bot, and whether it is paused: kept beside the checkpoints as bot-control.json.

- Owners (DANN_OWNER_IDS) may pause and resume it everywhere, and are answered even while it is paused.
- A server's admins (Manage Server) may pause and resume it in their own server only; they
  cannot lift a pause an owner set.
- A pause may last some minutes or until someone resumes it. It is written to disk at once, so
  it survives a restart; times are wall-clock times, which a restart does not reset.

The file is replaced atomically (dann/jsonfile.py).
"""

import json
import time
from pathlib import Path

from dann.jsonfile import write_json
from lstm.errors import DannError

FILE_NAME = "bot-control.json"
EVERYWHERE = "everywhere"


class ControlError(DannError):
    """The pause state cannot be read or written (a read-only volume, a damaged file)."""


class Control:
    def __init__(self, checkpoint_dir, clock=time.time):
        self.path = Path(checkpoint_dir) / FILE_NAME
        self.clock = clock

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ControlError(f"cannot read {self.path} ({error}); fix or remove it") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ControlError(f"{self.path} is damaged; remove it to clear every pause")
        return data

    def _write(self, data: dict) -> None:
        try:
            write_json(self.path, data)
        except OSError as error:
            raise ControlError(f"cannot write {self.path}: {error.strerror or error}") from None

    @staticmethod
    def _key(guild_id: int | None) -> str:
        return EVERYWHERE if guild_id is None else str(guild_id)

    def pause(self, guild_id: int | None, minutes: float | None) -> float | None:
        """Pause everywhere (`guild_id` None) or in one server, for `minutes` or until resumed.
        Returns the wall-clock time the pause ends, or None for "until resumed"."""
        until = None if minutes is None else self.clock() + 60 * minutes
        data = self._read()
        data[self._key(guild_id)] = {"until": until}
        self._write(data)
        return until

    def resume(self, guild_id: int | None) -> bool:
        """End the pause everywhere or in one server. False if there was none."""
        data = self._read()
        if data.pop(self._key(guild_id), None) is None:
            return False
        self._write(data)
        return True

    def pause_of(self, guild_id: int | None) -> dict | None:
        """The pause in force here ({"until": time or None, "everywhere": bool}), or None. A pause
        everywhere wins over a server's own."""
        data = self._read()
        now = self.clock()
        for key in (EVERYWHERE, *([] if guild_id is None else [str(guild_id)])):
            entry = data.get(key)
            if entry is not None and (entry.get("until") is None or entry["until"] > now):
                return {"until": entry.get("until"), "everywhere": key == EVERYWHERE}
        return None
