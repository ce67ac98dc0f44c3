"""What dann does unprompted, as server admins set it: scheduled posts per channel, quiet hours
per server, chime-ins per channel. Kept beside the checkpoints as bot-presence.json, so that it
survives a restart and travels with the models.

    {"autopost": {"<channel id>": {"guild": id, "every_s": 21600, "since": t, "last": t | null}},
     "quiet":    {"<guild id>":   {"from": 23, "to": 8, "tz": "Europe/Berlin"}},
     "chime":    {"<channel id>": {"guild": id, "chance": 0.02}}}

Times are Unix seconds. The bot is the only writer: the file is read once at start and written
through (atomically, dann/jsonfile.py) on every change. A file that cannot be read is left as it
is and nothing is scheduled, so that nothing in it is lost by writing over it.

What an admin types ("6h", "Europe/Berlin") is parsed by dann/schedule.py, a chance ("2%") here;
each raises a ScheduleError with the one line the admin is shown.
"""

import json
import logging
import re
from pathlib import Path

from dann.jsonfile import write_json
from dann.schedule import ScheduleError

log = logging.getLogger("dann.discord")

FILE_NAME = "bot-presence.json"
MAX_CHANCE = 0.5  # above this a chime-in is no longer a surprise but a reply to everything


class PresenceError(ScheduleError):
    """A chance that cannot be used, or a presence file that cannot be read or written."""


def parse_chance(text: str) -> float:
    """"2%", "2", "0.5 %" -> a probability (0.02). 0 turns chime-ins off."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", text)
    if not match:
        raise PresenceError(f"{text!r} is not a chance: write a percentage such as 2%")
    chance = float(match[1]) / 100
    if chance > MAX_CHANCE:
        raise PresenceError(f"a chance of {match[1]}% is too high: the most is 50%")
    return chance


class Presence:
    def __init__(self, checkpoint_dir):
        self.path = Path(checkpoint_dir) / FILE_NAME
        self.broken: str | None = None  # why the file could not be read: then nothing is written
        self.data = {"autopost": {}, "quiet": {}, "chime": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not all(isinstance(data.get(k, {}), dict) for k in self.data):
                raise ValueError("not the object dann writes")
            for key in self.data:
                self.data[key] = {str(k): dict(v) for k, v in data.get(key, {}).items()}
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as error:
            self.broken = f"{self.path} cannot be read ({error}); fix or remove it"
            log.error("%s: no scheduled posts, quiet hours or chime-ins until then", self.broken)

    def _write(self) -> None:
        if self.broken:
            raise PresenceError(self.broken)
        try:
            write_json(self.path, self.data)
        except OSError as error:
            raise PresenceError(f"cannot write {self.path}: {error.strerror or error}") from None

    def _change(self, section: str, key: int, entry: dict | None) -> bool:
        """Set (or, with None, remove) one entry and write the file; on failure nothing changes.
        Returns whether there was an entry before."""
        table = self.data[section]
        before = table.get(str(key))
        if entry is None:
            table.pop(str(key), None)
        else:
            table[str(key)] = entry
        try:
            self._write()
        except PresenceError:
            if before is None:
                table.pop(str(key), None)
            else:
                table[str(key)] = before
            raise
        return before is not None

    # --- scheduled posts ---------------------------------------------------------------------

    def autoposts(self) -> dict[int, dict]:
        return {int(k): v for k, v in self.data["autopost"].items()}

    def set_autopost(self, channel_id: int, guild_id: int, every_s: float, since: float) -> None:
        self._change("autopost", channel_id, {"guild": guild_id, "every_s": every_s, "since": since, "last": None})

    def remove_autopost(self, channel_id: int) -> bool:
        return self._change("autopost", channel_id, None)

    def ran(self, channel_id: int, when: float) -> None:
        """A scheduled run happened (posted or skipped): after a restart, the next is due one
        interval after it."""
        entry = self.data["autopost"].get(str(channel_id))
        if entry is not None:
            self._change("autopost", channel_id, {**entry, "last": when})

    # --- quiet hours -------------------------------------------------------------------------

    def quiet_of(self, guild_id: int | None) -> dict | None:
        return None if guild_id is None else self.data["quiet"].get(str(guild_id))

    def set_quiet(self, guild_id: int, quiet: dict | None) -> bool:
        return self._change("quiet", guild_id, quiet)

    # --- chime-ins ---------------------------------------------------------------------------

    def chime_of(self, channel_id: int) -> dict | None:
        return self.data["chime"].get(str(channel_id))

    def set_chime(self, channel_id: int, guild_id: int, chance: float) -> bool:
        return self._change("chime", channel_id, {"guild": guild_id, "chance": chance} if chance > 0 else None)

    def of_guild(self, guild_id: int) -> dict:
        """This server's schedules, chime-ins and quiet hours."""
        return {
            "autopost": {c: e for c, e in self.autoposts().items() if e.get("guild") == guild_id},
            "chime": {int(c): e for c, e in self.data["chime"].items() if e.get("guild") == guild_id},
            "quiet": self.quiet_of(guild_id),
        }
