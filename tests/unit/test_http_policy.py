"""The pieces of the outbound HTTP policy that need no network: retry timing, the SSRF
classification, masking, the rate-limit buckets and the token cache."""

from __future__ import annotations

import ipaddress
import logging
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import anyio
import orjson
import pytest

from lmsgate.http import (
    AccountBuckets,
    AddressGuard,
    BlockedAddress,
    Redactor,
    RetryPolicy,
    TokenCache,
    classify,
    install_log_redaction,
    parse_retry_after,
    remember_secrets,
)

NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("7", 7.0), (" 120 ", 120.0), (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
     (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0), ("-5", None), ("soon", None), ("", None),
     (None, None), ("1.5", None)],
)
def test_retry_after_is_seconds_or_an_http_date(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base=0.5, cap=4.0)
    rng = random.Random(7)
    for n, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        for _ in range(50):
            wait = policy.backoff(n, rng)
            assert ceiling / 2 <= wait <= ceiling


@pytest.mark.parametrize(("status", "idempotent", "retried"), [
    (429, False, True), (503, False, True), (500, True, True), (500, False, False), (502, True, True),
    (504, True, True), (408, True, True), (400, True, False), (401, True, False), (404, True, False),
    (501, True, False),
])
def test_which_statuses_are_retried(status: int, idempotent: bool, retried: bool) -> None:
    assert RetryPolicy().retryable_status(status, idempotent) is retried


@pytest.mark.parametrize(("address", "reason"), [
    ("8.8.8.8", None), ("2606:4700:4700::1111", None),
    ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
    ("169.254.169.254", "metadata"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"), ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"), ("::ffff:10.0.0.1", "inside an IPv6"), ("2002:a00:1::", "inside an IPv6"),
])
def test_addresses_are_classified(address: str, reason: str | None) -> None:
    found = classify(ipaddress.ip_address(address))
    assert (found is None) if reason is None else (reason in found)


def test_the_allow_list_opens_only_its_networks() -> None:
    guard = AddressGuard.allowing(["127.0.0.1/32", "10.20.0.0/16"])
    guard.check_ip(ipaddress.ip_address("127.0.0.1"), "127.0.0.1")
    guard.check_ip(ipaddress.ip_address("10.20.3.4"), "lms.internal")
    for address in ("127.0.0.2", "10.21.0.1", "169.254.169.254"):
        with pytest.raises(BlockedAddress, match="LMSGATE_OUTBOUND_ALLOW_NETWORKS"):
            guard.check_ip(ipaddress.ip_address(address), address)
    with pytest.raises(ValueError, match="not a network"):
        AddressGuard.allowing(["nonsense"])


def test_literal_hosts_are_checked_without_dns() -> None:
    guard = AddressGuard()
    with pytest.raises(BlockedAddress, match="loopback"):
        anyio.run(guard.resolve, "[::1]", 80)
    assert anyio.run(guard.resolve, "93.184.216.34", 443) == "93.184.216.34"


def test_redaction_by_value_and_by_name() -> None:
    r = Redactor(["s3cr3t-value"])
    r.add_basic_pair("lrs-user", "lrs-pass")
    assert r.text("token s3cr3t-value here") == "token [REDACTED] here"
    assert r.text("a%20b s3cr3t-value") == "a%20b [REDACTED]"
    assert "bHJzLXVzZXI6bHJzLXBhc3M=" not in r.text("Basic bHJzLXVzZXI6bHJzLXBhc3M=")
    assert r.url("https://u:p@h.test/x?access_token=abc&q=1&k=s3cr3t-value") == \
        "https://[REDACTED]@h.test/x?access_token=[REDACTED]&q=1&k=[REDACTED]"
    assert r.headers([("Authorization", "Basic x"), ("X-Api-Key", "k"), ("Content-Type", "json"),
                      ("X-Echo", "lrs-pass")]) == {
        "authorization": "[REDACTED]", "x-api-key": "[REDACTED]", "content-type": "json", "x-echo": "[REDACTED]"}
    assert r.data({"password": "anything", "nested": [{"client_secret": "x", "note": "lrs-user did it"}],
                   "empty_token": None}) == {
        "password": "[REDACTED]", "nested": [{"client_secret": "[REDACTED]", "note": "[REDACTED] did it"}],
        "empty_token": None}


