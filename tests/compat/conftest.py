"""Real lmsgate servers for the compatibility tests.

Each server is ``lmsgate serve`` in a subprocess on a free 127.0.0.1 port, with its own
temporary SQLite database, a pinned API key and a pinned ``local`` account, exactly as a user
would start it. The servers differ only in the settings the tests need:

* ``lmsgate_server``: default settings, except that outbound calls to 127.0.0.0/8 are
  allowed (``LMSGATE_OUTBOUND_ALLOW_NETWORKS``), so an ``xapi`` account can be linked to an
  LRS address on this machine; the tests only use operations that never call it;
* ``ratelimited_server``: 60 requests per minute per key, to reach a real 429 quickly;
* ``heartbeat_server``: heartbeats after 0.25 s, every 0.05 s, so a slow request shows them.

Extra linked accounts are made through lmsgate's accounts API (``POST /accounts``,
``PATCH /accounts/{id}``), except what that API rightly refuses, such as an account on a
provider without a connector: that one is written straight into the server's database through
:class:`lmsgate.store.tenancy.Tenancy`, as state left by another lmsgate version would be.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from lmsgate.store.db import create_db_engine
from lmsgate.store.tenancy import Tenancy

API_KEY = "lmsgate-compat-suite-key-0001"
ACCOUNT_ID = "compat-local"
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def _command() -> list[str]:
    script = Path(sys.executable).with_name("lmsgate")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "lmsgate.cli.main"]


@dataclass
class LmsgateServer:
    """A running ``lmsgate serve`` process and what a client needs to call it."""

    url: str
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    api_key: str = API_KEY
    account_id: str = ACCOUNT_ID
    _tenancy: Tenancy | None = field(default=None, repr=False)

    @property
    def tenancy(self) -> Tenancy:
        if self._tenancy is None:
            self._tenancy = Tenancy(create_db_engine(self.database_url))
        return self._tenancy

    def headers(self, account_id: str | None = None, *, key: str | None = None, **extra: str) -> dict[str, str]:
        return {"Authorization": basic(key or self.api_key), "x-account-id": account_id or self.account_id, **extra}

    def issue_key(self) -> str:
        """A new API key in the server's project, written straight into its database."""
        project = self.tenancy.get_account(self.account_id).project_id  # type: ignore[union-attr]
        return self.tenancy.issue_key(project, "compat-test").secret

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kw)

    def add_account(self, provider: str, *, account_id: str | None = None) -> str:
        """Create an account in the server's project directly in its database (no checks)."""
        project = self.tenancy.get_account(self.account_id).project_id  # type: ignore[union-attr]
        return self.tenancy.create_account(project, provider, account_id=account_id).id

    def link_account(self, provider: str, **body: Any) -> str:
        """Link an account through ``POST /accounts``, as an integrator would."""
        payload = {"provider": provider, "origin_owner_id": "compat-customer",
                   "origin_owner_name": "Compat Customer", **body}
        resp = httpx.post(f"{self.url}/accounts", json=payload, headers=self.headers(), timeout=30)
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    def set_account_status(self, account_id: str, status: str) -> None:
        resp = httpx.patch(f"{self.url}/accounts/{account_id}", json={"status": status},
                           headers=self.headers(), timeout=30)
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == status

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        if self._tenancy is not None:
            self._tenancy.engine.dispose()


def start_server(workdir: Path, **settings: str) -> LmsgateServer:
    """Start ``lmsgate serve`` with ``LMSGATE_*`` settings; wait until /health answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir / 'lmsgate.db'}"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    env.update({
        "LMSGATE_DATABASE_URL": database_url,
        "LMSGATE_API_KEY": API_KEY,
        "LMSGATE_ACCOUNT_ID": ACCOUNT_ID,
        "LMSGATE_LOG_LEVEL": "warning",
        **{f"LMSGATE_{k.upper()}": v for k, v in settings.items()},
    })
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
        )
    server = LmsgateServer(url=f"http://127.0.0.1:{port}", database_url=database_url, process=process,
                           log_path=log_path)
    # Ready means the pinned key and account answer an LMS call, not only that /health is up.
    deadline = time.monotonic() + STARTUP_SECONDS
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"lmsgate serve exited with {process.returncode} before answering:\n{server.log()}")
        try:
            resp = httpx.get(f"{server.url}/unified/lms/users?page_size=1", headers=server.headers(), timeout=2)
            if resp.status_code == 200:
                return server
            last = f"{resp.status_code} {resp.text}"
        except httpx.TransportError as exc:
            last = repr(exc)
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"lmsgate serve was not ready within {STARTUP_SECONDS} s (last answer: {last}):\n{server.log()}")


def _serve(tmp_path_factory: pytest.TempPathFactory, name: str, **settings: str) -> Iterator[LmsgateServer]:
    server = start_server(tmp_path_factory.mktemp(name), **settings)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def lmsgate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LmsgateServer]:
    yield from _serve(tmp_path_factory, "lmsgate", outbound_allow_networks="127.0.0.0/8")


@pytest.fixture(scope="session")
def ratelimited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LmsgateServer]:
    yield from _serve(tmp_path_factory, "ratelimited", rate_limit_per_minute="60")


@pytest.fixture(scope="session")
def heartbeat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LmsgateServer]:
    yield from _serve(tmp_path_factory, "heartbeat", heartbeat_after_seconds="0.25",
                      heartbeat_interval_seconds="0.05", rate_limit_per_minute="0")


@pytest.fixture
def fresh_account(lmsgate_server: LmsgateServer) -> str:
    """A new, empty ``local`` account on the main server, so a test sees only its own records."""
    return lmsgate_server.add_account("local")
