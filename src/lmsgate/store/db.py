"""Opening the database: URL handling, SQLite pragmas, and running migrations."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DefaultClause, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from lmsgate.jsontext import dumps, loads

try:
    import fcntl
except ImportError:  # Windows: processes fall back on SQLite's own wait
    fcntl = None  # type: ignore[assignment]

__all__ = ["SchemaTooNew", "create_db_engine", "hold_write_lock", "lock_file_beside",
           "normalise_url", "one_process_at_a_time", "upgrade", "write_lock", "writing"]

MIGRATIONS = Path(__file__).with_name("migrations")

JSON_CODEC = {"json_serializer": dumps, "json_deserializer": loads}
"""JSON columns go through orjson (listing a page decodes a few hundred of them), falling back
to the standard library for what orjson refuses."""


def normalise_url(url: str) -> str:
    """Pick the driver lmsgate ships with: ``postgresql://`` means psycopg 3. A database other
    than SQLite or PostgreSQL is refused here, before a driver lmsgate lacks is looked for."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("sqlite", "postgresql", "postgres"):
        raise ArgumentError(f"lmsgate runs on SQLite or PostgreSQL, not {parsed.get_backend_name()}")
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


BUSY_TIMEOUT = 30.0
"""Seconds a SQLite writer waits for another before it fails with \"database is locked\"."""

_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, AbstractContextManager[Any]] = weakref.WeakKeyDictionary()
_WRITE_LOCKS_GUARD = threading.Lock()


class _FileWriteLock:
    """This process's threads take turns on a reentrant lock; the outermost holder also holds
    an exclusive ``flock`` on ``<database>-write.lock``, which other processes wait for.

    A waiter tries again every millisecond at most (SQLite's own wait grows to 100 ms), for as
    long as SQLite itself would wait (``busy_timeout``); then it gives up as SQLite does, with
    "database is locked"."""

    def __init__(self, path: Path, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        self._lock.acquire()
        if self._depth == 0:
            try:
                self._take()
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1

    def _take(self) -> None:
        if self._pid != os.getpid():  # new, or a forked child: its own open file, or the lock is shared
            self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        deadline = None
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self._timeout
                elif now > deadline:
                    # what SQLite itself raises when its wait runs out
                    raise OperationalError(None, None, sqlite3.OperationalError("database is locked")) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)


def write_lock(engine: Engine) -> AbstractContextManager[Any]:
    """The lock write transactions on ``engine`` take turns on (SQLite only).

    SQLite lets one writer in at a time, and a writer that finds the file locked sleeps in
    growing steps (up to 100 ms) before it tries again: two writers at once (a group commit
    of completions and a batch of request logs, or two server processes on one file) turned
    into tails of tens of milliseconds. Waiting on a lock instead hands over at once: a
    reentrant lock between this process's threads and, for a database file, a file lock
    (``<database>-write.lock``) between processes. A write made inside another on the same
    thread does not wait for itself. On PostgreSQL, writers do not exclude each other: no lock.
    """
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(engine)
        if lock is None:
            path = lock_file_beside(engine, "write") if fcntl is not None else None
            lock = _WRITE_LOCKS[engine] = threading.RLock() if path is None else _FileWriteLock(path, BUSY_TIMEOUT)
    return lock


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()``, after taking :func:`write_lock`."""
    with write_lock(engine), engine.begin() as conn:
        yield conn


def hold_write_lock(conn: Connection) -> None:
    """SQLite: take the database's write lock now, for a transaction whose reads decide what it
    writes (look a key up, then insert it; read a row, merge, write it back). Python's sqlite3
    module begins a transaction only at the first INSERT, UPDATE or DELETE, so such reads ran
    outside it and another process could write in between. Nothing to do once the transaction
    has written (it holds the lock), on an in-memory database (one process), or on PostgreSQL
    (row and advisory locks do this there).

    Only where reads decide the write: most writes (request logs, completions, the group
    commits of upserts by a unique key, which retry a lost race instead) read nothing first,
    and would only hold the lock longer."""
    engine = conn.engine
    if engine.dialect.name != "sqlite" or isinstance(engine.pool, StaticPool):
        return
    if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite database named by a plain path, made absolute. None for an
    in-memory database, which only one process can see, for a ``file:`` URI, and for PostgreSQL."""
    database = url.database or ":memory:"
    if url.get_backend_name() != "sqlite" or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def opened_sqlite_file(engine: Engine) -> str | None:
    """The file the engine's SQLite connections open, as SQLite names it (which can differ from
    :func:`sqlite_file`: SQLAlchemy expands no ``~``). None where :func:`sqlite_file` is None."""
    if sqlite_file(engine.url) is None:
        return None
    with engine.connect() as conn:
        row = conn.exec_driver_sql("PRAGMA database_list").first()
    return (row[2] or None) if row is not None else None


