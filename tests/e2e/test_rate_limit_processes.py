"""The per-key rate limit holds across two ``lmsgate serve`` processes on one PostgreSQL.

Two servers on different ports share the suite's PostgreSQL database, as two API processes
behind a load balancer would. One key sends 1,200 requests, spread over both, as fast as it
can. With the default limit (1,000 a minute, shared through the database) about 1,000 pass,
plus what refills while the test runs (1,000/60 a second), and the rest get 429. The same run
with ``LMSGATE_RATE_LIMIT_STORE=memory`` lets each process allow the limit on its own, which is
what this test exists to rule out. The counts are printed (``pytest -s``).
"""

from __future__ import annotations

import math
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from support import basic, serving, shared_vault_key_file

pytestmark = pytest.mark.postgres


def _blast(bases: list[str], headers: dict[str, str], total: int) -> tuple[Counter[int], float, set[str]]:
    def worker(n: int) -> list[tuple[int, str]]:
        out = []
        with httpx.Client(timeout=30) as http:
            for i in range(n):
                resp = http.get(f"{bases[i % len(bases)]}/unified/lms/users?page_size=1", headers=headers)
                out.append((resp.status_code, resp.headers.get("retry-after", "")))
        return out

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = [r for chunk in pool.map(worker, [total // 8] * 8) for r in chunk]
    elapsed = time.monotonic() - started
    return Counter(s for s, _ in results), elapsed, {ra for s, ra in results if s == 429}


@contextmanager
def _servers(tmp: Path, database_url: str, key: str, account: str, count: int,
             **extra: str) -> Iterator[list[str]]:
    """``count`` servers on one database; their logs are printed when they stop."""
    env = {"LMSGATE_DATABASE_URL": database_url, "LMSGATE_API_KEY": key, "LMSGATE_ACCOUNT_ID": account,
           # on the suite's database, which holds credentials sealed with the suite's vault key: a
           # key of their own would be refused (a missing key file beside sealed credentials)
           "LMSGATE_LOG_LEVEL": "warning", "LMSGATE_VAULT_KEY_FILE": shared_vault_key_file(),
           # leave deliveries to the suite's apps
           "LMSGATE_DELIVERY_IN_PROCESS_WORKER": "false", **extra}
    outputs: list[list[str]] = []
    try:
        with ExitStack() as stack:
            bases = []
            for i in range(count):  # one after the other: the first creates the key and the account
                cwd = tmp / f"server-{i}"
                cwd.mkdir(exist_ok=True)
                base, output = stack.enter_context(serving(cwd, env))
                bases.append(base)
                outputs.append(output)
            yield bases
    finally:
        for i, output in enumerate(outputs):
            errors = [line for text in output for line in text.splitlines() if '"level":"error"' in line]
            if errors:
                print(f"server {i} logged errors:\n" + "\n".join(errors[:5]))


def test_two_processes_on_one_postgresql_share_the_default_limit(postgres_url: str, tmp_path: Path) -> None:
    key, account = f"lmsg_e2e_{secrets.token_hex(12)}", f"rl-{secrets.token_hex(4)}"
    headers = {"Authorization": basic(key), "x-account-id": account}
    with ExitStack() as stack:
        bases = stack.enter_context(_servers(tmp_path, postgres_url, key, account, 2))
        assert len(set(bases)) == 2
        counts, elapsed, retry_afters = _blast(bases, headers, 1200)
    refill = math.ceil(elapsed * 1000 / 60)
    print(f"\n2 processes on PostgreSQL, limit 1000/min, 1200 requests in {elapsed:.1f} s: "
          f"{counts[200]} × 200, {counts[429]} × 429 (refill allowance ≤ {refill}); Retry-After {sorted(retry_afters)}")
    assert set(counts) <= {200, 429}, counts
    assert 1000 <= counts[200] <= 1000 + refill + 5, counts
    assert counts[429] == 1200 - counts[200]
    assert retry_afters == {"1"}, "at 1000/min a token comes back within a second"


def test_in_memory_limits_would_not_hold(postgres_url: str, tmp_path: Path) -> None:
    """The contrast: kept in process memory, each of two processes allows the full 60/min."""
    key, account = f"lmsg_e2e_{secrets.token_hex(12)}", f"rl-{secrets.token_hex(4)}"
    headers = {"Authorization": basic(key), "x-account-id": account}
    with ExitStack() as stack:
        bases = stack.enter_context(_servers(tmp_path, postgres_url, key, account, 2,
                                                LMSGATE_RATE_LIMIT_PER_MINUTE="60",
                                                LMSGATE_RATE_LIMIT_STORE="memory"))
        memory, elapsed, _ = _blast(bases, headers, 160)
    print(f"\n2 processes, memory store, limit 60/min, 160 requests in {elapsed:.1f} s: "
          f"{memory[200]} × 200, {memory[429]} × 429")
    assert memory[200] >= 120 - 1, memory
