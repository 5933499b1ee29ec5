"""Helpers shared by the tests (imported as ``support``; ``tests/`` is on the path)."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from lmsgate.bootstrap import Container


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@dataclass
class Tenant:
    """A project with one API key and one local linked account, and a client bound to them."""

    client: TestClient
    container: Container
    project_id: str
    account_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": basic(self.api_key), "x-account-id": self.account_id}

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)


SEED_COMPLETION = {
    "completed_at": "2021-07-21T14:00:00.000Z",
    "learning_object_external_reference": "learning-content-123",
    "learning_object_id": "e3gd34-23tr21-er234-345er56",
    "passthrough": {"other_known_names": "John Doe"},
    "time_spent": "PT1H30M45S",
}


def assert_stackone_error(resp: httpx.Response, status: int, *mentions: str) -> dict[str, Any]:
    """The body must be StackOne's error shape, with the given status, naming each mention."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["statusCode"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert body["timestamp"].endswith("Z")
    for mention in mentions:
        assert mention in body["message"], (mention, body["message"])
    return body


LMSGATE = [sys.executable, "-m", "lmsgate.cli.main"]


def bootstrapped(url: str, attribute: str, **settings: Any) -> Any:
    """What a container bootstrapped on ``url`` with ``settings`` holds as ``attribute`` (its
    engine then disposed)."""
    from lmsgate.bootstrap import bootstrap
    from lmsgate.settings import Settings

    container = bootstrap(Settings(database_url=url, vault_key_file=shared_vault_key_file(), **settings))
    try:
        return getattr(container, attribute)
    finally:
        container.engine.dispose()


def alive(pid: int) -> bool:
    """Whether a process runs: a zombie is dead, only not yet collected."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:  # collected meanwhile
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(cwd: Path, env: dict[str, str], *args: str) -> Iterator[tuple[str, list[str]]]:
    """Run ``lmsgate serve`` on a free port in ``cwd``; yields (base URL, output lines holder).

    Inherited ``LMSGATE_*`` variables are dropped so the test controls the configuration.
    The server's output is appended to the list when it stops. It goes to a file meanwhile:
    a pipe nobody reads would fill up with access-log lines and stall the server.
    """
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    log = tempfile.TemporaryFile("w+", encoding="utf-8")
    proc = subprocess.Popen(
        [*LMSGATE, "serve", "--port", str(port), *args], cwd=cwd, env={**inherited, **env},
        stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    output: list[str] = []

    def logged() -> str:
        log.seek(0)
        return log.read()

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                if proc.poll() is not None:
                    raise AssertionError(logged() or "server died") from None
                time.sleep(0.1)
        else:
            raise AssertionError("server did not start within 30 s")
        yield base, output
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        output.append(logged())
        log.close()


_VAULT_DIR: str | None = None


def shared_vault_key_file() -> str:
    """One vault key file for every container a test process builds.

    Containers on the same database run delivery workers that pick up any account's
    deliveries; with different vault keys they could not open each other's credentials, as
    separate servers of one deployment, sharing a key, never are.
    """
    global _VAULT_DIR
    if _VAULT_DIR is None:
        import tempfile

        _VAULT_DIR = tempfile.mkdtemp(prefix="lmsgate-test-vault-")
    return f"{_VAULT_DIR}/vault.key"


@contextmanager
def apps_with_own_engines(db_url: str, count: int = 2, **settings: Any) -> Iterator[list[TestClient]]:
    """``count`` apps on the suite's database, each with an engine of its own (as processes
    have), called from one client address; ``settings`` for each app's ``Settings``. Each
    client's container is ``client.app.state.container``."""
    import secrets

    from lmsgate.api.app import create_app
    from lmsgate.bootstrap import bootstrap
    from lmsgate.settings import Settings

    address = f"198.51.100.{secrets.randbelow(250) + 1}"
    with ExitStack() as stack:
        clients = []
        for _ in range(count):
            c = bootstrap(Settings(database_url=db_url, vault_key_file=shared_vault_key_file(),
                                   delivery_in_process_worker=False, **settings))
            stack.callback(c.engine.dispose)
            clients.append(stack.enter_context(TestClient(create_app(c), raise_server_exceptions=False,
                                                          client=(address, 40000))))
        yield clients