def lock_file_beside(engine: Engine, name: str) -> Path | None:
    """``<database>-<name>.lock`` beside a SQLite database file (:func:`sqlite_file`), for locks
    between processes (the operating system frees them when a process ends, even by
    ``kill -9``)."""
    path = sqlite_file(engine.url)
    return None if path is None else path.with_name(f"{path.name}-{name}.lock")


@contextmanager
def one_process_at_a_time(engine: Engine, name: str, *, timeout: float = 60.0) -> Iterator[None]:
    """Hold a lock that other processes on the same database wait for: a file lock beside a
    SQLite file, a session advisory lock on PostgreSQL. For work made of several
    transactions that must not interleave with another process's run of it (first-run
    setup: find the project, key and account, or make them)."""
    if engine.dialect.name == "postgresql":
        key = {"k": f"lmsgate:{name}"}
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(hashtextextended(:k, 0))"), key)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), key)
                conn.commit()
        return
    path = lock_file_beside(engine, name)
    if path is None:
        yield
        return
    from filelock import FileLock

    with FileLock(path, timeout=timeout, thread_local=False):
        yield


def create_db_engine(url: str) -> Engine:
    """Create an engine. SQLite runs in WAL mode with full fsync on commit, so an
    acknowledged write survives a crash of the process or the machine."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:")
        if not in_memory:
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        # A pool as large as the worker-thread pool: opening SQLite connections is cheap, but
        # not free, and an overflow connection would be opened and closed on every request.
        # Last in, first out: a connection drops its page cache whenever another connection
        # has written since its last transaction, so the group commit, taking the connection
        # it just used, keeps its cache. Measured with strace during POSTs: 2.8 reads of a
        # database page a request in turn (first in, first out), 1.9 this way.
        pool = {"poolclass": StaticPool} if in_memory else {"pool_size": 48, "max_overflow": 16,
                                                             "pool_use_lifo": True}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT},
                               **JSON_CODEC, **pool)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
            cur.close()

        if not in_memory:
            with engine.connect() as conn:  # WAL is a property of the file: set it once
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **JSON_CODEC)


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]?([\w-]+|None)['\"]?", re.MULTILINE)


def _revisions() -> tuple[set[str], set[str | None]]:
    """The revisions of the migration files, and those they follow (read from the files:
    importing Alembic costs a tenth of a second at every start, for a schema that is almost
    always already current)."""
    revisions: set[str] = set()
    parents: set[str | None] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text()))
        if "revision" in found:
            revisions.add(found["revision"])
            parents.add(found.get("down_revision"))
    return revisions, parents


def head_revision() -> str | None:
    """The newest migration's revision."""
    revisions, parents = _revisions()
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


class SchemaTooNew(Exception):
    """The database was migrated by a newer lmsgate than this one: its schema is at a revision
    this code has no migration for, and may not match what this code reads and writes."""

    def __init__(self, found: str, head: str | None) -> None:
        super().__init__(
            f"the database's schema is at revision {found}, which this lmsgate does not know "
            f"(its newest is {head}): a newer lmsgate upgraded it. Run that version or a later one.")


