"""Rate limits kept in the database (lmsgate.store.rate_limits), on SQLite and PostgreSQL.

Several apps built on one database stand for several API processes: each has its own engine
and its own middleware, and only the ``rate_limit_buckets`` table is shared. The same with
two real ``lmsgate serve`` processes is in ``tests/e2e/test_rate_limit_processes.py``.
"""

from __future__ import annotations

import secrets
import threading

import pytest
from fastapi.testclient import TestClient

from lmsgate.bootstrap import Container
from lmsgate.api.ratelimit import RecentlyClear
from lmsgate.store.rate_limits import SqlTokenBuckets
from support import apps_with_own_engines, assert_stackone_error, basic


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_database_bucket_arithmetic(container: Container) -> None:
    clock = Clock()
    buckets = SqlTokenBuckets(container.engine, capacity=60, per_second=1.0,
                              namespace=f"t{secrets.token_hex(4)}", clock=clock)
    assert [buckets.take("k") for _ in range(60)] == [0.0] * 60
    assert buckets.take("k") == pytest.approx(1.0)
    assert buckets.peek("k") == pytest.approx(1.0)
    clock.now += 0.25
    assert buckets.take("k") == pytest.approx(0.75), "a refused request takes no token"
    clock.now += 0.75
    assert buckets.peek("k") == 0.0
    assert buckets.take("k") == 0.0
    assert buckets.take("k") == pytest.approx(1.0)
    assert buckets.take("other") == 0.0, "keys do not share a bucket"
    clock.now += 3600
    assert [buckets.take("k") for _ in range(60)] == [0.0] * 60, "a bucket refills to its capacity, no more"
    assert buckets.take("k") > 0
    clock.now -= 30
    assert buckets.take("k") > 0, "a clock running behind refills nothing"


def test_a_full_address_bucket_is_not_looked_up_again_for_a_second(container: Container) -> None:
    """RecentlyClear keeps the failed-authentication check off the database on the hot path,
    and sees failures counted by another process at most ``ttl`` seconds late."""
    clock = Clock()
    namespace = f"address-{secrets.token_hex(4)}"
    shared = SqlTokenBuckets(container.engine, capacity=2, per_second=0.001, namespace=namespace, clock=clock)
    here = RecentlyClear(shared, ttl=1.0, clock=clock)
    other = SqlTokenBuckets(container.engine, capacity=2, per_second=0.001, namespace=namespace, clock=clock)
    assert here.recent_peek("198.51.100.7") is None  # never looked at: ask the database
    assert here.peek("198.51.100.7") == 0.0
    assert here.recent_peek("198.51.100.7") == 0.0  # remembered as full
    other.take("198.51.100.7")
    other.take("198.51.100.7")  # another process used up the allowance
    assert here.recent_peek("198.51.100.7") == 0.0  # not seen yet...
    clock.now += 1.0
    assert here.recent_peek("198.51.100.7") is None  # ...but at most a second later
    assert here.peek("198.51.100.7") > 0
    assert here.recent_peek("198.51.100.7") is None
    # A failure here forgets the answer at once.
    clock.now += 10_000
    assert here.peek("203.0.113.5") == 0.0
    here.take("203.0.113.5")
    assert here.recent_peek("203.0.113.5") is None


def test_a_process_whose_clock_is_behind_does_not_turn_back_a_buckets_time(container: Container) -> None:
    """Found by the two-process test: a take that read the clock before waiting for the row
    lock wrote an older time, so the next take counted part of the refill twice."""
    namespace = f"b{secrets.token_hex(4)}"
    ahead, behind = Clock(), Clock()
    behind.now = ahead.now - 0.5
    a = SqlTokenBuckets(container.engine, capacity=3, per_second=1.0, namespace=namespace, clock=ahead)
    b = SqlTokenBuckets(container.engine, capacity=3, per_second=1.0, namespace=namespace, clock=behind)
    assert [a.take("k"), a.take("k"), b.take("k")] == [0.0, 0.0, 0.0]
    ahead.now += 0.6
    assert a.take("k") == pytest.approx(0.4), "0.6 s have passed since the bucket's last count, not 1.1 s"


def test_concurrent_takes_never_hand_out_more_than_the_capacity(container: Container) -> None:
    clock = Clock()  # frozen: nothing refills while the threads run
    namespace = f"c{secrets.token_hex(4)}"
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        own = SqlTokenBuckets(container.engine, capacity=50, per_second=0.001, namespace=namespace, clock=clock)
        mine = sum(1 for _ in range(20) if own.take("shared") == 0.0)
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 50, granted


def test_two_apps_on_one_database_share_a_keys_allowance(container: Container, db_url: str) -> None:
    project = container.tenancy.create_project("rate-shared")
    key = container.tenancy.issue_key(project).secret
    account = container.tenancy.create_account(project, "local").id
    headers = {"Authorization": basic(key), "x-account-id": account}
    with apps_with_own_engines(db_url, 2, rate_limit_per_minute=30, rate_limit_store="database") as (a, b):
        statuses = [(a if i % 2 else b).get("/unified/lms/users", headers=headers).status_code for i in range(40)]
        refused = b.get("/unified/lms/users", headers=headers)
    assert statuses.count(200) in (30, 31), statuses  # 30, plus at most one token refilled meanwhile
    assert statuses.count(429) == 40 - statuses.count(200)
    assert_stackone_error(refused, 429, "30 requests per minute")
    assert int(refused.headers["retry-after"]) >= 1


def test_failed_authentications_are_limited_per_address(container: Container, db_url: str) -> None:
    project = container.tenancy.create_project("auth-failures")
    key = container.tenancy.issue_key(project).secret
    account = container.tenancy.create_account(project, "local").id
    good = {"Authorization": basic(key), "x-account-id": account}
    with apps_with_own_engines(db_url, 2, auth_failures_per_minute=5, rate_limit_store="database") as (a, b):
        # Requests without credentials are refused, but do not count as guesses.
        assert {a.get("/unified/lms/users").status_code for _ in range(10)} == {401}
        bad = [basic(f"lmsg_guess_{secrets.token_hex(8)}") for _ in range(5)]
        first = [(a if i % 2 else b).get("/unified/lms/users", headers={"Authorization": h}).status_code
                 for i, h in enumerate(bad)]
        assert first == [401] * 5
        # Both apps now refuse that address, whatever it sends, a valid key included.
        for client in (a, b):
            refused = client.get("/unified/lms/users", headers=good)
            body = assert_stackone_error(refused, 429, "failed to authenticate")
            assert "5 times a minute" in body["message"]
            assert 1 <= int(refused.headers["retry-after"]) <= 12
        # Another address is not affected.
        with TestClient(a.app, client=("203.0.113.9", 1234)) as elsewhere:
            assert elsewhere.get("/unified/lms/users", headers=good).status_code == 200
