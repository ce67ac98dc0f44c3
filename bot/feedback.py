"""👍 and 👎 on dann's messages, counted per model version, in the state store (dann/state/).

Each message dann sends in the voice is remembered with the version that wrote it (the newest
MAX_MESSAGES of them), so a reaction added later, even after a restart, counts for the right
version. Discord allows one reaction of a kind per person and message, so adding and removing
reactions is already one vote a person; a removed reaction takes its vote back. The bot calls
these from a worker thread (asyncio.to_thread): a write waits for the disk, the event loop must not.

A feedback.json of an older version beside the checkpoints is imported once, then renamed.
"""

import contextlib
import logging
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update

from dann.state import StateError, Store, insert_missing, tables, upsert

FILE_NAME = "feedback.json"
MAX_MESSAGES = 10_000
VOTES = {"👍": "up", "👎": "down"}
log = logging.getLogger("dann.discord")
SKIN_TONES = "".join(chr(c) for c in range(0x1F3FB, 0x1F400))


def vote_of(emoji: str) -> str | None:
    """"up", "down" or None for a reaction's emoji, whatever its skin tone."""
    return VOTES.get(emoji.strip(SKIN_TONES + "\ufe0f"))


class Feedback:
    def __init__(self, store: Store, checkpoint_dir=None):
        self.store = store
        self._warned = False
        if checkpoint_dir is not None:
            try:
                store.import_once(Path(checkpoint_dir) / FILE_NAME, _load_json)
            except StateError as error:  # counting goes on; the old counts wait until the file is fixed
                log.error("%s", error)

    def said(self, message_id: int, version: int) -> None:
        """Remember that `message_id` was written by model `version`."""
        with self._saving(), self.store.write("save a message's version in") as conn:
            _said(conn, message_id, version)

    def react(self, message_id: int, emoji: str, change: int) -> bool:
        """Count a reaction added (+1) or removed (-1). False when it is no vote on a message of
        dann's voice."""
        vote = vote_of(emoji)
        if vote is None:
            return False
        reactions = tables.reactions
        with self._saving(), self.store.write("count a reaction in") as conn:
            version = conn.execute(select(tables.said.c.version).where(tables.said.c.message == message_id)).scalar()
            if version is None:
                return False
            insert_missing(conn, reactions, {"version": version, "up": 0, "down": 0})
            # max(a, b) with two arguments is SQLite's scalar max; PostgreSQL spells it greatest.
            floor = func.greatest if conn.dialect.name == "postgresql" else func.max
            conn.execute(update(reactions).where(reactions.c.version == version)
                         .values({vote: floor(0, reactions.c[vote] + change)}))
            return True
        return False

    def of(self, version: int) -> dict[str, int]:
        try:
            with self.store.read("read reactions from") as conn:
                row = conn.execute(select(tables.reactions).where(tables.reactions.c.version == version)).first()
        except StateError as error:
            log.error("%s", error)
            row = None
        return {"up": row.up, "down": row.down} if row else {"up": 0, "down": 0}

    @contextlib.contextmanager
    def _saving(self):
        """A store that cannot be written costs reactions, not the bot: one warning, then quiet."""
        try:
            yield
        except StateError as error:
            if not self._warned:
                log.warning("%s; reactions are not counted until it is fixed", error)
                self._warned = True


def _said(conn, message_id: int, version: int) -> None:
    said = tables.said
    if not conn.execute(update(said).where(said.c.message == message_id).values(version=version)).rowcount:
        conn.execute(insert(said).values(message=message_id, version=version))
    newest = conn.execute(select(func.max(tables.said.c.id))).scalar() or 0
    conn.execute(delete(tables.said).where(tables.said.c.id <= newest - MAX_MESSAGES))


def _load_json(conn, data) -> None:
    """feedback.json of older versions: {"messages": {id: version}, "votes": {version: {"up", "down"}}}."""
    for message_id, version in data.get("messages", {}).items():
        _said(conn, int(message_id), int(version))
    for version, tally in data.get("votes", {}).items():
        upsert(conn, tables.reactions, {"version": int(version), "up": int(tally["up"]), "down": int(tally["down"])})