def _stored_versions(engine: Engine) -> list[str]:
    """The revisions in the database's ``alembic_version`` (none for a database without it)."""
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    except Exception:  # noqa: BLE001 - no such table yet: a new database, or someone else's tables
        return []


def is_current(engine: Engine) -> bool:
    """Whether the database is at the newest migration already."""
    head = head_revision()
    return head is not None and _stored_versions(engine) == [head]


_ALEMBIC_VERSION = ("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
"""Alembic's own bookkeeping table, as ``alembic upgrade`` creates it."""
_SCHEMA_LOCK = 0x6C6D7367_01
"""The PostgreSQL advisory lock that processes creating a new database's schema take turns on."""
_SEEDED = {"last_account_key": "0"}
"""The rows the migrations put in ``instance`` of a database without accounts (0006)."""


def _create_new(engine: Engine) -> bool:
    """Give a database without any table the newest schema in one transaction (with, on
    PostgreSQL, procrastinate's), and record the newest revision, as Alembic's "stamp" does.
    Returns False, having changed nothing, when the database has tables (then the migrations
    run) or when that fails (a second process creating the same database at the same moment:
    the migrations then find it current).

    The same schema as running every migration (``tests/integration/test_migrations.py``
    compares the two), in a fraction of the time: the migrations import Alembic and rebuild
    tables that are still empty (a new SQLite file, measured: 600 ms that way, 105 ms this).
    """
    from sqlalchemy import inspect

    from lmsgate.store.tables import metadata

    head = head_revision()
    if head is None:
        return False
    try:
        with engine.begin() as conn:
            # Processes started together on a new database queue here, so the first makes
            # the schema and the others then find it. SQLite: take the write lock now, and
            # hold the CREATEs in this transaction (Python's sqlite3 commits DDL on its own
            # otherwise); PostgreSQL: a lock for this transaction.
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})")
            if inspect(conn).get_table_names():
                return False
            _as_migrated(metadata, engine.dialect.name).create_all(conn, checkfirst=False)
            if engine.dialect.name == "postgresql":  # the job engine's own schema (migration 0004)
                from lmsgate.delivery.schema import install_job_schema

                install_job_schema(conn)
            for key, value in _SEEDED.items():
                conn.execute(text("INSERT INTO instance (key, value) VALUES (:k, :v)"), {"k": key, "v": value})
            conn.exec_driver_sql(_ALEMBIC_VERSION)
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": head})
    except DBAPIError:
        return False
    return True


def _as_migrated(metadata: MetaData, dialect: str) -> MetaData:
    """The tables as the migrations leave them on ``dialect``. On SQLite, migration 0006 could
    add ``accounts.key`` only with ``DEFAULT 0`` (SQLite adds a NOT NULL column only with a
    default); a new SQLite database gets the same column."""
    if dialect != "sqlite":
        return metadata
    copy = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(copy)
    copy.tables["accounts"].c.key.server_default = DefaultClause(text("0"))
    return copy


def upgrade(engine: Engine) -> None:
    """Bring the schema up to the newest Alembic revision.

    Processes started together (a rolling restart after an upgrade) take turns: the first
    migrates, the others then find the schema current. Run at once, two processes ran the
    same DDL and one failed. A schema newer than this code raises :class:`SchemaTooNew`."""
    if is_current(engine) or _create_new(engine):
        return
    from alembic import command
    from alembic.config import Config

    with one_process_at_a_time(engine, "setup"):
        found = _stored_versions(engine)  # as another process may have left it meanwhile
        head = head_revision()
        if head is not None and found == [head]:
            return
        known, _ = _revisions()
        unknown = [v for v in found if v not in known]
        if unknown:
            raise SchemaTooNew(unknown[0], head)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