def test_masked_headers_are_remembered_until_a_secret_is_added() -> None:
    """Headers repeat from call to call, so each is masked once; a secret added later (a token
    obtained mid-session) must still be masked in a header seen before."""
    r = Redactor(["s3cr3t-value"])
    headers = [("X-Echo", "new-token-1234"), ("X-Other", "s3cr3t-value"), ("Cookie", "c")]
    first = r.headers(headers)
    assert first == {"x-echo": "new-token-1234", "x-other": "[REDACTED]", "cookie": "[REDACTED]"}
    assert r.headers(headers) == first
    r.add("new-token-1234")
    assert r.headers(headers)["x-echo"] == "[REDACTED]"


def test_passthrough_is_not_a_password() -> None:
    r = Redactor()
    assert r.data({"passthrough": {"team": "north"}, "pass": "x", "user_password": "y"}) == {
        "passthrough": {"team": "north"}, "pass": "[REDACTED]", "user_password": "[REDACTED]"}


@pytest.mark.parametrize("raw", [
    b'{"result": {"value": "Pass"}, "passthrough": {"a": [1, {"b": "c"}]}}',
    b'{"nested": [{"client_secret": "x"}]}',
    b'{"note": "the key is s3cr3t-value"}',
    b'{"s3cr3t-value": 1}',
    b'{"note": "s3cr3t\\u002dvalue"}',
    b'[{"token": ""}, "plain"]',
])
def test_leaves_alone_agrees_with_data(raw: bytes) -> None:
    """The shortcut the request log takes says "unchanged" only when masking changes nothing."""
    r = Redactor(["s3cr3t-value"])
    value = orjson.loads(raw)
    if r.leaves_alone(raw, value):
        assert r.data(value) == value
    else:
        assert raw != b'{"result": {"value": "Pass"}, "passthrough": {"a": [1, {"b": "c"}]}}'


def test_the_log_filter_masks_remembered_secrets(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    remember_secrets("very-private-value-42")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").info("request with %s in it", "very-private-value-42")
    assert "very-private-value-42" not in caplog.text and "[REDACTED]" in caplog.text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_buckets_allow_a_burst_then_pace() -> None:
    clock = Clock()
    buckets = AccountBuckets(clock)
    waits = [buckets.reserve("a", rate=2.0, capacity=3.0)[0] for _ in range(6)]
    assert waits == [0, 0, 0, 0.5, 1.0, 1.5]  # three at once, then one every half second
    assert buckets.reserve("b", rate=2.0, capacity=3.0)[0] == 0  # accounts do not share
    clock.now += 10
    assert buckets.reserve("a", rate=2.0, capacity=3.0)[0] == 0
    wait, bucket = buckets.reserve("c", rate=1.0, capacity=1.0)
    wait, bucket = buckets.reserve("c", rate=1.0, capacity=1.0)
    assert wait == 1.0
    buckets.give_back(bucket)
    assert buckets.reserve("c", rate=1.0, capacity=1.0)[0] == 1.0


def test_tokens_are_refreshed_before_they_expire() -> None:
    clock = Clock()
    cache = TokenCache(clock)
    cache.put(("k",), "tok", 3600)
    clock.now += 3600 - 61
    assert cache.get(("k",)) == "tok"
    clock.now += 2  # within the last 60 s: refresh
    assert cache.get(("k",)) is None
    cache.put(("k",), "short", 10)  # 10 % of a short lifetime, but at least 5 s
    clock.now += 4.9
    assert cache.get(("k",)) == "short"
    clock.now += 0.2
    assert cache.get(("k",)) is None
    cache.put(("k",), "t", None)  # no expires_in: assume 300 s
    cache.invalidate(("k",))
    assert cache.get(("k",)) is None
