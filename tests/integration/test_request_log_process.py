"""The request log's own process (``lmsgate.api.request_log_process``).

The suite's shared app writes its request logs through such a process too; here it is
watched directly: rows are built and masked there, a read of the log sees every earlier
call, a dead process costs no row, and the process ends with the app.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import make_tenant
from lmsgate.api import request_log_process
from lmsgate.api.app import create_app
from lmsgate.api.request_log_process import LogSettings, runs_apart
from lmsgate.bootstrap import Container, bootstrap
from lmsgate.settings import Settings
from lmsgate.store import tables as t
from support import SEED_COMPLETION, Tenant, alive, shared_vault_key_file


@pytest.fixture(scope="module")
def log_container(db_url: str) -> Iterator[Container]:
    c = bootstrap(Settings(database_url=db_url, vault_key_file=shared_vault_key_file(),
                           delivery_in_process_worker=False))
    yield c
    c.engine.dispose()


@pytest.fixture
def served(log_container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(log_container), raise_server_exceptions=False) as client:
        yield client


def _logged(tenant: Tenant) -> list[dict]:
    resp = tenant.get("/requests/logs", params={"page_size": 100, "include": "step_logs"})
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def test_rows_are_built_and_masked_in_the_log_process(served: TestClient, log_container: Container) -> None:
    writer = served.app.state.request_log_writer
    process = writer.process
    assert process is not None and process.pid is not None and process.pid != os.getpid()
    assert alive(process.pid)  # started with the app, before any request
    tenant = make_tenant(served, log_container)
    posted = [tenant.post(f"/unified/lms/users/p{i}/completions",
                          json={**SEED_COMPLETION, "passthrough": {"note": f"key {tenant.api_key}"}})
              for i in range(5)]
    assert [r.status_code for r in posted] == [201] * 5
    missing = tenant.get("/unified/lms/completions/nope")
    # the read flushes first, and the flush returns once the process has committed
    logged = {d["request_id"]: d for d in _logged(tenant)}
    for resp in [*posted, missing]:
        assert resp.headers["x-request-id"] in logged
    assert logged[missing.headers["x-request-id"]]["status"] == 404
    one = tenant.get(f"/requests/logs/{posted[0].headers['x-request-id']}").json()["data"]
    assert one["request"]["body"]["passthrough"]["note"] == "key [REDACTED]"  # masked by the process
    assert tenant.api_key not in str(one)
    assert one["request"]["headers"]["authorization"] == "[REDACTED]"


def test_a_dead_log_process_costs_no_row_and_is_replaced(served: TestClient, log_container: Container,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    process = served.app.state.request_log_writer.process
    tenant = make_tenant(served, log_container)
    first = process.pid
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(first) and time.monotonic() < deadline:
        time.sleep(0.02)
    during = [tenant.post(f"/unified/lms/users/d{i}/completions", json=SEED_COMPLETION) for i in range(3)]
    ids = {d["request_id"] for d in _logged(tenant)}  # written in the server's process instead
    assert {r.headers["x-request-id"] for r in during} <= ids
    monkeypatch.setattr(request_log_process, "RETRY_AFTER", 0.0)
    after = tenant.post("/unified/lms/users/d9/completions", json=SEED_COMPLETION)
    assert after.headers["x-request-id"] in {d["request_id"] for d in _logged(tenant)}
    assert process.pid not in (None, first) and alive(process.pid)  # a new process took over


def test_the_log_process_ignores_ctrl_c_and_ends_with_the_app(log_container: Container) -> None:
    with TestClient(create_app(log_container), raise_server_exceptions=False) as client:
        process = client.app.state.request_log_writer.process
        pid = process.pid
        tenant = make_tenant(client, log_container)
        tenant.get("/unified/lms/completions")
        _logged(tenant)  # the process has started and written a batch
        # A Ctrl-C reaches the whole process group; the server handles it. (A server started
        # from its main thread, as `lmsgate serve` is, starts it with Ctrl-C already ignored.)
        os.kill(pid, signal.SIGINT)
        resp = tenant.post("/unified/lms/users/c1/completions", json=SEED_COMPLETION)
        assert resp.headers["x-request-id"] in {d["request_id"] for d in _logged(tenant)}
        assert process.pid == pid and alive(pid)
        last = tenant.post("/unified/lms/users/c2/completions", json=SEED_COMPLETION)
    assert not alive(pid)
    with log_container.engine.connect() as conn:  # written at shutdown, before the process stopped
        assert conn.execute(select(t.request_logs.c.id).where(
            t.request_logs.c.request_id == last.headers["x-request-id"])).first() is not None


def test_request_logs_get_a_process_only_where_one_can_open_the_database(tmp_path) -> None:
    def settings(url: str, **kw: object) -> Settings:
        return Settings(database_url=url, **kw)

    assert runs_apart(settings(f"sqlite:///{tmp_path}/a.db"))
    assert runs_apart(settings("postgresql://u@127.0.0.1:5432/x"))
    assert not runs_apart(settings("sqlite://"))
    assert not runs_apart(settings("sqlite:///:memory:"))
    assert not runs_apart(settings("sqlite:///file:mem1?mode=memory&cache=shared&uri=true"))
    assert not runs_apart(settings("sqlite:///file::memory:?uri=true"))
    assert not runs_apart(settings(f"sqlite:///{tmp_path}/a.db", request_log_process=False))
    assert not runs_apart(settings(f"sqlite:///{tmp_path}/a.db", request_logs=False))


def test_what_the_log_process_is_given_does_not_show_its_secrets() -> None:
    given = LogSettings.of(Settings(database_url="postgresql://u:pw-0123456789@127.0.0.1:5432/x",
                                    api_key="pinned-key-0123456789abcdef"))
    assert given.pinned_key == "pinned-key-0123456789abcdef"  # its log lines mask it
    assert "0123456789" not in repr(given) and "0123456789" not in str(given)


def test_the_process_loads_neither_the_api_framework_nor_the_http_client() -> None:
    """What the child imports is what it costs at every start: the masking, the rows and the
    database, not FastAPI, pydantic's models or httpx (they doubled its start and added a
    third to its memory)."""
    import subprocess
    import sys

    probe = ("import sys, lmsgate.api.request_log_process; "
             "print(sorted(m for m in ('fastapi', 'httpx', 'lmsgate.schema', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
