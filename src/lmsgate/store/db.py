"""Opening the database: URL handling, SQLite pragmas, and running migrations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

__all__ = ["create_db_engine", "normalise_url", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")

def _dumps(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # e.g. an integer beyond 64 bits, which JSON itself allows
        return json.dumps(value)


_LONG_NUMBER = re.compile(r"\d{19}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{19}")


def _loads(text: str | bytes) -> object:
    # orjson reads integers beyond 64 bits as floats, losing digits; the standard library
    # keeps them. Such numbers are rare, so only text with 19+ digits in a row pays for it.
    # (SQLite hands over str, psycopg bytes.)
    pattern = _LONG_NUMBER_BYTES if isinstance(text, bytes) else _LONG_NUMBER
    if pattern.search(text):  # type: ignore[arg-type]
        return json.loads(text)
    return orjson.loads(text)


_JSON_CODEC = {"json_serializer": _dumps, "json_deserializer": _loads}
"""JSON columns go through orjson (listing a page decodes a few hundred of them), falling back
to the standard library for what orjson refuses."""


def normalise_url(url: str) -> str:
    """Pick the driver lmsgate ships with: ``postgresql://`` means psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


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
        pool = {"poolclass": StaticPool} if in_memory else {"pool_size": 48, "max_overflow": 16}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **_JSON_CODEC, **pool)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        if not in_memory:
            with engine.connect() as conn:  # WAL is a property of the file: set it once
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **_JSON_CODEC)


def upgrade(engine: Engine) -> None:
    """Bring the schema up to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
