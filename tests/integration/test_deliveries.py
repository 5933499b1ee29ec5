"""Prefer: respond-async, the Delivery API, fallback_to_async and Idempotency-Key, in process
(SQLite: the embedded runner; PostgreSQL: a procrastinate worker inside the app)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import make_tenant
from linking import completion, link, on_account, xapi_setup
from lmsgate.api.app import create_app
from lmsgate.api.idempotency import parse_key
from lmsgate.bootstrap import Container, bootstrap
from lmsgate.errors import BadRequest
from lmsgate.settings import Settings
from simulators.lrs import LrsSimulator
from support import shared_vault_key_file, SEED_COMPLETION, Tenant, assert_stackone_error

ASYNC = {"Prefer": "respond-async"}


def settle(t: Tenant, location: str, timeout: float = 20.0) -> dict[str, Any]:
    """Follow a delivery until it is delivered or dead."""
    deadline = time.monotonic() + timeout
    while True:
        body = t.get(location).json()["data"]
        if body["status"] in ("delivered", "dead") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_respond_async_answers_202_and_delivers(any_path_tenant: Tenant) -> None:
    t = any_path_tenant
    resp = t.post("/unified/lms/users/learner-9/completions", json=SEED_COMPLETION, headers=ASYNC)
    assert resp.status_code == 202, resp.text
    assert resp.headers["preference-applied"] == "respond-async"
    location = resp.headers["location"]
    body = resp.json()
    assert body["statusCode"] == 202 and location == f"/deliveries/{body['data']['id']}"
    assert body["data"]["status"] in ("pending", "delivering", "delivered")
    done = settle(t, location)
    assert done["status"] == "delivered" and done["attempt_count"] == 1
    [attempt] = done["attempts"]
    assert attempt["outcome"] == "delivered" and attempt["status"] == 201 and attempt["error"] is None
    record = t.get(f"/unified/lms/users/learner-9/completions/{done['result']['id']}")
    assert record.status_code == 200 and record.json()["data"]["time_spent"] == "PT1H30M45S"


def test_respond_async_and_heartbeat_together(tenant: Tenant) -> None:
    resp = tenant.post("/unified/lms/users/learner-9/completions", json=SEED_COMPLETION,
                       headers={"Prefer": "respond-async, heartbeat"})
    assert resp.status_code == 202, resp.text
    applied = {p.strip() for p in resp.headers["preference-applied"].split(",")}
    assert applied == {"respond-async", "heartbeat"}
    two_headers = [*tenant.headers.items(), ("Prefer", "heartbeat"), ("Prefer", "respond-async")]
    resp = tenant.client.post("/unified/lms/users/learner-9/completions", json=SEED_COMPLETION,
                              headers=two_headers)
    assert resp.status_code == 202 and "respond-async" in resp.headers["preference-applied"]


def test_reads_and_bad_bodies_ignore_respond_async(tenant: Tenant) -> None:
    resp = tenant.get("/unified/lms/completions", headers=ASYNC)
    assert resp.status_code == 200 and "preference-applied" not in resp.headers
    bad = tenant.post("/unified/lms/users/u/completions", json={**SEED_COMPLETION, "time_spent": "PT1X"},
                      headers=ASYNC)
    assert_stackone_error(bad, 400, "time_spent")
    assert tenant.get("/deliveries").json()["data"] == []


def test_every_write_can_be_async(tenant: Tenant) -> None:
    writes = [
        ("PUT", "/unified/lms/content", {"external_reference": "c-1", "title": "Content one"}),
        ("PATCH", "/unified/lms/content/no-such-id", {"title": "nothing to update"}),
        ("PUT", "/unified/lms/courses", {"external_reference": "course-1", "title": "Course"}),
        ("PUT", "/unified/lms/users/u-1", {"name": "Ada"}),
        ("POST", "/unified/lms/users/u-1/assignments", {"learning_object_external_reference": "c-1"}),
        ("DELETE", "/unified/lms/users/u-1/completions/no-such-completion", None),
    ]
    outcomes = {}
    for method, path, body in writes:
        resp = tenant.request(method, path, json=body, headers=ASYNC)
        assert resp.status_code == 202, (method, path, resp.text)
        outcomes[(method, path)] = settle(tenant, resp.headers["location"])
    assert outcomes[("PUT", "/unified/lms/content")]["status"] == "delivered"
    assert outcomes[("PUT", "/unified/lms/users/u-1")]["status"] == "delivered"
    # The embedded LMS answers 404 for a record it does not have: permanent, dead-lettered at once.
    dead = outcomes[("PATCH", "/unified/lms/content/no-such-id")]
    assert dead["status"] == "dead" and dead["attempt_count"] == 1
    assert dead["last_error"]["status"] == 404 and dead["attempts"][0]["outcome"] == "dead"
    assert outcomes[("DELETE", "/unified/lms/users/u-1/completions/no-such-completion")]["status"] == "dead"
    dead_list = tenant.get("/deliveries", params={"status": "dead"}).json()["data"]
    assert {d["id"] for d in dead_list} == {dead["id"], outcomes[writes[-1][:2]]["id"]}


def test_retry_dead_delivery_and_refusals(tenant: Tenant) -> None:
    resp = tenant.patch("/unified/lms/content/later-id", json={"title": "t"}, headers=ASYNC)
    dead = settle(tenant, resp.headers["location"])
    assert dead["status"] == "dead"
    again = tenant.post(f"/deliveries/{dead['id']}/retry")
    assert again.status_code == 200, again.text
    second = settle(tenant, resp.headers["location"])
    assert second["status"] == "dead" and second["attempt_count"] == 2
    assert [a["number"] for a in second["attempts"]] == [1, 2]
    ok = tenant.post("/unified/lms/users/x/completions", json=SEED_COMPLETION, headers=ASYNC)
    settle(tenant, ok.headers["location"])
    assert_stackone_error(tenant.post(f"{ok.headers['location']}/retry"), 409, "already delivered")
    assert_stackone_error(tenant.post("/deliveries/nope/retry"), 404, "nope")
    assert_stackone_error(tenant.get("/deliveries/nope"), 404, "nope")
    bulk = tenant.post("/deliveries/retry", json={"status": "dead", "created_after": "2000-01-01T00:00:00Z"})
    assert bulk.status_code == 200 and bulk.json()["data"]["retried"] == 1


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "lost"}, "status"), ({"page_size": "0"}, "page_size"), ({"page_size": "x"}, "page_size"),
    ({"created_after": "yesterday"}, "created_after"), ({"created_before": "2024-13-01"}, "created_before"),
    ({"next": "garbage"}, "next"), ({"colour": "red"}, "colour"),
])
def test_list_deliveries_bad_input(tenant: Tenant, params: dict[str, str], field: str) -> None:
    assert_stackone_error(tenant.get("/deliveries", params=params), 400, field)


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "delivered"}, "status"), ({"created_after": "soon"}, "created_after"),
    ({"account_id": 5}, "account_id"),
])
def test_bulk_retry_bad_input(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    assert_stackone_error(tenant.post("/deliveries/retry", json=body), 400, field)


def test_list_deliveries_pages_and_filters(tenant: Tenant) -> None:
    ids = []
    for i in range(5):
        resp = tenant.post(f"/unified/lms/users/p-{i}/completions", json=SEED_COMPLETION, headers=ASYNC)
        ids.append(resp.json()["data"]["id"])
    seen, query = [], {"page_size": "2"}
    while True:
        page = tenant.get("/deliveries", params=query).json()
        seen += [d["id"] for d in page["data"]]
        if not page["next"]:
            break
        query = {"page_size": "2", "next": page["next"]}
    assert seen == ids
    assert tenant.get("/deliveries", params={"account_id": "someone-else"}).json()["data"] == []
    assert tenant.get("/deliveries", params={"created_after": "2999-01-01T00:00:00Z"}).json()["data"] == []


def test_delivery_settings(tenant: Tenant) -> None:
    path = f"/accounts/{tenant.account_id}/delivery"
    base = tenant.get(path)
    assert base.status_code == 200 and base.json()["data"]["fallback_to_async"] is False
    changed = tenant.patch(path, json={"fallback_to_async": True, "max_concurrency": 3, "max_attempts": 4})
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert (data["fallback_to_async"], data["max_concurrency"], data["max_attempts"]) == (True, 3, 4)
    assert data["overrides"] == {"fallback_to_async": True, "max_concurrency": 3, "max_attempts": 4}
    reset = tenant.patch(path, json={"max_concurrency": None}).json()["data"]
    assert reset["max_concurrency"] == base.json()["data"]["max_concurrency"]
    assert_stackone_error(tenant.patch(path, json={"max_concurrency": 0}), 400, "max_concurrency")
    assert_stackone_error(tenant.patch(path, json={"fallback_to_async": "yes"}), 400, "fallback_to_async")
    assert_stackone_error(tenant.get("/accounts/missing/delivery"), 404, "missing")


# ---------------------------------------------------------------- Idempotency-Key


def test_idempotency_key_replays_and_refuses(any_path_tenant: Tenant) -> None:
    t = any_path_tenant
    headers = {"Idempotency-Key": '"order-77"'}
    first = t.post("/unified/lms/users/i-1/completions", json=SEED_COMPLETION, headers=headers)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # Same request, keys in another order: a replay, byte for byte.
    shuffled = dict(reversed(list(SEED_COMPLETION.items())))
    again = t.post("/unified/lms/users/i-1/completions", json=shuffled, headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    other = t.post("/unified/lms/users/i-1/completions", json={**SEED_COMPLETION, "time_spent": "PT2H"},
                   headers=headers)
    assert_stackone_error(other, 422, "Idempotency-Key")
    elsewhere = t.post("/unified/lms/users/i-2/completions", json=SEED_COMPLETION, headers=headers)
    assert_stackone_error(elsewhere, 422, "Idempotency-Key")


def test_idempotency_compares_numbers_by_value(tenant: Tenant) -> None:
    """50 and 50.0 (another serialiser's retry) were a different request: a 422. And two
    integers beyond 64 bits, read as one float, must still differ."""
    score = b'{"learning_object_external_reference":"num","completed_at":"2024-01-01T00:00:00Z","score":{"percentage":%s}}'
    headers = {"Idempotency-Key": "numbers-1", "content-type": "application/json"}
    first = tenant.post("/unified/lms/users/num-1/completions", content=score % b"50", headers=headers)
    assert first.status_code == 201, first.text
    for same in (b"50.0", b"5e1", b"50.000"):
        again = tenant.post("/unified/lms/users/num-1/completions", content=score % same, headers=headers)
        assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true", (same, again.text)
    assert_stackone_error(tenant.post("/unified/lms/users/num-1/completions", content=score % b"50.5",
                                      headers=headers), 422, "Idempotency-Key")
    big = b'{"learning_object_external_reference":"num","passthrough":{"n":%s}}'
    headers = {"Idempotency-Key": "numbers-2", "content-type": "application/json"}
    assert tenant.post("/unified/lms/users/num-2/completions", content=big % b"123456789012345678901",
                       headers=headers).status_code == 201
    assert_stackone_error(tenant.post("/unified/lms/users/num-2/completions", content=big % b"123456789012345678902",
                                      headers=headers), 422, "Idempotency-Key")


def test_idempotency_key_is_per_project_and_needs_auth(tenant: Tenant, other_tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "shared-key-1"}
    a = tenant.post("/unified/lms/users/i-1/completions", json=SEED_COMPLETION, headers=headers)
    b = other_tenant.post("/unified/lms/users/i-1/completions", json=SEED_COMPLETION, headers=headers)
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers and a.json()["data"]["id"] != b.json()["data"]["id"]
    anonymous = tenant.client.post("/unified/lms/users/i-1/completions", json=SEED_COMPLETION, headers=headers)
    assert_stackone_error(anonymous, 401)


def test_idempotency_key_with_respond_async_replays_the_202(tenant: Tenant) -> None:
    headers = {**ASYNC, "Idempotency-Key": "async-1"}
    first = tenant.post("/unified/lms/users/i-3/completions", json=SEED_COMPLETION, headers=headers)
    again = tenant.post("/unified/lms/users/i-3/completions", json=SEED_COMPLETION, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.headers["location"] == first.headers["location"] and again.content == first.content
    assert len(tenant.get("/deliveries").json()["data"]) == 1


def test_errors_worth_retrying_are_not_kept(tenant: Tenant) -> None:
    headers = {"Idempotency-Key": "disabled-1"}
    tenant.container.tenancy.set_account_status(tenant.account_id, "inactive")
    refused = tenant.post("/unified/lms/users/i-4/completions", json=SEED_COMPLETION, headers=headers)
    assert refused.status_code == 412
    tenant.container.tenancy.set_account_status(tenant.account_id, "active")
    ok = tenant.post("/unified/lms/users/i-4/completions", json=SEED_COMPLETION, headers=headers)
    assert ok.status_code == 201 and "idempotent-replayed" not in ok.headers


@pytest.mark.parametrize("value", ['""', '"unterminated', '"bad"quote"', "x" * 256, "caf\u00e9", '"a\\b"'])
def test_bad_idempotency_keys(tenant: Tenant, value: str) -> None:
    resp = tenant.post("/unified/lms/users/i-5/completions", json=SEED_COMPLETION,
                       headers={"Idempotency-Key": value.encode("utf-8")})
    assert_stackone_error(resp, 400, "Idempotency-Key")


def test_parse_key() -> None:
    assert parse_key(b'"abc"') == "abc"
    assert parse_key(b'"a\\"b"') == 'a"b'
    assert parse_key(b"plain-token") == "plain-token"
    with pytest.raises(BadRequest):
        parse_key(b'"x\\')


# ---------------------------------------------------------------- fallback_to_async


@pytest.fixture(scope="module")
def short_lifetime(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    container: Container = bootstrap(Settings(
        database_url=db_url, vault_key_file=shared_vault_key_file(),
        outbound_allow_networks=["127.0.0.1/32"], outbound_request_lifetime_seconds=1.0,
        outbound_backoff_base_seconds=0.05, outbound_connect_timeout_seconds=0.5,
        delivery_backoff_base_seconds=0.1, delivery_pause_cap_seconds=0.3,
    ))
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield client


def test_fallback_to_async_keeps_writes_while_the_provider_is_down(short_lifetime: TestClient) -> None:
    tenant = make_tenant(short_lifetime, short_lifetime.app.state.container)
    with LrsSimulator() as sim:
        account = link(tenant, "xapi", xapi_setup(sim.endpoint), {"username": "fb", "password": "pw-fb"})["id"]
        t = on_account(tenant, account)
        sim.set_mode("dead")
        sync = t.post("/unified/lms/users/fb-1/completions", json=completion())
        assert_stackone_error(sync, 408)  # the default stays StackOne's: the error
        assert t.patch(f"/accounts/{account}/delivery", json={"fallback_to_async": True}).status_code == 200
        kept = t.post("/unified/lms/users/fb-1/completions", json=completion())
        assert kept.status_code == 202, kept.text
        assert "preference-applied" not in kept.headers and kept.headers["location"].startswith("/deliveries/")
        first = t.get(kept.headers["location"]).json()["data"]
        assert first["attempts"][0]["status"] == 408 and first["attempts"][0]["outcome"] == "retry"
        sim.set_mode("healthy")
        done = settle(t, kept.headers["location"])
        assert done["status"] == "delivered" and done["attempt_count"] >= 2
        assert sim.delivered_count() == 1 and "pw-fb" not in str(done)


def test_respond_async_refuses_what_the_connector_cannot_do(short_lifetime: TestClient) -> None:
    tenant = make_tenant(short_lifetime, short_lifetime.app.state.container)
    with LrsSimulator() as sim:
        account = link(tenant, "xapi", xapi_setup(sim.endpoint), {"username": "nc", "password": "pw-nc"})["id"]
        resp = on_account(tenant, account).put("/unified/lms/content", headers=ASYNC,
                                                json={"external_reference": "c", "title": "t"})
        assert_stackone_error(resp, 501, "upsert_content")


def _queue_depth(client: TestClient) -> float:
    found = re.search(r"^lmsgate_delivery_queue_depth (\S+)$", client.get("/metrics").text, re.MULTILINE)
    assert found, "no lmsgate_delivery_queue_depth in /metrics"
    return float(found.group(1))


def test_metrics_show_the_delivery_queue(short_lifetime: TestClient) -> None:
    tenant = make_tenant(short_lifetime, short_lifetime.app.state.container)
    with LrsSimulator() as sim:
        account = link(tenant, "xapi", xapi_setup(sim.endpoint), {"username": "qd", "password": "pw-qd"})["id"]
        t = on_account(tenant, account)
        sim.set_mode("dead")
        kept = [t.post(f"/unified/lms/users/qd-{i}/completions", headers=ASYNC, json=completion())
                for i in range(3)]
        assert {r.status_code for r in kept} == {202}
        before = _queue_depth(short_lifetime)  # the database may hold other tests' deliveries too
        assert before >= 3
        sim.set_mode("healthy")
        for r in kept:
            assert settle(t, r.headers["location"])["status"] == "delivered"
        assert _queue_depth(short_lifetime) <= before - 3


def test_background_deliveries_are_not_credited_to_the_request_that_woke_them(short_lifetime: TestClient) -> None:
    """A drain started by a request ran in that request's context: its provider calls were
    appended to that request's log (learner 1's log held the statements of learners 2 to 5)
    and its log lines carried that request's id."""
    tenant = make_tenant(short_lifetime, short_lifetime.app.state.container)
    with LrsSimulator() as sim:
        account = link(tenant, "xapi", xapi_setup(sim.endpoint), {"username": "bg", "password": "pw-bg"})["id"]
        t = on_account(tenant, account)
        sent = [t.post(f"/unified/lms/users/bg-{i}/completions", headers=ASYNC, json=completion()) for i in range(5)]
        assert {r.status_code for r in sent} == {202}
        for r in sent:
            assert settle(t, r.headers["location"])["status"] == "delivered"
        assert sim.delivered_count() == 5
        time.sleep(0.2)  # the drain's last calls are made before its deliveries read as delivered
        ids = [r.headers["x-request-id"] for r in sent]
        logs = t.get("/requests/logs", params={"include": "step_logs", "page_size": 100,
                                                "filter[request_ids]": ",".join(ids)})
        assert logs.status_code == 200, logs.text
        entries = {e["request_id"]: e for e in logs.json()["data"]}
        assert set(entries) == set(ids)
        # each answered 202 before anything was sent: none of them made a provider call
        assert {rid: e.get("step_requests") or [] for rid, e in entries.items()} == {rid: [] for rid in ids}


