"""Reliable write-back under faults, with real processes: an API process and two ``lmsgate worker``
processes on PostgreSQL (and ``lmsgate serve`` alone on SQLite), delivering completions through
the real ``xapi`` connector to :class:`~simulators.lrs.LrsSimulator`, which counts every
statement it accepts.

The waits are shortened (``delivery_cluster.FAST_RETRIES``); the rules are the production ones.
"""

from __future__ import annotations

import dataclasses
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import _pg_database
from delivery_cluster import LMSGATE, Cluster, _free_port, cluster, wait_until
from simulators.lrs import LrsSimulator

ASYNC = {"Prefer": "respond-async"}
CONCURRENCY = 8  # the default per-account limit (LMSGATE_DELIVERY_ACCOUNT_CONCURRENCY)
BATCH = 25  # the default statements per xAPI request (LMSGATE_DELIVERY_BATCH_SIZE)


def completion(ref: str, when: str = "2024-03-01T10:00:00Z") -> dict[str, Any]:
    return {"learning_object_external_reference": ref, "completed_at": when, "time_spent": "PT30M",
            "result": {"value": "Pass"}, "score": {"percentage": 90}}


def identity(statement: dict[str, Any]) -> tuple[str, str]:
    """A completion's identity at the provider: the learner and the learning object."""
    return statement["actor"]["account"]["name"], statement["object"]["id"].rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def sim() -> Iterator[LrsSimulator]:
    with LrsSimulator() as s:
        yield s


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory, sim: LrsSimulator) -> Iterator[Cluster]:
    for url in _pg_database():
        with cluster(tmp_path_factory.mktemp("pg-cluster"), url, sim, workers=2) as c:
            yield c


def _statements_of(sim: LrsSimulator, users: set[str]) -> dict[tuple[str, str], int]:
    """Arrivals per completion identity, for the given learners only."""
    with sim.lock:
        return {identity(st): sim.accepted[sid] for sid, st in sim.stored.items()
                if st["actor"]["account"]["name"] in users}


def _open(c: Cluster, account_ids: list[str]) -> list[dict[str, Any]]:
    return [d for status in ("pending", "delivering") for a in account_ids
            for d in c.deliveries(status=status, account_id=a)]


def test_provider_outage_every_completion_arrives_exactly_once(pg: Cluster, sim: LrsSimulator) -> None:
    sim.set_mode("dead")
    accounts = [pg.link_xapi(f"outage-{i}") for i in range(4)]
    writes = [(accounts[i % 4], f"out-learner-{i}", completion(f"course-{i % 50}")) for i in range(10_000)]
    started = time.monotonic()
    answers = pg.post_many(writes, headers=ASYNC)
    posted = time.monotonic() - started
    assert [a.status_code for a in answers] == [202] * len(writes), next(a.text for a in answers
                                                                          if a.status_code != 202)
    assert all(a.headers["location"].startswith("/deliveries/") for a in answers)
    assert all(a.headers["preference-applied"] == "respond-async" for a in answers)
    time.sleep(2.0)  # the workers meet a dead provider and back off
    failed_meanwhile = [d for a in accounts for d in pg.deliveries(account_id=a) if d["attempt_count"] > 0]
    assert failed_meanwhile, "no delivery was attempted while the provider was down"
    assert sim.delivered_count() == 0 or all(v == 1 for v in sim.accepted.values())
    sim.set_mode("healthy")

    users = {f"out-learner-{i}" for i in range(10_000)}
    took = wait_until(lambda: len(_statements_of(sim, users)) >= 10_000, 150, "10,000 statements at the provider")
    arrivals = _statements_of(sim, users)
    expected = {(f"out-learner-{i}", f"course-{i % 50}") for i in range(10_000)}
    assert set(arrivals) == expected
    assert set(arrivals.values()) == {1}, "a completion arrived more than once"
    wait_until(lambda: not _open(pg, accounts), 30, "every delivery to be closed")
    assert pg.deliveries(status="dead") == [], "the dead-letter list is not empty"
    for i in range(4):  # the per-account concurrency limit held, across both workers
        assert sim.max_in_flight[f"outage-{i}"] <= CONCURRENCY
    print(f"\n10,000 async posts in {posted:.1f} s; delivered {took:.1f} s after the provider came back; "
          f"{len(failed_meanwhile)} deliveries had failed attempts during the outage")


