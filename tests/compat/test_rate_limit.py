"""The per-API-key rate limit (lmsgate.api.ratelimit), over HTTP against real servers.

``ratelimited_server`` allows 60 requests per minute per key. Each test issues its own keys
in that server's project, so the tests (and the SDK suite's 429 check) never share a bucket.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from lmsgate.api.ratelimit import TokenBuckets

LIMIT = 60


def headers(server: Any, key: str, **extra: str) -> dict[str, str]:
    return server.headers(key=key, **extra)


def test_a_key_over_its_allowance_gets_429_with_retry_after(ratelimited_server: Any) -> None:
    key, other = ratelimited_server.issue_key(), ratelimited_server.issue_key()
    with ratelimited_server.client() as http:
        statuses = [http.get("/unified/lms/users", headers=headers(ratelimited_server, key)).status_code
                    for _ in range(LIMIT + 5)]
        assert statuses[:LIMIT - 2] == [200] * (LIMIT - 2), "the whole minute's allowance may be used at once"
        assert statuses[-1] == 429
        refused = http.get("/unified/lms/users", headers=headers(ratelimited_server, key, Prefer="heartbeat"))
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["preference-applied"] == "heartbeat"
        retry_after = refused.headers["retry-after"]
        assert re.fullmatch(r"[1-9][0-9]*", retry_after), retry_after
        assert int(retry_after) <= 60 // LIMIT + 1
        body = refused.json()
        assert body["statusCode"] == 429
        assert f"{LIMIT} requests per minute" in body["message"]
        assert body["timestamp"].endswith("Z")
        # Another key of the same project has its own allowance.
        assert http.get("/unified/lms/users", headers=headers(ratelimited_server, other)).status_code == 200
        # Requests without credentials are not counted against anyone; they are refused as unauthenticated.
        anonymous = http.get("/unified/lms/users", headers={"x-account-id": ratelimited_server.account_id})
        assert anonymous.status_code == 401


def test_a_limit_of_zero_turns_the_limit_off(heartbeat_server: Any) -> None:
    with heartbeat_server.client() as http:
        statuses = {http.get("/unified/lms/users", headers=heartbeat_server.headers()).status_code
                    for _ in range(LIMIT + 20)}
    assert statuses == {200}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_arithmetic() -> None:
    clock = Clock()
    buckets = TokenBuckets(60, clock=clock)  # one token a second
    assert [buckets.take("k") for _ in range(60)] == [0.0] * 60
    assert buckets.take("k") == pytest.approx(1.0)
    clock.now += 0.25
    assert buckets.take("k") == pytest.approx(0.75), "a refused request takes no token"
    clock.now += 0.75
    assert buckets.take("k") == 0.0
    assert buckets.take("k") == pytest.approx(1.0)
    assert buckets.take("other") == 0.0, "keys do not share a bucket"
    clock.now += 3600
    assert [buckets.take("k") for _ in range(60)] == [0.0] * 60, "a bucket refills to its capacity, no more"
    assert buckets.take("k") > 0


def test_token_bucket_refuses_a_zero_limit() -> None:
    with pytest.raises(ValueError):
        TokenBuckets(0)
