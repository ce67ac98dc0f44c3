"""What dann does unprompted, as server admins set it: scheduled posts per channel, quiet hours
per server, chime-ins per channel. Kept beside the checkpoints as bot-presence.json, so that it
survives a restart and travels with the models.

    {"autopost": {"<channel id>": {"guild": id, "every_s": 21600, "since": t, "last": t | null}},
     "quiet":    {"<guild id>":   {"from": 23, "to": 8, "tz": "Europe/Berlin"}},
     "chime":    {"<channel id>": {"guild": id, "chance": 0.02}}}

Times are Unix seconds. The bot is the only writer: the file is read once at start and written
through (atomically, dann/jsonfile.py) on every change. A file that cannot be read is left as it
is and nothing is scheduled, so that nothing in it is lost by writing over it.

The parsers below turn what an admin types ("6h", "2%", "Europe/Berlin") into values, or raise
PresenceError with the one line the admin is shown.
"""

import datetime
import json
import logging
import re
from pathlib import Path
from zoneinfo import ZoneInfo

from dann.jsonfile import write_json
from dann.settings import time_zone
from lstm.errors import DannError

log = logging.getLogger("dann.discord")

FILE_NAME = "bot-presence.json"
MIN_INTERVAL_S = 10 * 60  # more often than this is spam, whatever the admin wants
MAX_INTERVAL_S = 30 * 24 * 3600
MAX_CHANCE = 0.5  # above this a chime-in is no longer a surprise but a reply to everything
UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86400}


class PresenceError(DannError):
    """A schedule, quiet hours or chance that cannot be used, or a presence file that cannot be read or written."""


def parse_interval(text: str) -> float:
    """"90m", "6h", "1.5d" -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*", text.lower())
    if not match:
        raise PresenceError(f"{text!r} is not an interval: write a number and m, h or d, such as 90m, 6h or 1d")
    seconds = float(match[1]) * UNITS[match[2]]
    if seconds < MIN_INTERVAL_S:
        raise PresenceError(f"every {text.strip()} is too often: the shortest interval is 10 minutes (10m)")
    if seconds > MAX_INTERVAL_S:
        raise PresenceError(f"every {text.strip()} is too rare: the longest interval is 30 days (30d)")
    return seconds


def parse_chance(text: str) -> float:
    """"2%", "2", "0.5 %" -> a probability (0.02). 0 turns chime-ins off."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", text)
    if not match:
        raise PresenceError(f"{text!r} is not a chance: write a percentage such as 2%")
    chance = float(match[1]) / 100
    if chance > MAX_CHANCE:
        raise PresenceError(f"a chance of {match[1]}% is too high: the most is 50%")
    return chance


def parse_quiet(start: int, end: int, zone: str) -> dict:
    """Quiet hours from `start` o'clock to `end` o'clock in `zone` (wrapping round midnight)."""
    for hour in (start, end):
        if not 0 <= hour <= 23:
            raise PresenceError(f"{hour} is not an hour: quiet hours go from 0 to 23")
    if start == end:
        raise PresenceError("quiet hours need two different hours, such as from 23 to 8")
    try:
        time_zone(zone)
    except ValueError as error:
        raise PresenceError(str(error)) from None
    return {"from": start, "to": end, "tz": zone}


def is_quiet(quiet: dict | None, moment: datetime.datetime) -> bool:
    """Whether `moment` (aware) falls inside these quiet hours: from the start hour up to, not
    including, the end hour, in the hours' own time zone."""
    if not quiet:
        return False
    hour = moment.astimezone(ZoneInfo(quiet["tz"])).hour
    start, end = quiet["from"], quiet["to"]
    return start <= hour < end if start < end else hour >= start or hour < end


def interval_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds / 60:g}m"


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
