"""The state store: one database for all mutable state beside the checkpoints (tables.py says what).

SQLite through SQLAlchemy Core is the default, as `state.db` beside the checkpoints; DANN_DATABASE_URL
names another database. Every process opens it once (`open_store`) and passes it down. Changes are
short transactions, which replace the file locks of the JSON files this store took over: SQLite
serialises writers across processes (a write transaction takes the write lock when it begins, so
a read-then-write cannot lose another process's update), and in WAL mode readers never wait for
a writer. On PostgreSQL every write transaction takes one advisory lock first, for the same
guarantee. Nothing holds a transaction across an `await`.

A database that cannot be opened, read or written raises StateError with one line naming it; the
callers decide what failing closed means for their table (a pause that cannot be read is a pause).
"""

import contextlib
import functools
import json
import logging
import secrets
import time
from pathlib import Path

from sqlalchemy import create_engine, event, insert, inspect, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError

import dann.state.tables as tables
from lstm.errors import DannError

FILE_NAME = "state.db"
BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another process's transaction to end
CONNECT_TIMEOUT_S = 5  # a database server that does not answer within this is out of reach
# After a server is found out of reach, callers fail at once for this long, then it is tried again;
# each failure in a row doubles the wait, up to the last figure.
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0
log = logging.getLogger("dann.state")


class StateError(DannError):
    """The state database cannot be opened, read or written, or an old state file cannot be imported."""

    public = "dann cannot reach its state database right now; its operator's log says why"


def database_url(settings) -> str:
    """DANN_DATABASE_URL, or SQLite in `state.db` beside the checkpoints."""
    url = getattr(settings, "database_url", None)
    return url.get_secret_value() if url is not None else _beside(settings.checkpoint_dir)


def open_store(settings) -> "Store":
    """The process's store for these settings: opened on first use, then shared."""
    return _opened(database_url(settings))


def store_beside(checkpoint_dir) -> "Store":
    """The default store of a checkpoint folder, for tools that know only the folder."""
    return _opened(_beside(checkpoint_dir))


def _beside(checkpoint_dir) -> str:
    return f"sqlite:///{Path(checkpoint_dir).expanduser().resolve() / FILE_NAME}"


@functools.cache
def _opened(url: str) -> "Store":
    return Store(url)


