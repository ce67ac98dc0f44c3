"""Whether dann is paused, everywhere or in one Discord server.

- Owners (DANN_OWNER_IDS) pause and resume it everywhere (/dann pause): the bot then answers its
  owners only, the web page answers 503, and the poster skips its posts and replies.
- A server's admins (Manage Server) may pause and resume the bot in their own server only; they
  cannot lift a pause an owner set.
- A pause may last some minutes or until someone resumes it. It is kept in the state store
  (dann/state/), so it survives a restart; times are wall-clock times, which a restart does not reset.

A bot-control.json of an older version beside the checkpoints is imported once, then renamed.
"""

import time
from pathlib import Path

from sqlalchemy import delete, select

from dann.state import Store, failing_as, tables, upsert
from lstm.errors import DannError

FILE_NAME = "bot-control.json"
EVERYWHERE = "everywhere"


class ControlError(DannError):
    """The pause state cannot be read or written (a database that cannot be opened, a damaged old file)."""


class Control:
    def __init__(self, store: Store, checkpoint_dir=None, clock=time.time):
        self.store = store
        self.clock = clock
        if checkpoint_dir is not None:
            with self._errors():
                store.import_once(Path(checkpoint_dir) / FILE_NAME, _load_json)

    @staticmethod
    def _errors():
        return failing_as(ControlError)

    @staticmethod
    def _key(guild_id: int | None) -> str:
        return EVERYWHERE if guild_id is None else str(guild_id)

    def pause(self, guild_id: int | None, minutes: float | None) -> float | None:
        """Pause everywhere (`guild_id` None) or in one server, for `minutes` or until resumed.
        Returns the wall-clock time the pause ends, or None for "until resumed"."""
        until = None if minutes is None else self.clock() + 60 * minutes
        with self._errors(), self.store.write("pause in") as conn:
            upsert(conn, tables.pause, {"scope": self._key(guild_id), "until": until})
        return until

    def resume(self, guild_id: int | None) -> bool:
        """End the pause everywhere or in one server. False if there was none."""
        with self._errors(), self.store.write("resume in") as conn:
            return bool(conn.execute(delete(tables.pause).where(tables.pause.c.scope == self._key(guild_id))).rowcount)

    def pause_of(self, guild_id: int | None) -> dict | None:
        """The pause in force here ({"until": time or None, "everywhere": bool}), or None. A pause
        everywhere wins over a server's own."""
        scopes = [EVERYWHERE, *([] if guild_id is None else [str(guild_id)])]
        with self._errors(), self.store.read() as conn:
            found = dict(conn.execute(select(tables.pause.c.scope, tables.pause.c.until)
                                      .where(tables.pause.c.scope.in_(scopes))).all())
        now = self.clock()
        for scope in scopes:
            if scope in found and (found[scope] is None or found[scope] > now):
                return {"until": found[scope], "everywhere": scope == EVERYWHERE}
        return None


def _load_json(conn, data) -> None:
    """bot-control.json of older versions: {"everywhere" | "<guild id>": {"until": time | null}}."""
    for scope, entry in data.items():
        until = entry["until"]
        upsert(conn, tables.pause, {"scope": str(scope), "until": None if until is None else float(until)})