def test_a_retry_sends_at_once_even_while_the_account_is_paused(short_lifetime: TestClient) -> None:
    """A retried delivery waited out its account's pause (up to 5 minutes by default) before
    it was sent, though the docs say a retry sends a pending delivery now."""
    from datetime import timedelta

    from lmsgate.service.deliveries import utcnow

    container = short_lifetime.app.state.container
    tenant = make_tenant(short_lifetime, container)
    with LrsSimulator() as sim:
        account = link(tenant, "xapi", xapi_setup(sim.endpoint), {"username": "rp", "password": "pw-rp"})["id"]
        t = on_account(tenant, account)
        now = utcnow()
        container.deliveries.store.save_state(account, paused_until=now + timedelta(minutes=5), failures=6,
                                              tokens=None, tokens_at=None, now=now)
        kept = t.post("/unified/lms/users/rp-1/completions", headers=ASYNC, json=completion())
        assert kept.status_code == 202, kept.text
        time.sleep(0.5)
        assert t.get(kept.headers["location"]).json()["data"]["status"] == "pending"  # paused: not sent
        retried = t.post(kept.headers["location"] + "/retry")
        assert retried.status_code == 200, retried.text
        assert settle(t, kept.headers["location"], timeout=10)["status"] == "delivered"
        assert container.deliveries.store.state(account).paused_until is None
