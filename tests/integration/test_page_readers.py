"""Page readers (``store/page_readers.py``): processes that read completion pages of a SQLite
file for the server. They must answer what the server's own read answers, and whatever
happens to them (killed, hung, refusing a query, the app stopping) a list call must still be
answered, by the server's process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import make_tenant
from lmsgate.api.app import create_app
from lmsgate.bootstrap import Container, bootstrap
from lmsgate.connectors.local.connector import LocalConnector
from lmsgate.connectors.local.finishing import finish_page
from lmsgate.settings import Settings
from lmsgate.store import child_processes, page_readers
from lmsgate.store.db import sqlite_file
from lmsgate.store.page_readers import PageReaders
from lmsgate.store.pagination import PageRequest
from support import SEED_COMPLETION, Tenant, alive, bootstrapped, shared_vault_key_file

SLOW = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000000) "
        "SELECT count(*), NULL, NULL, NULL, NULL, NULL, '{}' FROM n")
"""A query that keeps a reader busy for many seconds."""


@pytest.fixture(scope="module")
def reading(sqlite_url: str) -> Iterator[Container]:
    c = bootstrap(Settings(database_url=sqlite_url, vault_key_file=shared_vault_key_file(),
                           delivery_in_process_worker=False, read_processes=2))
    yield c
    c.engine.dispose()


@pytest.fixture(scope="module")
def learner_pages(reading: Container) -> Iterator[Tenant]:
    """A learner's completions, varied in what the database cannot write by itself."""
    with TestClient(create_app(reading), raise_server_exceptions=False) as client:
        tenant = make_tenant(client, reading)
        bodies = [
            SEED_COMPLETION,
            {**SEED_COMPLETION, "time_spent": "PT90M", "result": {"value": "Pass", "source_value": 1.0},
             "score": {"percentage": 87.5, "raw_value": "87.5 / 100"}},
            {**SEED_COMPLETION, "learning_object_external_reference": "course-9", "result": {"value": "Fail"},
             "score": {"percentage": 0.0}, "completed_at": "2021-07-21T14:00:00.123456Z"},
            {**SEED_COMPLETION, "learning_object_external_reference": "ref \"quoted\" \u00e9\u4e2d",
             "result": {"source_value": {"grade": "A", "points": 12345678901234567890123}},
             "score": {"percentage": 1 / 3}, "time_spent": "P1Y2M"},
        ]
        for i in range(12):
            resp = tenant.post(f"/unified/lms/users/learner-{i % 3}/completions",
                               json={**bodies[i % len(bodies)],
                                     "learning_object_external_reference": f"{bodies[i % 4]['learning_object_external_reference']}-{i}"})
            assert resp.status_code == 201, resp.text
        yield tenant


def _in_loop(test: Callable[[PageReaders], Awaitable[Any]], readers: PageReaders) -> Any:
    async def run() -> Any:
        readers.serve()
        try:
            return await test(readers)
        finally:
            readers.close()

    return asyncio.run(run())


