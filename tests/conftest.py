"""Shared fixtures. Integration tests run once per backend: SQLite and PostgreSQL.

PostgreSQL is found at ``LMSGATE_TEST_POSTGRES_URL`` (default: the local server with trust
auth). Each test session creates its own database and drops it afterwards. When the server is
unreachable the PostgreSQL half is skipped with the reason shown, unless
``LMSGATE_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which turns that into a failure.

Every test gets its own project, API key and linked account, so tests never see each
other's records even though they share a database.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
import pytest
from fastapi.testclient import TestClient

from lmsgate.api.app import create_app
from lmsgate.bootstrap import Container, bootstrap
from lmsgate.settings import Settings
from support import shared_vault_key_file, Tenant

PG_URL = os.environ.get("LMSGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("LMSGATE_REQUIRE_POSTGRES") == "1"


def _pg_database() -> Iterator[str]:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(PG_URL)
    name = f"lmsgate_test_{secrets.token_hex(4)}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required (LMSGATE_REQUIRE_POSTGRES=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}: {exc}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("db") / "lmsgate.db"
    yield f"sqlite:///{path}"
    # The suite's servers, their request-log processes and the tests write this file from
    # several processes and threads at once: whatever else passed, the file must be whole.
    # (An experiment with request-log commits that did not wait for the disk corrupted it
    # within seconds, on SQLite 3.40, while every test before the damage passed.)
    import sqlite3

    if path.exists():
        with sqlite3.connect(path) as conn:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        assert problems == ["ok"], f"the suite's SQLite database is damaged: {problems[:5]}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    yield from _pg_database()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def db_url(request: pytest.FixtureRequest, backend: str) -> str:
    return request.getfixturevalue("sqlite_url" if backend == "sqlite" else "postgres_url")


@pytest.fixture(scope="session")
def container(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Container:
    # The vault key file goes to a temporary directory, and the provider simulators and the
    # test LRS listen on 127.0.0.1, which the SSRF guard refuses unless allowed.
    return bootstrap(Settings(
        database_url=db_url, max_body_bytes=256 * 1024,
        vault_key_file=shared_vault_key_file(),
        outbound_allow_networks=["127.0.0.1/32"],
    ))


@pytest.fixture(scope="session")
def app_client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client


def make_tenant(client: TestClient, container: Container) -> Tenant:
    project = container.tenancy.create_project(f"test-{secrets.token_hex(3)}")
    key = container.tenancy.issue_key(project).secret
    account = container.tenancy.create_account(project, "local").id
    return Tenant(client=client, container=container, project_id=project, account_id=account, api_key=key)


@pytest.fixture(scope="session")
def framework_client(container: Container) -> Iterator[TestClient]:
    """The app without the completion fast path: every request goes through FastAPI."""
    with TestClient(create_app(container, fast_path=False), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def tenant(app_client: TestClient, container: Container) -> Tenant:
    return make_tenant(app_client, container)


@pytest.fixture(params=["fast-path", "framework"])
def any_path_tenant(request: pytest.FixtureRequest, container: Container) -> Tenant:
    """A tenant whose requests go through the fast path, then through FastAPI alone."""
    name = "app_client" if request.param == "fast-path" else "framework_client"
    return make_tenant(request.getfixturevalue(name), container)


@pytest.fixture
def other_tenant(app_client: TestClient, container: Container) -> Tenant:
    return make_tenant(app_client, container)


