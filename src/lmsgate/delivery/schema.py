"""procrastinate's tables, installed by lmsgate's own migrations into their own PostgreSQL schema.

procrastinate (the job engine that spreads deliveries over ``lmsgate worker`` processes) ships
its schema as one SQL file. lmsgate applies it from Alembic migration 0004, so ``lmsgate
migrate`` (and every start, which migrates) sets up a fresh database completely. It goes into
the PostgreSQL schema ``procrastinate``, away from lmsgate's tables: procrastinate's
connections run with ``search_path=procrastinate`` (:data:`JOB_SEARCH_PATH`), and Alembic's
comparison of lmsgate's tables with the database does not see it.

Upgrading procrastinate past the minor version pinned in ``pyproject.toml`` needs a new lmsgate
migration that applies procrastinate's migration files for the versions in between.
"""

from __future__ import annotations

from sqlalchemy import Connection

JOB_SCHEMA = "procrastinate"
JOB_SEARCH_PATH = f"-c search_path={JOB_SCHEMA}"
"""libpq ``options`` for every connection procrastinate opens."""


def install_job_schema(conn: Connection) -> None:
    """Create procrastinate's tables, types and functions in :data:`JOB_SCHEMA` (PostgreSQL only).

    Runs inside the caller's transaction; does nothing when the schema already holds them.
    """
    from procrastinate.schema import SchemaManager

    exists = conn.exec_driver_sql(f"SELECT to_regclass('{JOB_SCHEMA}.procrastinate_jobs')").scalar()
    if exists is not None:
        return
    previous = conn.exec_driver_sql("SHOW search_path").scalar()
    raw = conn.connection.driver_connection  # psycopg: a statement without parameters keeps its %s
    assert raw is not None
    raw.execute(f"CREATE SCHEMA IF NOT EXISTS {JOB_SCHEMA}")
    raw.execute(f"SET LOCAL search_path TO {JOB_SCHEMA}")
    raw.execute(SchemaManager.get_schema())  # type: ignore[arg-type]
    raw.execute("SELECT set_config('search_path', %s, true)", (previous,))


def remove_job_schema(conn: Connection) -> None:
    conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {JOB_SCHEMA} CASCADE")