def test_worker_crash_loses_and_duplicates_nothing(pg: Cluster, sim: LrsSimulator) -> None:
    sim.latency = 0.02
    try:
        accounts = [pg.link_xapi(f"crash-{i}") for i in range(4)]
        for account in accounts:  # 4 calls/s of up to 25 statements: the batch takes seconds, not one
            pg.set_delivery(account, max_requests_per_second=4)
        n = 2000
        writes = [(accounts[i % 4], f"crash-learner-{i}", completion("course-x")) for i in range(n)]
        users = {w[1] for w in writes}
        answers = pg.post_many(writes, headers=ASYNC)
        assert {a.status_code for a in answers} == {202}
        wait_until(lambda: len(_statements_of(sim, users)) >= n // 5, 60, "the batch to be under way")
        victim = pg.workers[0]
        pg.kill(victim)  # kill -9, mid-batch
        at_kill = len(_statements_of(sim, users))
        assert at_kill < n, "the batch finished before the kill; nothing was tested"
        pg.start_worker()
        wait_until(lambda: len(_statements_of(sim, users)) >= n, 120, "every statement after the crash")
        wait_until(lambda: not _open(pg, accounts), 60, "every delivery to be closed")
    finally:
        sim.latency = 0.0
    arrivals = _statements_of(sim, users)
    assert set(arrivals) == {(u, "course-x") for u in users}, "a completion was lost"
    delivered = [d for a in accounts for d in pg.deliveries(account_id=a)]
    assert len(delivered) == n and {d["status"] for d in delivered} == {"delivered"}
    # At least once: what the dead worker had sent but not yet recorded is sent again. The provider
    # keeps one statement per completion (fixed statement ids); the repeats are bounded by what
    # one worker can have in flight: its accounts' rounds (the concurrency limit × a statement
    # batch each).
    resent = sum(v - 1 for v in arrivals.values())
    assert resent <= len(accounts) * CONCURRENCY * BATCH
    print(f"\nkilled a worker with {at_kill}/{n} delivered; {resent} statements were sent twice "
          "(in flight at the kill), none stored twice")


def test_permanent_rejection_dead_letters_exactly_those(pg: Cluster, sim: LrsSimulator) -> None:
    account = pg.link_xapi("reject-0")
    refs = [f"rej-course-{i}" for i in range(200)]
    bad = {r for i, r in enumerate(refs) if i % 10 == 3}
    sim.reject |= bad
    answers = pg.post_many([(account, f"rej-learner-{i}", completion(r)) for i, r in enumerate(refs)],
                           headers=ASYNC)
    assert {a.status_code for a in answers} == {202}
    try:
        wait_until(lambda: not _open(pg, [account]), 60, "every delivery to be delivered or dead")
        dead = pg.deliveries(status="dead", account_id=account)
        assert {d["request"]["body"]["learning_object_external_reference"] for d in dead} == bad
        one = pg.call("GET", f"/deliveries/{dead[0]['id']}").json()["data"]
        assert one["attempt_count"] == 1, "a permanent rejection is not retried"
        [attempt] = one["attempts"]
        assert attempt["outcome"] == "dead" and attempt["status"] == 400
        provider = attempt["error"]["provider_errors"][0]
        assert provider["status"] == 400 and "is not in the catalogue" in provider["raw"]["error"]
        assert "pw-" not in str(one), "a credential leaked into the delivery"
        assert len(pg.deliveries(status="delivered", account_id=account)) == len(refs) - len(bad)
    finally:
        sim.reject -= bad  # the provider is "fixed"
    resp = pg.call("POST", "/deliveries/retry", json={"account_id": account})
    assert resp.status_code == 200 and resp.json()["data"]["retried"] == len(bad), resp.text
    wait_until(lambda: not _open(pg, [account]), 60, "the retried deliveries")
    assert pg.deliveries(status="dead", account_id=account) == []
    users = {f"rej-learner-{i}" for i in range(200)}
    assert len(_statements_of(sim, users)) == 200


def test_idempotency_concurrent_double_submit(pg: Cluster, sim: LrsSimulator) -> None:
    account = pg.link_xapi("idem-0")
    key = f'"{secrets.token_hex(8)}"'
    body = completion("idem-course")
    headers = {**ASYNC, "Idempotency-Key": key}
    answers = pg.post_many([(account, "idem-learner", body)] * 12, headers=headers, concurrency=12)
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {202, 409}, statuses
    firsts = [a for a in answers if a.status_code == 202 and "idempotent-replayed" not in a.headers]
    assert len(firsts) == 1, "more than one request ran"
    assert len(pg.deliveries(account_id=account)) == 1, "the double submit created two deliveries"
    wait_until(lambda: not _open(pg, [account]), 30, "the delivery")
    replay = pg.call("POST", "/unified/lms/users/idem-learner/completions", json=body,
                     headers={**headers, "x-account-id": account})
    assert replay.status_code == 202 and replay.headers["idempotent-replayed"] == "true"
    assert replay.content == firsts[0].content
    assert replay.headers["location"] == firsts[0].headers["location"]
    other = pg.call("POST", "/unified/lms/users/idem-learner/completions", json={**body, "time_spent": "PT31M"},
                    headers={**headers, "x-account-id": account})
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["message"]
    assert len(_statements_of(sim, {"idem-learner"})) == 1


def test_embedded_mode_outage_on_sqlite(tmp_path: Path) -> None:
    """``lmsgate serve`` alone on SQLite: its in-process worker rides out an outage too."""
    with LrsSimulator() as sim, cluster(tmp_path, f"sqlite:///{tmp_path / 'lmsgate.db'}", sim, workers=0) as c:
        sim.set_mode("500")
        account = c.link_xapi("embedded-0")
        n = 1500
        answers = c.post_many([(account, f"emb-{i}", completion("emb-course")) for i in range(n)], headers=ASYNC)
        assert {a.status_code for a in answers} == {202}
        wait_until(lambda: any(d["attempt_count"] for d in c.deliveries(account_id=account, page_size="50")),
                   20, "a failed attempt")
        sim.set_mode("429")
        time.sleep(1.0)
        sim.set_mode("healthy")
        wait_until(lambda: sim.delivered_count() >= n, 90, "every statement")
        assert set(sim.accepted.values()) == {1}
        wait_until(lambda: not _open(c, [account]), 30, "every delivery to be closed")
        assert c.deliveries(status="dead") == []
        assert sim.max_in_flight["embedded-0"] <= CONCURRENCY
        assert httpx.get(f"{c.base}/health").status_code == 200


def _second_server(c: Cluster) -> Cluster:
    """Another ``lmsgate serve`` on the same database as ``c``'s, on a port of its own."""
    port = _free_port()
    log = open(c.cwd / "api-2.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([*LMSGATE, "serve", "--port", str(port)], cwd=c.cwd, env=c.env, stdout=log,
                            stderr=subprocess.STDOUT)
    other = dataclasses.replace(c, base=f"http://127.0.0.1:{port}", api=proc, workers=[])

    def up() -> bool:
        assert proc.poll() is None, (c.cwd / "api-2.log").read_text()
        try:
            return httpx.get(f"{other.base}/health", timeout=0.5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, 60, "the second API process to start")
    return other


def test_two_servers_on_one_sqlite_file_send_each_delivery_once(tmp_path: Path) -> None:
    """Two ``lmsgate serve`` on one SQLite file: one sends, the other leaves it to it, and takes
    over when it dies.

    Two drainers of one database sent a fifth of 2,000 completions twice: each put the other's
    deliveries in flight back to pending, taking them for a dead worker's."""
    with LrsSimulator(latency=1.0) as sim, \
            cluster(tmp_path, f"sqlite:///{tmp_path / 'lmsgate.db'}", sim, workers=0) as first:
        account = first.link_xapi("two-servers-0")
        second = _second_server(first)
        try:
            n = 2000  # half through each server; with 1 s per provider call, many are in flight at once
            writes = [(account, f"two-{i}", completion("two-course")) for i in range(n)]
            for server, part in ((first, writes[::2]), (second, writes[1::2])):
                assert {a.status_code for a in server.post_many(part, headers=ASYNC)} == {202}
            wait_until(lambda: sim.delivered_count() >= n, 90, "every statement")
            wait_until(lambda: not _open(first, [account]), 30, "every delivery to be closed")
            assert set(sim.accepted.values()) == {1}
            assert sim.max_in_flight["two-servers-0"] <= CONCURRENCY  # one drainer's limit, not two
            assert "another lmsgate process is sending the deliveries" in (tmp_path / "api-2.log").read_text()

            first.kill(first.api)  # kill -9: the lock goes with the process
            more = [(account, f"after-{i}", completion("two-course")) for i in range(100)]
            assert {a.status_code for a in second.post_many(more, headers=ASYNC)} == {202}
            wait_until(lambda: sim.delivered_count() >= n + 100, 60, "the second server to take over")
            assert set(sim.accepted.values()) == {1}
            assert "now sends the deliveries" in (tmp_path / "api-2.log").read_text()
        finally:
            second.stop()
