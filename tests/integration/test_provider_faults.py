"""The outbound HTTP policy against a real, misbehaving provider on 127.0.0.1.

lmsgate runs with a 3-second request lifetime and a short backoff here, so the give-up cases
finish quickly; the rules are the production ones. Every test captures all log records (DEBUG
and up, lmsgate's and httpx's) and checks that no credential appears in them or in any
response body.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime as http_date

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import make_tenant
from linking import completion, link, new_secret, on_account, xapi_setup
from lmsgate.api.app import create_app
from lmsgate.bootstrap import Container, bootstrap
from lmsgate.settings import Settings
from simulators.provider import ProviderSimulator, delay, not_json, reset, status
from support import shared_vault_key_file, Tenant, assert_stackone_error

LIFETIME = 3.0


@pytest.fixture(scope="module")
def fault_container(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Container:
    return bootstrap(Settings(
        database_url=db_url, vault_key_file=shared_vault_key_file(),
        outbound_allow_networks=["127.0.0.1/32"], outbound_request_lifetime_seconds=LIFETIME,
        outbound_backoff_base_seconds=0.05, outbound_read_timeout_seconds=2.0,
    ))


@pytest.fixture(scope="module")
def fault_client(fault_container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(fault_container), raise_server_exceptions=False) as client:
        yield client


@dataclass
class Linked:
    tenant: Tenant
    """The tenant calling with the xAPI account linked to the simulator."""
    sim: ProviderSimulator
    account_id: str
    secrets: list[str]
    responses: list[httpx.Response]

    def call(self, method: str, path: str, **kw: object) -> httpx.Response:
        resp = self.tenant.request(method, path, **kw)
        self.responses.append(resp)
        return resp

    def post_completion(self, user: str = "learner-42", **fields: object) -> httpx.Response:
        return self.call("POST", f"/unified/lms/users/{user}/completions", json=completion(**fields))


@pytest.fixture
def linked(fault_client: TestClient, fault_container: Container,
           caplog: pytest.LogCaptureFixture) -> Iterator[Linked]:
    caplog.set_level(logging.DEBUG)
    username, password = new_secret("lrs-key"), new_secret("lrs-pass")
    with ProviderSimulator(username, password) as sim:
        tenant = make_tenant(fault_client, fault_container)
        account = link(tenant, "xapi", xapi_setup(sim.endpoint), {"username": username, "password": password})
        state = Linked(on_account(tenant, account["id"]), sim, account["id"],
                       [username, password, base64.b64encode(f"{username}:{password}".encode()).decode()], [])
        yield state
    # No credential in any response lmsgate gave, nor in any log line of the test.
    for secret in state.secrets:
        for resp in state.responses:
            assert secret not in resp.text, resp.text
            assert all(secret not in v for v in resp.headers.values())
        assert secret not in caplog.text


def test_a_429_with_retry_after_is_honoured(linked: Linked) -> None:
    linked.sim.script(status(429, {"Retry-After": "2"}, {"error": "slow down"}, path="/statements"))
    started = time.monotonic()
    resp = linked.post_completion()
    elapsed = time.monotonic() - started
    assert resp.status_code == 201, resp.text
    puts = linked.sim.requests_to("/statements", "PUT")
    assert len(puts) == 2
    waited = puts[1].at - puts[0].at
    print(f"\n429 Retry-After: 2 → lmsgate waited {waited:.3f} s between attempts ({elapsed:.3f} s in all)")
    assert 2.0 <= waited < 2.5
    assert len(linked.sim.statements) == 1


def test_a_retry_after_http_date_is_honoured(linked: Linked) -> None:
    # The date has whole seconds: start just after a second begins, so that "2 s ahead" is not
    # cut to barely more than 1 s before the first call is even made (a slow machine saw 0.82 s).
    time.sleep(1.05 - time.time() % 1)
    when = http_date(datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True)
    linked.sim.script(status(503, {"Retry-After": when}, path="/statements"))
    resp = linked.post_completion()
    assert resp.status_code == 201, resp.text
    puts = linked.sim.requests_to("/statements", "PUT")
    waited = puts[1].at - puts[0].at
    print(f"\n503 Retry-After: <HTTP-date 2 s ahead> → waited {waited:.3f} s")
    assert 1.0 <= waited < 2.5  # the date has one-second resolution


def test_a_500_then_a_200_succeeds(linked: Linked) -> None:
    linked.sim.script(status(500, body={"error": "database hiccup"}, path="/statements"))
    resp = linked.post_completion()
    assert resp.status_code == 201, resp.text
    assert len(linked.sim.requests_to("/statements", "PUT")) == 2
    assert len(linked.sim.statements) == 1


def test_a_reset_connection_is_retried(linked: Linked) -> None:
    linked.sim.script(reset(path="/statements"))
    resp = linked.post_completion()
    assert resp.status_code == 201, resp.text
    assert len(linked.sim.requests_to("/statements", "PUT")) == 2
    assert len(linked.sim.statements) == 1


def test_endless_503s_give_408_within_the_lifetime(linked: Linked) -> None:
    linked.sim.script(*[status(503, {"Retry-After": "1"}, {"error": "maintenance"}, path="/statements")] * 20)
    started = time.monotonic()
    resp = linked.post_completion()
    elapsed = time.monotonic() - started
    body = assert_stackone_error(resp, 408, "lifetime")
    attempts = len(linked.sim.requests_to("/statements", "PUT"))
    print(f"\nendless 503 (Retry-After: 1), lifetime {LIFETIME:g} s → 408 after {elapsed:.2f} s, {attempts} attempts")
    assert elapsed < LIFETIME + 0.5
    assert attempts == 3  # at 0 s, 1 s and 2 s; a fourth would be due at the end of the lifetime
    assert body["provider_errors"][0]["status"] == 503
    assert resp.headers["retry-after"] == "1"


def test_endless_503s_stop_after_five_retries(linked: Linked) -> None:
    linked.sim.script(*[status(503, path="/statements")] * 20)
    resp = linked.post_completion()
    assert_stackone_error(resp, 408, "retry limit of 5")
    assert len(linked.sim.requests_to("/statements", "PUT")) == 6  # one try and five retries


def test_a_slow_provider_gives_408_at_the_lifetime(linked: Linked) -> None:
    linked.sim.script(*[delay(2.5, path="/statements")] * 3)
    started = time.monotonic()
    resp = linked.post_completion()
    elapsed = time.monotonic() - started
    assert_stackone_error(resp, 408)
    print(f"\nprovider answering after 2.5 s (read timeout 2 s) → 408 after {elapsed:.2f} s")
    assert elapsed < LIFETIME + 0.5


def test_a_body_that_is_not_json_gives_a_clean_502(linked: Linked) -> None:
    linked.sim.script(not_json(path="/statements"))
    resp = linked.call("GET", "/unified/lms/completions")
    body = assert_stackone_error(resp, 502, "not JSON", "text/html")
    (error,) = body["provider_errors"]
    assert error["status"] == 200
    assert error["url"].startswith(linked.sim.endpoint + "statements")
    assert "maintenance" in error["raw"]["body"]
    assert len(linked.sim.requests_to("/statements")) == 1  # not retried: the answer was final


def test_provider_errors_are_masked(linked: Linked) -> None:
    username, password, pair = linked.secrets
    leak = {"error": "invalid statement", "echo": f"Basic {pair}", "password": "whatever",
            "detail": f"user {username} sent {password}"}
    linked.sim.script(status(400, {"X-Debug-Auth": f"Basic {pair}", "Set-Cookie": "session=abc123"}, leak,
                             path="/statements"))
    resp = linked.post_completion()
    body = assert_stackone_error(resp, 400, "invalid")
    (error,) = body["provider_errors"]
    assert error["status"] == 400
    assert error["raw"]["error"] == "invalid statement"
    assert error["raw"]["password"] == "[REDACTED]"
    assert error["raw"]["echo"] == "Basic [REDACTED]"
    assert error["raw"]["detail"] == "user [REDACTED] sent [REDACTED]"
    assert error["headers"]["set-cookie"] == "[REDACTED]"
    assert error["headers"]["x-debug-auth"] == "Basic [REDACTED]"


def test_refused_credentials_give_502_naming_the_account(linked: Linked) -> None:
    linked.sim.password = "changed-at-the-provider"
    resp = linked.post_completion()
    body = assert_stackone_error(resp, 502, "credentials", "PATCH /accounts")
    assert body["provider_errors"][0]["status"] == 401
    assert len(linked.sim.requests_to("/statements")) == 1


def test_raw_log_is_masked(linked: Linked) -> None:
    assert linked.post_completion().status_code == 201
    resp = linked.call("GET", "/unified/lms/completions", params={"raw": "true"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert len(body["data"]) == 1
    assert [r["method"] for r in body["raw"]] == ["GET", "GET", "GET"]  # one query per completion verb
    assert all(r["url"].startswith(linked.sim.endpoint + "statements?") for r in body["raw"])
    assert "verb=http" in body["raw"][0]["url"]


def test_the_account_test_endpoint_makes_a_real_call(linked: Linked) -> None:
    resp = linked.call("POST", f"/accounts/{linked.account_id}/test", params={"raw": "true"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["checked"] == f"GET {linked.sim.endpoint}statements?limit=1"
    assert len(linked.sim.requests_to("/statements", "GET")) == 1
    linked.sim.password = "rotated-elsewhere"
    resp = linked.call("POST", f"/accounts/{linked.account_id}/test")
    assert_stackone_error(resp, 502, "credentials")


def test_the_client_side_rate_limit_paces_calls(linked: Linked) -> None:
    resp = linked.call("PATCH", f"/accounts/{linked.account_id}",
                       json={"setup_information": {"max_requests_per_second": 10}})
    assert resp.status_code == 200, resp.text
    started = time.monotonic()
    for n in range(25):
        assert linked.post_completion(ref=f"lo-{n}").status_code == 201
    elapsed = time.monotonic() - started
    puts = linked.sim.requests_to("/statements", "PUT")
    at = [p.at for p in puts]
    span = at[-1] - at[0]
    print(f"\n25 writes at 10/s (burst 10): {elapsed:.2f} s, first to last provider call {span:.2f} s")
    # A bucket of 10 refilled at 10/s admits the 25th call no sooner than 1.5 s after the first.
    assert elapsed >= 1.49
    # And no stretch of calls is ever faster than the limit allows (one call of slack for timing).
    assert all(j - i + 1 <= 10 + 10 * (at[j] - at[i]) + 1 for i in range(len(at)) for j in range(i + 1, len(at)))


def test_oauth2_tokens_are_cached_and_refreshed(fault_client: TestClient, fault_container: Container,
                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client_secret = new_secret("client-secret")
    with ProviderSimulator("unused", "unused", client_secret=client_secret, token_lifetime=6) as sim:
        tenant = make_tenant(fault_client, fault_container)
        account = link(tenant, "xapi", xapi_setup(sim.endpoint, auth_type="oauth2_client_credentials",
                                                  token_url=sim.token_url, client_id=sim.client_id,
                                                  scope="statements/write statements/read"),
                       {"client_secret": client_secret})
        xapi = on_account(tenant, account["id"])
        responses = []

        def post(ref: str) -> None:
            resp = xapi.post("/unified/lms/users/learner-1/completions", json=completion(ref=ref))
            responses.append(resp)
            assert resp.status_code == 201, resp.text

        post("a")
        post("b")
        assert len(sim.issued) == 1  # cached
        token_request = sim.requests_to("/oauth/token")[0]
        assert b"grant_type=client_credentials" in token_request.body and b"scope=statements" in token_request.body
        assert sim.requests_to("/statements")[0].headers["Authorization"] == f"Bearer {sim.issued[0]}"

        sim.revoke_tokens()  # the provider forgets it: 401, one refresh, success
        post("c")
        assert len(sim.issued) == 2

        time.sleep(1.2)  # 6 s tokens are refreshed 5 s before expiry
        post("d")
        assert len(sim.issued) == 3
        assert sim.issued[1] in sim.tokens  # the old one still worked: refreshed before expiry

        sim.revoke_tokens()
        sim.script(*[status(401, path="/statements")] * 2)  # refused even after a refresh: no loop
        resp = xapi.post("/unified/lms/users/learner-1/completions", json=completion(ref="e"))
        responses.append(resp)
        assert_stackone_error(resp, 502, "credentials")
        assert len(sim.requests_to("/statements", "PUT")) == 7

    for text in [r.text for r in responses] + [caplog.text]:
        assert client_secret not in text
        for token in sim.issued:
            assert token not in text


def test_each_item_of_a_bulk_write_gets_its_own_budget(linked: Linked, fault_container: Container) -> None:
    import anyio

    from lmsgate.connectors.base import CallContext
    from lmsgate.schema import LmsCreateCompletionRequestDto

    linked.sim.script(*[status(503, path="/statements")] * 6)  # the first item uses up its retries
    account = fault_container.tenancy.get_account(linked.account_id)
    items = [(f"learner-{n}", LmsCreateCompletionRequestDto.model_validate(completion(ref=f"bulk-{n}")))
             for n in range(3)]
    outcomes = anyio.run(fault_container.service.create_completions, CallContext(account=account), items)
    assert getattr(outcomes[0], "status", None) == 408
    assert [getattr(o, "id", None) is not None for o in outcomes[1:]] == [True, True]
    assert len(linked.sim.statements) == 2


def test_a_2xx_that_is_no_xapi_answer_stored_nothing(linked: Linked) -> None:
    """A 200 with an HTML page (a login proxy, a web UI at the endpoint) was taken for a stored
    statement: 201 for the caller, nothing in the LRS."""
    linked.sim.script(not_json(path="/statements"))
    body = assert_stackone_error(linked.post_completion(), 502, "not an xAPI answer", "text/html")
    assert body["provider_errors"][0]["status"] == 200
    assert linked.sim.statements == {}
    assert linked.post_completion().status_code == 201  # the LRS answering as xAPI says: stored
    assert len(linked.sim.statements) == 1


def test_later_pages_take_their_own_page_size(linked: Linked) -> None:
    """The LRS's ``more`` link repeats the limit of the call that made it: a next page asked
    for with another page_size got the first page's size (and a stream that began with one
    slot left went on one statement per call)."""
    for n in range(7):
        assert linked.post_completion(ref=f"paged-{n}").status_code == 201
    first = linked.call("GET", "/unified/lms/completions", params={"page_size": 2}).json()
    assert len(first["data"]) == 2 and first["next"]
    second = linked.call("GET", "/unified/lms/completions", params={"page_size": 5, "next": first["next"]}).json()
    assert len(second["data"]) == 5
    refs = [c["learning_object_external_reference"] for c in first["data"] + second["data"]]
    assert sorted(refs) == [f"paged-{n}" for n in range(7)]


@pytest.mark.parametrize("passthrough", [{"id": "x"}, {"verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"}}])
def test_a_body_the_connector_refuses_is_refused_before_a_delivery_is_made(linked: Linked, passthrough: dict) -> None:
    """With ``Prefer: respond-async`` it was accepted (202) and dead-lettered later."""
    resp = linked.call("POST", "/unified/lms/users/learner-42/completions",
                       json=completion(passthrough=passthrough), headers={"Prefer": "respond-async"})
    assert_stackone_error(resp, 400, "body.passthrough.")
    deliveries = linked.call("GET", "/deliveries", params={"account_id": linked.account_id}).json()
    assert deliveries["data"] == []
    assert linked.sim.requests_to("/statements", "PUT") == []


def test_a_completion_reads_back_by_any_case_of_its_email_domain(linked: Linked) -> None:
    """An LRS that keeps an mbox as sent (statements written before lmsgate lowered domains, or by
    another system) answered bob@Example.com; a read by either spelling was a 404."""
    from lmsgate.connectors.xapi import mapping as m

    linked.post_completion(user="carol@example.com")
    (sid,) = linked.sim.statements
    linked.sim.statements[sid]["actor"]["mbox"] = "mailto:carol@Example.COM"  # as another writer left it
    for user in ("carol@example.com", "carol@EXAMPLE.com"):
        got = linked.call("GET", f"/unified/lms/users/{user}/completions/{sid}")
        assert got.status_code == 200, got.text
    assert m.learner("carol@Example.COM") == "carol@example.com"
