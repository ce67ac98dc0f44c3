"""What the poster has done, kept in the state store (dann/state/), so that a restart never posts
a slot twice nor answers a mention twice. Per destination:

- `since`: the grid's origin (the first start); `slot`: the last grid point posted (or skipped in
  quiet hours); `cursor`: the platform's position in its mentions;
- `answered`: the newest mention ids answered or passed over.

A dry run keeps its record in memory only. A poster.json of an older version beside the
checkpoints is imported once, then renamed.
"""

from pathlib import Path

from sqlalchemy import delete, func, insert, select

from dann.poster.destination import PosterError
from dann.state import Store, failing_as, tables, upsert

FILE_NAME = "poster.json"
KEEP_ANSWERED = 5000  # ids kept per destination: far more than one poll's mentions can bring
FIELDS = ("since", "slot", "cursor")


class PosterRecord:
    def __init__(self, store: Store, checkpoint_dir=None, *, persist: bool = True):
        self.store = store
        self.persist = persist
        self.data: dict[str, dict] = {}
        with failing_as(PosterError):
            if checkpoint_dir is not None:
                store.import_once(Path(checkpoint_dir) / FILE_NAME, _load_json)
            with store.read("read the poster's record from") as conn:
                for row in conn.execute(select(tables.poster)):
                    self.data[row.destination] = {"since": row.since, "slot": row.slot, "cursor": row.cursor,
                                                  "answered": []}
                rows = conn.execute(select(tables.answered.c.destination, tables.answered.c.mention)
                                    .order_by(tables.answered.c.id))
                for destination, mention in rows:
                    self.of(destination)["answered"].append(mention)

    def of(self, destination: str) -> dict:
        return self.data.setdefault(destination, {"since": None, "slot": None, "cursor": None, "answered": []})

    def change(self, destination: str, **fields) -> None:
        """Set `since`, `slot` or `cursor`."""
        entry = self.of(destination)
        entry.update(fields)
        if self.persist:
            with failing_as(PosterError), self.store.write("save the poster's record in") as conn:
                upsert(conn, tables.poster, {"destination": destination, **{k: entry[k] for k in FIELDS}})

    def answered(self, destination: str, mention_id: str) -> bool:
        return mention_id in self.of(destination)["answered"]

    def mark_answered(self, destination: str, mention_id: str) -> None:
        if self.answered(destination, mention_id):
            return
        entry = self.of(destination)
        entry["answered"] = [*entry["answered"], mention_id][-KEEP_ANSWERED:]
        if self.persist:
            with failing_as(PosterError), self.store.write("save the poster's record in") as conn:
                _mark(conn, destination, mention_id)

    def unmark_answered(self, destination: str, mention_id: str) -> None:
        entry = self.of(destination)
        entry["answered"] = [i for i in entry["answered"] if i != mention_id]
        if self.persist:
            with failing_as(PosterError), self.store.write("save the poster's record in") as conn:
                conn.execute(delete(tables.answered).where(tables.answered.c.destination == destination,
                                                           tables.answered.c.mention == mention_id))


def _mark(conn, destination: str, mention_id: str) -> None:
    answered = tables.answered
    if conn.execute(select(answered.c.id).where(answered.c.destination == destination,
                                                answered.c.mention == mention_id)).first() is not None:
        return
    conn.execute(insert(answered).values(destination=destination, mention=mention_id))
    kept = conn.execute(select(func.count()).where(answered.c.destination == destination)).scalar()
    if kept > KEEP_ANSWERED:
        oldest = (select(answered.c.id).where(answered.c.destination == destination)
                  .order_by(answered.c.id).limit(kept - KEEP_ANSWERED))
        conn.execute(delete(answered).where(answered.c.id.in_(oldest)))


def _load_json(conn, data) -> None:
    """poster.json of older versions: {destination: {"since", "slot", "cursor", "answered": [id, ...]}}."""
    for destination, entry in data.items():
        upsert(conn, tables.poster, {"destination": destination, **{k: entry.get(k) for k in FIELDS}})
        for mention_id in entry.get("answered", []):
            _mark(conn, destination, str(mention_id))
