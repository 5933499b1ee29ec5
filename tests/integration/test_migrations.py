"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conftest import _pg_database
from lmsgate.bootstrap import Container, bootstrap
from lmsgate.connectors.base import CallContext
from lmsgate.connectors.local.mapping import dedupe_key, dt
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.settings import Settings
from lmsgate.store import tables as t
from lmsgate.store.db import upgrade
from lmsgate.store.tables import metadata
from support import shared_vault_key_file


def test_migrations_match_the_tables(container: Container) -> None:
    with container.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_is_idempotent(container: Container) -> None:
    upgrade(container.engine)
    upgrade(container.engine)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
    else:
        yield from _pg_database()


def test_0005_rewrites_old_completion_keys_to_what_the_code_computes(fresh_url: str) -> None:
    """Completions stored with the old keys (a bare SHA-256) are still found as repeats after
    the upgrade: one with completed_at gets the time-led key, one without keeps its hash."""
    container = bootstrap(Settings(database_url=fresh_url, vault_key_file=shared_vault_key_file()))
    project = container.tenancy.create_project("migration")
    ctx = CallContext(account=container.tenancy.get_account(container.tenancy.create_account(project, "local").id))
    bodies = [("u1", LmsCreateCompletionRequestDto.model_validate(
                  {"learning_object_external_reference": "c1", "completed_at": "2024-03-05T06:07:08.123456Z"})),
              ("u2", LmsCreateCompletionRequestDto.model_validate({"learning_object_external_reference": "c2"}))]
    first = [r.id for r in anyio.run(container.service.create_completions, ctx, bodies)]
    c = t.completions.c
    with container.engine.begin() as conn:  # back to the state before 0005: plain hashes
        for (user, body), rid in zip(bodies, first):
            old = dedupe_key(user, body.learning_object_external_reference,
                             dt(body.completed_at) if body.completed_at else None)
            conn.execute(sa.update(t.completions).where(c.id == rid).values(dedupe_key=old))
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0004'")
    upgrade(container.engine)
    with container.engine.connect() as conn:
        keys = dict(conn.execute(sa.select(c.id, c.dedupe_key)).all())
    assert keys[first[0]].startswith("20240305060708") and len(keys[first[0]]) == 64
    again = anyio.run(container.service.create_completions, ctx, bodies)
    assert [(r.id, r.created) for r in again] == [(first[0], False), (first[1], False)]
    container.engine.dispose()