class Store:
    def __init__(self, url: str):
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StateError("DANN_DATABASE_URL is not a database URL (sqlite:///path or "
                             "postgresql+psycopg://user:password@host/db)") from None
        if parsed.drivername == "postgresql":  # SQLAlchemy's default driver for it is psycopg2; ours is psycopg 3
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.sqlite = parsed.get_backend_name() == "sqlite"
        # SQLite's own URI form (file:path?mode=ro, with uri=true) names the same file
        self.where = (parsed.database or "").removeprefix("file:") if self.sqlite \
            else parsed.render_as_string(hide_password=True)
        if self.sqlite and self.where:
            try:
                Path(self.where).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StateError(f"cannot create the folder of the state database {self.where}: "
                                 f"{error.strerror or error}") from None
        try:
            # A server: a connection that died with a restart is replaced before use (pre-ping), and
            # a server out of reach fails the attempt within CONNECT_TIMEOUT_S, not a TCP timeout.
            options = {"connect_args": {"check_same_thread": False}} if self.sqlite else \
                {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
            self.engine = create_engine(parsed, **options)
        except (NoSuchModuleError, ImportError) as error:
            raise StateError(f"cannot open the state database {self.where}: {error}") from None
        if self.sqlite:
            _sqlite_hooks(self.engine)
        else:
            _server_hooks(self.engine)
        self._writer = self.engine.execution_options(dann_write=True)
        self._failures, self._down_until = 0, 0.0  # a server out of reach: failures in a row, and until when
        if self._schema() == tables.SCHEMA_VERSION:
            return  # ready: a database this process may only read opens too
        with self.write("open") as conn:
            tables.metadata.create_all(conn)
            found = conn.execute(select(tables.schema.c.version)).scalar()
            if found is None:
                conn.execute(insert(tables.schema).values(version=tables.SCHEMA_VERSION))
            elif found < tables.SCHEMA_VERSION:  # every change so far adds tables: create_all made them
                conn.execute(update(tables.schema).values(version=tables.SCHEMA_VERSION))
            elif found > tables.SCHEMA_VERSION:
                raise StateError(f"the state database {self.where} was written by a newer dann (schema {found}, "
                                 f"this one knows {tables.SCHEMA_VERSION}): upgrade dann")

    def _schema(self) -> int | None:
        with self.read("open") as conn:
            if not inspect(conn).has_table(tables.schema.name):
                return None
            return conn.execute(select(tables.schema.c.version)).scalar()

    @contextlib.contextmanager
    def read(self, doing: str = "read"):
        """A connection for reading (one transaction, ended on leaving)."""
        with self._errors(doing), self._reachable(doing), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self, doing: str = "write"):
        """One write transaction: committed on leaving, rolled back on an exception."""
        with self._errors(doing), self._reachable(doing), self._writer.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _reachable(self, doing: str):
        """A database server that was out of reach a moment ago is not tried again at every call:
        callers (every generated text checks the forget list) fail at once until the backoff
        ends, then one call tries, and success clears it."""
        now = time.monotonic()
        if now < self._down_until:
            raise StateError(f"cannot {doing} the state database {self.where}: out of reach "
                             f"(trying again in {self._down_until - now:.0f} s)")
        try:
            yield
        except OperationalError as error:
            if not self.sqlite and (error.connection_invalidated or "connection" in str(error.orig).lower()):
                self._failures += 1
                self._down_until = time.monotonic() + min(RETRY_FIRST_S * 2 ** (self._failures - 1), RETRY_MAX_S)
            raise
        else:
            self._failures = 0

    @contextlib.contextmanager
    def _errors(self, doing: str):
        try:
            yield
        except (DBAPIError, SQLAlchemyError) as error:
            # one line: a server's message may run over several ("Is the server running on that host...")
            reason = " ".join(str(error.orig if isinstance(error, DBAPIError) else error).split())
            raise StateError(f"cannot {doing} the state database {self.where}: {reason}") from None

    # --- revisions: what readers cache by -------------------------------------------------------

    @staticmethod
    def bump(conn, name: str) -> None:
        """Mark table `name` changed, inside the writer's transaction."""
        if not conn.execute(update(tables.revision).where(tables.revision.c.name == name)
                            .values(number=tables.revision.c.number + 1)).rowcount:
            conn.execute(insert(tables.revision).values(name=name, number=1))

    def secret(self, name: str) -> bytes:
        """A random key shared by every process of this store, made on first use."""
        with self.write("read a key from") as conn:
            value = conn.execute(select(tables.secrets.c.value).where(tables.secrets.c.name == name)).scalar()
            if value is None:
                value = secrets.token_hex(32)
                conn.execute(insert(tables.secrets).values(name=name, value=value))
        return bytes.fromhex(value)

    # --- the JSON files of older versions ---------------------------------------------------------

    def import_once(self, path: Path, load) -> bool:
        """Import an old JSON state file: `load(conn, data)` writes its rows in one transaction with
        the note that it was imported, then the file is renamed to `<name>.imported`. A file that
        cannot be parsed or loaded raises StateError and nothing of it is written. Returns whether
        it imported anything now."""
        path = Path(path)
        if not path.is_file():
            return False
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise StateError(f"cannot import {path} into the state database ({error}); fix or remove it") from None
        done = False
        with self.write("import into") as conn:
            key = str(path.resolve())
            if conn.execute(select(tables.imported.c.path).where(tables.imported.c.path == key)).first() is None:
                try:
                    load(conn, data)
                except (ValueError, TypeError, KeyError, AttributeError) as error:
                    raise StateError(f"cannot import {path}: it is not what dann wrote ({error}); "
                                     "fix or remove it") from None
                conn.execute(insert(tables.imported).values(path=key, at=time.time()))
                done = True
        try:
            path.rename(path.with_name(path.name + ".imported"))
        except OSError as error:  # a read-only volume: the note above keeps it from being imported again
            if done:
                log.warning("imported %s, but cannot rename it (%s)", path, error.strerror or error)
        if done:
            log.info("imported %s into the state database %s", path, self.where)
        return done


@contextlib.contextmanager
def failing_as(kind):
    """Turn a StateError into the caller's own error family, with the same one line."""
    try:
        yield
    except StateError as error:
        failure = kind(str(error))
        failure.public = error.for_public()  # the path stays in the message, for the log
        raise failure from None


def _dialect_insert(conn, table):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def insert_missing(conn, table, values: dict) -> None:
    """Insert a row unless one with the same primary key is there already."""
    keys = [column.name for column in table.primary_key.columns]
    conn.execute(_dialect_insert(conn, table).values(values).on_conflict_do_nothing(index_elements=keys))


def upsert(conn, table, values: dict) -> None:
    """Insert a row, or update the row with the same primary key, in one statement."""
    keys = [column.name for column in table.primary_key.columns]
    statement = _dialect_insert(conn, table).values(values)
    changed = {name: statement.excluded[name] for name in values if name not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=changed) if changed
                 else statement.on_conflict_do_nothing(index_elements=keys))


# The key of the advisory lock every write transaction on a server database takes (any constant
# the other users of the database leave alone): "dann" in ASCII.
WRITE_LOCK = 0x64616E6E


def _server_hooks(engine) -> None:
    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # SQLite serialises writers at BEGIN IMMEDIATE, and the tables' code relies on it: a write
        # transaction reads, then writes what it read (is the phrase there already? bump the
        # revision or insert it). PostgreSQL's READ COMMITTED would let two such transactions
        # both read "absent" and both insert. One transaction-scoped advisory lock gives every
        # writer the same guarantee as on SQLite; it is released at commit or rollback.
        if conn.get_execution_options().get("dann_write"):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")


def _sqlite_hooks(engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # pysqlite's own BEGIN comes late and deferred; "begin" below says what each one is.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; a power cut may lose the last commit
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # A writer takes the write lock at BEGIN: a deferred transaction that read first could not
        # be upgraded while another process writes, and SQLite would refuse it without waiting.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("dann_write") else "BEGIN")
