"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lmsgate.bootstrap import Container
from lmsgate.store.db import upgrade
from lmsgate.store.tables import metadata


def test_migrations_match_the_tables(container: Container) -> None:
    with container.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_is_idempotent(container: Container) -> None:
    upgrade(container.engine)
    upgrade(container.engine)
