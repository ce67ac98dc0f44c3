"""The state store: the database every process shares beside the checkpoints (store.py), and
what it holds (tables.py)."""

from dann.state import tables
from dann.state.store import (
    StateError,
    Store,
    database_url,
    failing_as,
    insert_missing,
    open_store,
    store_beside,
    upsert,
)

__all__ = ["StateError", "Store", "database_url", "failing_as", "insert_missing", "open_store", "store_beside", "tables", "upsert"]