async def _until_ready(readers: PageReaders, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while readers.ready() < count:
        await readers.read("SELECT 1", (), 1)  # starts them, and any missing
        assert time.monotonic() < deadline, "the page readers did not start"
        await asyncio.sleep(0.02)


def test_a_reader_reads_the_page_the_server_would(reading: Container, learner_pages: Tenant) -> None:
    tenant = learner_pages
    connector = LocalConnector(reading.store)
    query = connector._rendered_completions
    store = reading.store
    key = store.account_key(tenant.account_id)
    cutoff = datetime.now(timezone.utc) - timedelta(hours=1)
    pages = [PageRequest(page_size=100), PageRequest(page_size=5), PageRequest(page_size=1),
             PageRequest(page_size=5, updated_after=cutoff)]
    first = store.list_computed(query, tenant.account_id, PageRequest(page_size=4))
    pages.append(PageRequest(page_size=4, after_id=first.last_id))

    async def compare(readers: PageReaders) -> int:
        await _until_ready(readers, 2)
        compared = 0
        for page in pages:
            for equal in ({}, {"user_id": "learner-1"}):
                here = store.list_computed(query, tenant.account_id, page, **equal)
                there = await readers.read(*query.statement(store.engine.dialect, key, page, **equal),
                                           page.page_size)
                assert there is not None
                items, last_id, more = there
                assert items == finish_page(here.items)  # text for text
                assert (last_id, more) == (here.last_id, here.has_more)
                compared += len(items)
        return compared

    assert _in_loop(compare, PageReaders(str(sqlite_file(reading.engine.url)), 2)) > 40


def test_list_calls_through_the_app_use_the_readers(reading: Container) -> None:
    with TestClient(create_app(reading), raise_server_exceptions=False) as client:
        tenant = make_tenant(client, reading)
        for i in range(7):
            assert tenant.post(f"/unified/lms/users/learner-{i % 2}/completions",
                               json={**SEED_COMPLETION, "learning_object_external_reference": f"c-{i}"}
                               ).status_code == 201
        readers = reading.page_readers
        assert readers is not None
        client.portal.call(_until_ready, readers, 2)
        pids = client.portal.call(_pids, readers)
        assert len(pids) == 2 and all(alive(p) for p in pids)
        first = tenant.get("/unified/lms/completions?page_size=5").json()
        rest = tenant.get(f"/unified/lms/completions?page_size=5&next={first['next']}").json()
        assert len(first["data"]) == 5 and len(rest["data"]) == 2 and rest["next"] is None
        # a write answered 201 is in the next page read, whichever process reads it
        posted = tenant.post("/unified/lms/users/learner-1/completions",
                             json={**SEED_COMPLETION, "learning_object_external_reference": "just-now"})
        assert posted.status_code == 201
        user_page = tenant.get("/unified/lms/users/learner-1/completions?page_size=100").json()
        assert posted.json()["data"]["id"] in {c["id"] for c in user_page["data"]}
        assert len(user_page["data"]) == 4
        fields = tenant.get("/unified/lms/completions?page_size=3&fields=id,time_spent").json()
        assert [set(c) for c in fields["data"]] == [{"id", "time_spent"}] * 3
        assert client.portal.call(_pids, readers) == pids  # the same two read every page
    assert not any(alive(p) for p in pids)  # the app's shutdown stopped them


async def _pids(readers: PageReaders) -> list[int]:
    return readers.processes()


def test_a_killed_reader_leaves_its_pages_to_the_server_and_is_replaced(
        reading: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_readers, "RETRY_AFTER", 0.3)

    async def scenario(readers: PageReaders) -> None:
        await _until_ready(readers, 2)
        old = readers.processes()
        waiting = asyncio.ensure_future(readers.read(SLOW, (), 1))
        await asyncio.sleep(0.2)
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        assert await asyncio.wait_for(waiting, 10) is None  # the page goes back to the server
        assert await readers.read("SELECT 1", (), 1) is None  # none ready: the server reads
        await _until_ready(readers, 2)
        new = readers.processes()
        assert len(new) == 2 and not set(new) & set(old)
        assert (await readers.read("SELECT 'x', NULL, NULL, NULL, NULL, NULL, '{}'", (), 5)) is not None
        assert not any(alive(p) for p in old)  # collected, not left as zombies

    _in_loop(scenario, PageReaders(str(sqlite_file(reading.engine.url)), 2))


def test_a_reader_that_hangs_is_stopped(reading: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_readers, "TIMEOUT", 0.6)

    async def scenario(readers: PageReaders) -> None:
        await _until_ready(readers, 1)
        [pid] = readers.processes()
        started = time.monotonic()
        assert await asyncio.wait_for(readers.read(SLOW, (), 1), 10) is None
        assert time.monotonic() - started < 5
        while alive(pid):  # killed, and collected from the event loop, which keeps serving
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.02)

    _in_loop(scenario, PageReaders(str(sqlite_file(reading.engine.url)), 1))


def test_a_query_a_reader_refuses_is_read_by_the_server(reading: Container) -> None:
    async def scenario(readers: PageReaders) -> None:
        await _until_ready(readers, 1)
        [pid] = readers.processes()
        assert await readers.read("SELECT * FROM no_such_table", (), 1) is None
        assert await readers.read("INSERT INTO accounts (id) VALUES ('x')", (), 1) is None  # read only
        assert readers.processes() == [pid]  # and it goes on reading
        assert await readers.read("SELECT 'a', NULL, NULL, NULL, NULL, NULL, '{}'", (), 1) == (
            ['{,"result":null,"score":null,"time_spent":null}'], "a", False)

    _in_loop(scenario, PageReaders(str(sqlite_file(reading.engine.url)), 1))


