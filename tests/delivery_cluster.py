"""Real lmsgate processes for the delivery tests and the benchmark: an API process, and on
PostgreSQL ``lmsgate worker`` processes, delivering to an :class:`~simulators.lrs.LrsSimulator`.

Imported as ``delivery_cluster`` (``tests/`` is on the path; ``bench/`` adds it too).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from simulators.lrs import LrsSimulator

LMSGATE = [sys.executable, "-m", "lmsgate.cli.main"]

FAST_RETRIES = {
    # Short waits so the fault tests finish in seconds; the rules are the production ones.
    "LMSGATE_DELIVERY_BACKOFF_BASE_SECONDS": "0.2",
    "LMSGATE_DELIVERY_PAUSE_CAP_SECONDS": "1",
    "LMSGATE_WORKER_HEARTBEAT_SECONDS": "1",
    "LMSGATE_WORKER_STALLED_AFTER_SECONDS": "4",
    "LMSGATE_DELIVERY_ATTEMPT_SECONDS": "5",
    "LMSGATE_OUTBOUND_CONNECT_TIMEOUT_SECONDS": "2",
}


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Answer:
    """An HTTP answer from :meth:`Cluster.post_many`: status, headers (lower-case names), body."""

    status_code: int
    headers: dict[str, str]
    content: bytes
    at: float = 0.0
    """When the answer arrived (``time.monotonic()``)."""

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return json.loads(self.content)


@dataclass
class Cluster:
    base: str
    api_key: str
    sim: LrsSimulator
    env: dict[str, str]
    cwd: Path
    api: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": basic(self.api_key)}

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = open(self.cwd / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([*LMSGATE, "worker"], cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return httpx.request(method, self.base + path, headers=headers, timeout=60, **kw)

    def link_xapi(self, username: str) -> str:
        resp = self.call("POST", "/accounts", json={
            "provider": "xapi", "origin_owner_id": username, "origin_owner_name": f"Customer {username}",
            "setup_information": {"endpoint": self.sim.endpoint, "activity_base_iri": "https://lms.example.com/a/",
                                  "actor_homepage": "https://lms.example.com"},
            "credentials": {"username": username, "password": "pw-" + secrets.token_hex(8)}})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def set_delivery(self, account_id: str, **settings: Any) -> None:
        resp = self.call("PATCH", f"/accounts/{account_id}/delivery", json=settings)
        assert resp.status_code == 200, resp.text

    def post_many(self, writes: list[tuple[str, str, dict[str, Any]]], *, headers: dict[str, str] | None = None,
                  concurrency: int = 32) -> list[Answer]:
        """POST completions ``(account, user, body)`` over ``concurrency`` keep-alive connections;
        answers in order. A bare HTTP/1.1 client: httpx costs the test process more CPU per
        request than the server spends answering it, and would measure itself."""
        return asyncio.run(self._post_many(writes, headers or {}, concurrency))

    async def _post_many(self, writes: list[tuple[str, str, dict[str, Any]]], headers: dict[str, str],
                         concurrency: int) -> list[Answer]:
        host, port = self.base.removeprefix("http://").split(":")
        answers: list[Answer | None] = [None] * len(writes)
        todo = iter(range(len(writes)))
        fixed = "".join(f"{k}: {v}\r\n" for k, v in {**self.headers, **headers}.items())

        async def connection() -> None:
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                for i in todo:
                    account, user, body = writes[i]
                    payload = json.dumps(body).encode()
                    writer.write((f"POST /unified/lms/users/{user}/completions HTTP/1.1\r\nHost: {host}\r\n"
                                  f"{fixed}x-account-id: {account}\r\ncontent-type: application/json\r\n"
                                  f"content-length: {len(payload)}\r\n\r\n").encode() + payload)
                    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                    got = {}
                    for line in head[1:]:
                        if ":" in line:
                            name, value = line.split(":", 1)
                            got[name.strip().lower()] = value.strip()
                    content = await reader.readexactly(int(got.get("content-length", 0)))
                    answers[i] = Answer(int(head[0].split(" ")[1]), got, content, time.monotonic())
            finally:
                writer.close()

        await asyncio.gather(*(connection() for _ in range(concurrency)))
        return [a for a in answers if a is not None]

    def deliveries(self, **params: Any) -> list[dict[str, Any]]:
        """Every delivery matching ``params``, following ``next``."""
        out: list[dict[str, Any]] = []
        query = {"page_size": "1000", **params}
        while True:
            resp = self.call("GET", "/deliveries", params=query)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            out += body["data"]
            if not body["next"]:
                return out
            query = {**query, "next": body["next"]}

    def stop(self) -> None:
        for proc in [self.api, *self.workers]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [self.api, *self.workers]:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> float:
    """Wait for ``check()``; returns the seconds it took. Fails with ``what`` on timeout."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


@contextmanager
def cluster(cwd: Path, database_url: str, sim: LrsSimulator, *, workers: int = 2,
            extra_env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """An API process (on PostgreSQL without its own worker, plus ``workers`` worker processes;
    on SQLite with its embedded worker) on a free port."""
    api_key = "lmsg_" + secrets.token_urlsafe(24)
    postgres = database_url.startswith("postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    env.update({
        "LMSGATE_DATABASE_URL": database_url, "LMSGATE_API_KEY": api_key,
        "LMSGATE_VAULT_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "LMSGATE_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32", "LMSGATE_RATE_LIMIT_PER_MINUTE": "0",
        "LMSGATE_AUTH_FAILURES_PER_MINUTE": "0", "LMSGATE_REQUEST_LOGS": "false", "LMSGATE_LOG_LEVEL": "warning",
        "LMSGATE_DELIVERY_IN_PROCESS_WORKER": "false" if postgres and workers else "true",
        **FAST_RETRIES, **(extra_env or {}),
    })
    port = _free_port()
    log = open(cwd / "api.log", "wb")  # noqa: SIM115
    api = subprocess.Popen([*LMSGATE, "serve", "--port", str(port)], cwd=cwd, env=env, stdout=log,
                           stderr=subprocess.STDOUT)
    c = Cluster(base=f"http://127.0.0.1:{port}", api_key=api_key, sim=sim, env=env, cwd=cwd, api=api)
    try:
        def up() -> bool:
            if api.poll() is not None:
                raise AssertionError((cwd / "api.log").read_text())
            try:
                return httpx.get(f"{c.base}/health", timeout=0.5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 60, "the API process to start")
        if postgres:
            for _ in range(workers):
                c.start_worker()
        yield c
    finally:
        c.stop()
