"""A 201 is only sent for a completion that survives the process being killed right after.

A burst of concurrent posts runs against a real ``lmsgate serve``; the moment the last
response is in, the server gets SIGKILL (no shutdown, no flush). A new server on the same
database must then return every acknowledged completion.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support import LMSGATE, basic, free_port, shared_vault_key_file

KEY = "durability-key-0123456789"
ACCOUNT = "durability-account"
HEADERS = {"Authorization": basic(KEY), "x-account-id": ACCOUNT}


def _start(workdir: Path, database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMSGATE_")}
    env.update(LMSGATE_DATABASE_URL=database_url, LMSGATE_API_KEY=KEY, LMSGATE_ACCOUNT_ID=ACCOUNT,
               LMSGATE_RATE_LIMIT_PER_MINUTE="0", LMSGATE_VAULT_KEY_FILE=shared_vault_key_file())
    proc = subprocess.Popen([*LMSGATE, "serve", "--port", str(port)], cwd=workdir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=0.5).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("server did not start")


async def _burst(base: str, n: int, concurrency: int) -> list[str]:
    acknowledged: list[str] = []
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=HEADERS, limits=limits, timeout=30) as client:
        sem = asyncio.Semaphore(concurrency)

        async def post(i: int) -> None:
            async with sem:
                resp = await client.post(f"/unified/lms/users/learner-{i % 50}/completions",
                                         json={"learning_object_external_reference": f"lo-{i}",
                                               "completed_at": "2024-01-01T00:00:00Z"})
                if resp.status_code == 201:
                    acknowledged.append(resp.json()["data"]["id"])

        await asyncio.gather(*(post(i) for i in range(n)))
    return acknowledged


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_every_acknowledged_completion_survives_kill_9(tmp_path: Path, store: str,
                                                       request: pytest.FixtureRequest) -> None:
    url = f"sqlite:///{tmp_path}/durable.db" if store == "sqlite" else request.getfixturevalue("postgres_url")
    proc, base = _start(tmp_path, url)
    try:
        acknowledged = asyncio.run(_burst(base, n=600, concurrency=32))
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no graceful shutdown, right after the last 201
        proc.wait()
    assert len(acknowledged) == 600

    proc, base = _start(tmp_path, url)
    try:
        stored: set[str] = set()
        cursor = None
        with httpx.Client(base_url=base, headers=HEADERS) as client:
            while True:
                params = {"page_size": "1000", **({"next": cursor} if cursor else {})}
                page = client.get("/unified/lms/completions", params=params).json()
                stored |= {c["id"] for c in page["data"]}
                cursor = page["next"]
                if not cursor:
                    break
    finally:
        proc.terminate()
        proc.wait()
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged completions were lost"