def test_readers_exist_only_for_a_sqlite_file(tmp_path, postgres_url: str) -> None:
    assert bootstrapped(f"sqlite:///{tmp_path}/a.db", "page_readers", read_processes=2) is not None
    assert bootstrapped(f"sqlite:///{tmp_path}/b.db", "page_readers", read_processes=0) is None
    assert bootstrapped("sqlite://", "page_readers", read_processes=2) is None
    assert bootstrapped(postgres_url, "page_readers", read_processes=2) is None
    assert 1 <= Settings(database_url="sqlite://").read_processes <= 4


def test_a_reader_loads_neither_pydantic_nor_sqlalchemy(reading: Container) -> None:
    """Each reader costs its imports at every start and in memory: the standard library,
    orjson and the finishing of a page (about 25 MB), not the models or SQLAlchemy."""
    probe = ("import sys, lmsgate.store.page_readers, lmsgate.connectors.local.finishing; "
             "print(sorted(m for m in ('pydantic', 'sqlalchemy', 'fastapi', 'lmsgate.schema') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_pages_go_to_readers_only_while_an_app_serves(reading: Container) -> None:
    """A command (``completions export``) reads one page after another: it gets no readers."""
    readers = PageReaders(str(sqlite_file(reading.engine.url)), 1)

    async def scenario() -> None:
        for _ in range(20):
            assert await readers.read("SELECT 1", (), 1) is None
            await asyncio.sleep(0.02)
        assert readers.processes() == []
        readers.serve()
        await _until_ready(readers, 1)
        [pid] = readers.processes()
        readers.close()
        assert not alive(pid)
        assert await readers.read("SELECT 1", (), 1) is None and readers.processes() == []

    asyncio.run(scenario())


def test_a_reader_that_cannot_start_leaves_the_pages_to_the_server(
        reading: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of file descriptors or processes, a list call is still answered."""
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError(24, "Too many open files")

    readers = PageReaders(str(sqlite_file(reading.engine.url)), 1)

    async def scenario() -> None:
        readers.serve()
        try:
            for target in ("socketpair", "Popen"):
                with monkeypatch.context() as m:
                    m.setattr(child_processes.socket if target == "socketpair" else child_processes.subprocess,
                              target, refused)
                    m.setattr(page_readers, "RETRY_AFTER", 0.0)
                    assert await readers.read("SELECT 1", (), 1) is None
                    assert readers.processes() == []
            await _until_ready(readers, 1)  # and once it can, it starts
        finally:
            readers.close()

    asyncio.run(scenario())


def test_readers_an_app_left_behind_are_stopped_by_the_next(reading: Container) -> None:
    """An app whose shutdown did not stop its readers (its event loop is closed now): the next
    app to serve stops them, without failing its own start."""
    readers = PageReaders(str(sqlite_file(reading.engine.url)), 1)

    async def first() -> list[int]:
        readers.serve()
        await _until_ready(readers, 1)
        return readers.processes()

    async def second() -> None:
        readers.serve()
        readers.close()

    [pid] = asyncio.run(first())
    assert alive(pid)
    asyncio.run(second())
    assert not alive(pid)


def test_readers_open_the_file_the_server_opened(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLAlchemy expands no ``~`` in a SQLite path: the readers must read the file the
    server's connections write, not one in the home directory."""
    from lmsgate.store.db import create_db_engine, opened_sqlite_file

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "~").mkdir()
    (tmp_path / "home").mkdir()
    engine = create_db_engine("sqlite:///~/x.db")
    try:
        assert opened_sqlite_file(engine) == str(tmp_path / "~" / "x.db")
    finally:
        engine.dispose()
    memory = create_db_engine("sqlite://")
    assert opened_sqlite_file(memory) is None
    memory.dispose()


def test_readers_stopped_while_starting_leave_nothing_behind(reading: Container) -> None:
    readers = PageReaders(str(sqlite_file(reading.engine.url)), 2)

    async def scenario() -> None:
        before = len(os.listdir("/proc/self/fd"))
        readers.serve()
        assert await readers.read("SELECT 1", (), 1) is None  # starts them; none is ready yet
        pids = readers.processes()
        assert len(pids) == 2
        readers.close()
        await asyncio.sleep(0.1)  # the connections being made see their cancellation
        assert not any(alive(p) for p in pids)
        assert len(os.listdir("/proc/self/fd")) == before  # no socket left open

    asyncio.run(scenario())
