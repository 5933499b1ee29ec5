"""The commit process (``store/commit_process.py``): posted completions of a SQLite file are
committed beside the server. A 201 must still mean the completion is stored, and whatever
happens to the process (killed mid-stream, refusing a group, not started), every post must be
answered as before, each completion stored once."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from conftest import make_tenant
from lmsgate.api.app import create_app
from lmsgate.bootstrap import Container, bootstrap
from lmsgate.connectors.local.rows import CompletionRowBuilder
from lmsgate.errors import Unprocessable
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.settings import Settings
from lmsgate.store import commit_process
from lmsgate.store import tables as t
from lmsgate.store.commit_process import CommitProcess
from lmsgate.store.db import opened_sqlite_file
from lmsgate.store.group_commit import GroupCommitter
from support import SEED_COMPLETION, Tenant, alive, bootstrapped, shared_vault_key_file


@pytest.fixture(scope="module")
def committing(sqlite_url: str) -> Iterator[Container]:
    c = bootstrap(Settings(database_url=sqlite_url, vault_key_file=shared_vault_key_file(),
                           delivery_in_process_worker=False, commit_process=True))
    yield c
    c.engine.dispose()


async def _until_ready(process: CommitProcess, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while not process.ready():
        await process.write([])  # starts it
        assert time.monotonic() < deadline, "the commit process did not start"
        await asyncio.sleep(0.02)
    [pid] = process.processes()
    return pid


def _stored(container: Container, tenant: Tenant, prefix: str) -> dict[str, int]:
    key = container.store.account_key(tenant.account_id)
    c = t.completions.c
    with container.engine.connect() as conn:
        rows = conn.execute(select(c.id, func.count()).where(c.account_key == key, c.user_id.like(f"{prefix}%"))
                            .group_by(c.user_id, c.learning_object_external_reference)).all()
    return {row[0]: row[1] for row in rows}


def test_posts_are_committed_by_the_process(committing: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    process = committing.commit_process
    assert process is not None
    with TestClient(create_app(committing), raise_server_exceptions=False) as client:
        tenant = make_tenant(client, committing)
        pid = client.portal.call(_until_ready, process)
        assert alive(pid) and pid != os.getpid()
        in_server: list[int] = []
        real = committing.store.insert_bound
        monkeypatch.setattr(committing.store, "insert_bound",
                            lambda table, rows: in_server.append(len(rows)) or real(table, rows))
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: tenant.post(
                f"/unified/lms/users/cp-{i % 5}/completions",
                json={**SEED_COMPLETION, "learning_object_external_reference": f"c-{i}"}), range(40)))
        assert [a.status_code for a in answers] == [201] * 40
        assert in_server == []  # every group went to the process
        stored = _stored(committing, tenant, "cp-")
        assert sorted(stored) == sorted(a.json()["data"]["id"] for a in answers)
        assert set(stored.values()) == {1}
        again = tenant.post("/unified/lms/users/cp-0/completions",
                            json={**SEED_COMPLETION, "learning_object_external_reference": "c-0"})
        assert again.status_code == 201 and again.json()["data"]["id"] == answers[0].json()["data"]["id"]
    assert not alive(pid)  # the app's shutdown stopped it


def test_a_killed_process_loses_no_acknowledged_completion(
        committing: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commit_process, "RETRY_AFTER", 0.3)
    process = committing.commit_process
    assert process is not None
    with TestClient(create_app(committing), raise_server_exceptions=False) as client:
        tenant = make_tenant(client, committing)
        first = client.portal.call(_until_ready, process)
        in_server: list[int] = []
        real = committing.store.insert_bound
        monkeypatch.setattr(committing.store, "insert_bound",
                            lambda table, rows: in_server.append(len(rows)) or real(table, rows))
        posted: list[Any] = []
        stop = threading.Event()

        def post(i: int) -> None:
            posted.append(tenant.post(f"/unified/lms/users/kp-{i % 7}/completions",
                                      json={**SEED_COMPLETION, "learning_object_external_reference": f"k-{i}"}))

        def killer() -> None:
            while len(posted) < 60 and not stop.is_set():
                time.sleep(0.005)
            os.kill(first, signal.SIGKILL)

        k = threading.Thread(target=killer)
        k.start()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(post, range(300)))
        stop.set()
        k.join()
        assert [a.status_code for a in posted] == [201] * 300
        stored = _stored(committing, tenant, "kp-")
        assert sorted(stored) == sorted(a.json()["data"]["id"] for a in posted)  # all there
        assert set(stored.values()) == {1}  # once each
        assert in_server  # the groups after the kill were written by the server
        second = client.portal.call(_until_ready, process)  # a new one takes over
        assert second != first and not alive(first)


def test_a_group_the_database_refuses_goes_back_to_the_server(
        committing: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commit_process, "RETRY_AFTER", 0.3)
    process = CommitProcess(opened_sqlite_file(committing.engine))
    body = LmsCreateCompletionRequestDto.model_validate(SEED_COMPLETION)
    refused = CompletionRowBuilder(None, "sqlite")([("nobody", body)])  # an account it does not know

    async def scenario() -> None:
        assert await process.write([]) is None  # no app serves: written where it was made
        process.serve()
        try:
            pid = await _until_ready(process)
            assert await process.write(refused) is None  # refused: the server's write says why
            assert process.processes() == [pid]  # and the process goes on
            assert await process.write([("not", "a", "row")]) is None  # the process failed:
            assert process.processes() == []  # it is stopped, and started again later
            assert await _until_ready(process) != pid
        finally:
            process.close()
        assert not alive(pid)

    asyncio.run(scenario())
    committer: GroupCommitter[tuple[Any, ...], tuple[str, bool]] = GroupCommitter(
        lambda rows: committing.store.insert_bound(t.completions, rows), write_elsewhere=process.write)
    with pytest.raises(Unprocessable):  # as without the process
        asyncio.run(committer.submit(refused[0]))


def test_a_group_committed_by_a_process_that_died_before_answering_is_stored_once(
        committing: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process commits, then dies before it answers: the server writes the group again,
    finds the rows by their dedupe keys, and answers with the same ids."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(Path(__file__).parents[1]),
                                                                   os.environ.get("PYTHONPATH")])))
    process = CommitProcess(opened_sqlite_file(committing.engine), module="commit_then_die")
    store = committing.store
    account = committing.tenancy.create_account(committing.tenancy.create_project("died"), "local").id
    builder = CompletionRowBuilder(store.account_key(account), "sqlite")
    rows = builder([(f"died-{i}", LmsCreateCompletionRequestDto.model_validate(SEED_COMPLETION)) for i in range(5)])
    key = store.account_key(account)

    def stored() -> int:
        with committing.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.completions)
                                    .where(t.completions.c.account_key == key)).scalar_one())

    in_server: list[tuple[int, int]] = []  # (rows in the group, rows already stored)
    committer: GroupCommitter[tuple[Any, ...], tuple[str, bool]] = GroupCommitter(
        lambda group: in_server.append((len(group), stored())) or store.insert_bound(t.completions, group),
        write_elsewhere=process.write)

    async def scenario() -> list[tuple[str, bool]]:
        process.serve()
        try:
            await _until_ready(process)
            return list(await asyncio.gather(*(committer.submit(row) for row in rows)))
        finally:
            process.close()

    results = asyncio.run(scenario())
    assert [r[0] for r in results] == [row[1] for row in rows]  # the ids the rows were built with
    assert in_server == [(5, 5)]  # written again here, though the process had stored them all
    assert stored() == 5  # once each


def test_the_process_exists_only_for_a_sqlite_file(tmp_path, postgres_url: str) -> None:
    assert bootstrapped(f"sqlite:///{tmp_path}/a.db", "commit_process") is not None
    assert bootstrapped(f"sqlite:///{tmp_path}/b.db", "commit_process", commit_process=False) is None
    assert bootstrapped("sqlite://", "commit_process") is None
    assert bootstrapped(postgres_url, "commit_process") is None
