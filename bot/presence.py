"""What dann does unprompted, as server admins set it: scheduled posts per channel, quiet hours
per server, chime-ins per channel. Kept in the state store (dann/state/), so that it survives a
restart; the bot is its only writer.

    autopost: channel -> guild, every_s, since (the grid's origin), last (the last run) | None
    quiet:    guild   -> from, to (hours), tz ("Europe/Berlin")
    chime:    channel -> guild, chance

Times are Unix seconds. A bot-presence.json of an older version beside the checkpoints is
imported once, then renamed; one that cannot be read stops nothing but schedules nothing, and
says so.

What an admin types ("6h", "Europe/Berlin") is parsed by dann/schedule.py, a chance ("2%") here;
each raises a ScheduleError with the one line the admin is shown.
"""

import logging
import re
from pathlib import Path

from sqlalchemy import delete, select, update

from dann.schedule import ScheduleError
from dann.state import StateError, Store, failing_as, tables, upsert

log = logging.getLogger("dann.discord")

FILE_NAME = "bot-presence.json"
MAX_CHANCE = 0.5  # above this a chime-in is no longer a surprise but a reply to everything


class PresenceError(ScheduleError):
    """A chance that cannot be used, or presence settings that cannot be read or written."""


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
    def __init__(self, store: Store, checkpoint_dir=None):
        self.store = store
        if checkpoint_dir is not None:
            try:
                store.import_once(Path(checkpoint_dir) / FILE_NAME, _load_json)
            except StateError as error:
                log.error("%s: it is not imported until then", error)

    def _rows(self, table, *where) -> list:
        with failing_as(PresenceError), self.store.read("read presence settings from") as conn:
            return conn.execute(select(table).where(*where)).all()

    def _set(self, table, key: str, value: int, entry: dict | None) -> bool:
        """Set (or, with None, remove) one row. Returns whether there was one before."""
        with failing_as(PresenceError), self.store.write("change presence settings in") as conn:
            before = conn.execute(select(table).where(table.c[key] == value)).first() is not None
            if entry is None:
                conn.execute(delete(table).where(table.c[key] == value))
            else:
                upsert(conn, table, {key: value, **entry})
            return before

    # --- scheduled posts ---------------------------------------------------------------------

    def autoposts(self) -> dict[int, dict]:
        return {row.channel: {"guild": row.guild, "every_s": row.every_s, "since": row.since, "last": row.last}
                for row in self._rows(tables.autopost)}

    def set_autopost(self, channel_id: int, guild_id: int, every_s: float, since: float) -> None:
        self._set(tables.autopost, "channel", channel_id,
                  {"guild": guild_id, "every_s": every_s, "since": since, "last": None})

    def remove_autopost(self, channel_id: int) -> bool:
        return self._set(tables.autopost, "channel", channel_id, None)

    def ran(self, channel_id: int, when: float) -> None:
        """A scheduled run happened (posted or skipped): after a restart, the next is due one
        interval after it."""
        with failing_as(PresenceError), self.store.write("change presence settings in") as conn:
            conn.execute(update(tables.autopost).where(tables.autopost.c.channel == channel_id).values(last=when))

    # --- quiet hours -------------------------------------------------------------------------

    def quiet_of(self, guild_id: int | None) -> dict | None:
        if guild_id is None:
            return None
        rows = self._rows(tables.quiet, tables.quiet.c.guild == guild_id)
        return {"from": rows[0].start_hour, "to": rows[0].end_hour, "tz": rows[0].tz} if rows else None

    def set_quiet(self, guild_id: int, quiet: dict | None) -> bool:
        entry = None if quiet is None else {"start_hour": quiet["from"], "end_hour": quiet["to"], "tz": quiet["tz"]}
        return self._set(tables.quiet, "guild", guild_id, entry)

    # --- chime-ins ---------------------------------------------------------------------------

    def chime_of(self, channel_id: int) -> dict | None:
        rows = self._rows(tables.chime, tables.chime.c.channel == channel_id)
        return {"guild": rows[0].guild, "chance": rows[0].chance} if rows else None

    def set_chime(self, channel_id: int, guild_id: int, chance: float) -> bool:
        return self._set(tables.chime, "channel", channel_id,
                         {"guild": guild_id, "chance": chance} if chance > 0 else None)

    def of_guild(self, guild_id: int) -> dict:
        """This server's schedules, chime-ins and quiet hours."""
        return {
            "autopost": {c: e for c, e in self.autoposts().items() if e["guild"] == guild_id},
            "chime": {row.channel: {"guild": row.guild, "chance": row.chance}
                      for row in self._rows(tables.chime, tables.chime.c.guild == guild_id)},
            "quiet": self.quiet_of(guild_id),
        }


def _load_json(conn, data) -> None:
    """bot-presence.json of older versions: {"autopost": {channel: {...}}, "quiet": {guild: {...}},
    "chime": {channel: {...}}}."""
    for channel, entry in data.get("autopost", {}).items():
        upsert(conn, tables.autopost, {"channel": int(channel), "guild": int(entry["guild"]),
                                       "every_s": float(entry["every_s"]), "since": float(entry["since"]),
                                       "last": None if entry.get("last") is None else float(entry["last"])})
    for guild, entry in data.get("quiet", {}).items():
        upsert(conn, tables.quiet, {"guild": int(guild), "start_hour": int(entry["from"]),
                                    "end_hour": int(entry["to"]), "tz": str(entry["tz"])})
    for channel, entry in data.get("chime", {}).items():
        upsert(conn, tables.chime, {"channel": int(channel), "guild": int(entry["guild"]),
                                    "chance": float(entry["chance"])})
