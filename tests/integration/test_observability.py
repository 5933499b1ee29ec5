"""Request ids, request logs, metrics, JSON logs, and secrets kept out of all of them.

One app per backend with its own settings (small body cap for the request log, a provider
simulator reachable on 127.0.0.1). Every log line the app writes during a test is captured
through lmsgate's own JSON handler (``lmsgate.logs``), at DEBUG, so the secret checks read
exactly what an operator's log shipper would receive.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from conftest import make_tenant
from linking import completion, link, new_secret, on_account, xapi_setup
from lmsgate.api.app import create_app
from lmsgate.bootstrap import Container, bootstrap
from lmsgate.logs import make_handler
from lmsgate.settings import Settings
from lmsgate.store import tables as t
from simulators.provider import ProviderSimulator, status
from support import shared_vault_key_file, SEED_COMPLETION, Tenant, assert_stackone_error, basic


@pytest.fixture(scope="module")
def obs_container(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Container:
    return bootstrap(Settings(
        database_url=db_url, vault_key_file=shared_vault_key_file(),
        outbound_allow_networks=["127.0.0.1/32"], outbound_request_lifetime_seconds=3.0,
        outbound_backoff_base_seconds=0.05, request_log_body_bytes=4096, auth_failures_per_minute=0,
        max_url_bytes=2048, max_header_bytes=4096, max_header_count=40,
        delivery_in_process_worker=False,  # its own vault key: it must not pick up others' deliveries
        # rows built in this process, where these tests read its log lines and swap its row
        # builder; the request log's own process: test_request_log_process.py
        request_log_process=False,
    ))


@pytest.fixture(scope="module")
def obs_client(obs_container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(obs_container), raise_server_exceptions=False) as client:
        yield client


@dataclass
class Captured:
    """Log lines (JSON) and responses seen during one test."""

    stream: io.StringIO = field(default_factory=io.StringIO)
    responses: list[httpx.Response] = field(default_factory=list)

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def captured(obs_client: TestClient) -> Iterator[Captured]:
    cap = Captured()
    handler = make_handler("json", cap.stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    hook = lambda resp: cap.responses.append(resp)
    obs_client.event_hooks["response"].append(hook)
    try:
        yield cap
    finally:
        obs_client.event_hooks["response"].remove(hook)
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture
def obs_tenant(obs_client: TestClient, obs_container: Container) -> Tenant:
    return make_tenant(obs_client, obs_container)


def _read(resp: httpx.Response) -> str:
    resp.read()
    return resp.text + " " + " ".join(f"{k}: {v}" for k, v in resp.headers.items())


# ---------------------------------------------------------------- request ids


def test_every_answer_has_a_request_id(obs_tenant: Tenant, obs_client: TestClient) -> None:
    answers = [
        obs_tenant.post("/unified/lms/users/l1/completions", json=SEED_COMPLETION),  # fast path
        obs_tenant.get("/unified/lms/completions"),
        obs_client.get("/unified/lms/completions"),  # 401
        obs_tenant.get("/no/such/route"),  # 404
        obs_tenant.post("/unified/lms/users/l1/completions", content=b"{not json",
                        headers={"content-type": "application/json"}),  # 400 on the fast path
        obs_tenant.get("/unified/lms/completions", params={"x": "y" * 3000}),  # 414
        obs_client.get("/metrics"),
        obs_client.get("/health"),
    ]
    ids = [a.headers.get("x-request-id") for a in answers]
    assert all(ids) and len(set(ids)) == len(ids), ids
    mine = obs_tenant.get("/unified/lms/completions", headers={"x-request-id": "caller-trace-42"})
    assert mine.headers["x-request-id"] == "caller-trace-42"
    odd = obs_tenant.get("/unified/lms/completions", headers={"x-request-id": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])


# ---------------------------------------------------------------- limits


def test_url_and_header_limits_answer_in_stackone_shape(obs_tenant: Tenant) -> None:
    long_url = obs_tenant.get("/unified/lms/completions", params={"fields": "a" * 3000})
    assert_stackone_error(long_url, 414, "url:", "2048")
    big_header = obs_tenant.get("/unified/lms/completions", headers={"x-padding": "p" * 5000})
    assert_stackone_error(big_header, 431, "headers:", "x-padding", "4096")
    many = obs_tenant.get("/unified/lms/completions", headers={f"x-h{i}": "1" for i in range(45)})
    assert_stackone_error(many, 431, "headers:", "the limit is 40")
    fine = obs_tenant.get("/unified/lms/completions", headers={f"x-h{i}": "1" for i in range(20)})
    assert fine.status_code == 200


# ---------------------------------------------------------------- request logs


def _logs(tenant: Tenant, **params: Any) -> dict[str, Any]:
    resp = tenant.get("/requests/logs", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_request_logs_record_who_called_what(obs_tenant: Tenant) -> None:
    created = obs_tenant.post("/unified/lms/users/l1/completions", json=SEED_COMPLETION)
    missing = obs_tenant.get("/unified/lms/completions/nope")
    listed = obs_tenant.get("/unified/lms/completions", params={"page_size": 1})
    data = _logs(obs_tenant)["data"]
    assert [d["request_id"] for d in data] == [r.headers["x-request-id"] for r in (listed, missing, created)]
    newest, middle, oldest = data
    assert oldest["http_method"] == "POST" and oldest["path"] == "/unified/lms/users/l1/completions"
    assert oldest["action"] == "lms_create_user_completion" and oldest["status"] == 201 and oldest["success"]
    assert (oldest["service"], oldest["resource"], oldest["sub_resource"]) == ("lms", "users", "completions")
    assert middle["status"] == 404 and middle["success"] is False
    assert newest["url"] == "/unified/lms/completions?page_size=1"
    for d in data:
        assert d["project_id"] == obs_tenant.project_id and d["account_id"] == obs_tenant.account_id
        assert d["provider"] == "local" and d["duration"] > 0 and d["event_datetime"].endswith("Z")
        assert d["source_ip"] == "testclient" and d["step_requests"] is None
    full = obs_tenant.get(f"/requests/logs/{created.headers['x-request-id']}").json()["data"]
    assert full["request"]["body"]["learning_object_external_reference"] == "learning-content-123"
    assert full["request"]["headers"]["authorization"] == "[REDACTED]"
    assert full["response"]["status_code"] == 201
    assert full["response"]["body"]["data"]["id"] == created.json()["data"]["id"]
    assert_stackone_error(obs_tenant.get("/requests/logs/no-such-log"), 404, "not found")


def test_a_nul_in_the_path_is_logged_and_costs_no_other_row(obs_tenant: Tenant) -> None:
    """PostgreSQL text refuses NUL: a batch holding such a path was refused whole, and every
    row in it (other callers' too) was lost. The path is logged as sent, %00."""
    before = obs_tenant.post("/unified/lms/users/l1/completions", json=SEED_COMPLETION)
    refused = obs_tenant.post("/unified/lms/users/u%00x/completions", json=SEED_COMPLETION)
    slashed = obs_tenant.get("/unified/lms/users/a%2Fb/completions")
    assert_stackone_error(refused, 400, "NUL")
    data = _logs(obs_tenant)["data"]
    by_request = {d["request_id"]: d for d in data}
    assert by_request[refused.headers["x-request-id"]]["path"] == "/unified/lms/users/u%00x/completions"
    assert by_request[slashed.headers["x-request-id"]]["path"] == "/unified/lms/users/a%2Fb/completions"
    assert before.headers["x-request-id"] in by_request


def test_a_request_log_row_the_database_refuses_costs_no_other_row(obs_client: TestClient,
                                                                 obs_container: Container) -> None:
    writer = obs_client.app.state.request_log_writer
    tenant = make_tenant(obs_client, obs_container)
    kept = tenant.post("/unified/lms/users/l1/completions", json=SEED_COMPLETION)
    build = writer._row

    def poisoned(record: Any, extra: dict[str, Any]) -> dict[str, Any]:
        row = build(record, extra)
        if record.request_id == "poisoned-row":
            row["method"] = None  # NOT NULL: both databases refuse it
        return row

    writer._row = poisoned
    try:
        tenant.get("/unified/lms/completions", headers={"x-request-id": "poisoned-row"})
        logs = _logs(tenant)["data"]
    finally:
        writer._row = build
    ids = [d["request_id"] for d in logs]
    assert kept.headers["x-request-id"] in ids and "poisoned-row" not in ids


def test_a_successful_read_keeps_a_shorter_answer_than_a_write(obs_tenant: Tenant) -> None:
    """obs_container keeps 4,096 bytes of bodies, and the default 1,024 of a successful GET."""
    big = {**SEED_COMPLETION, "passthrough": {"note": "x" * 3000}}
    written = obs_tenant.post("/unified/lms/users/l1/completions", json=big)
    for i in range(12):
        obs_tenant.post("/unified/lms/users/l1/completions",
                        json={**SEED_COMPLETION, "completed_at": f"2023-01-{i + 1:02d}T00:00:00Z"})
    listed = obs_tenant.get("/unified/lms/completions", params={"page_size": 20})
    missing = obs_tenant.get("/unified/lms/completions/nope")
    assert len(listed.content) > 4096
    full = obs_tenant.get(f"/requests/logs/{written.headers['x-request-id']}").json()["data"]
    assert full["request"]["body"]["passthrough"]["note"] == "x" * 3000  # a write: whole, under 4,096
    page = obs_tenant.get(f"/requests/logs/{listed.headers['x-request-id']}").json()["data"]
    body = page["response"]["body"]
    assert isinstance(body, str) and body.endswith(" …[truncated]")
    assert body.removesuffix(" …[truncated]") == listed.content[:1024].decode()
    refused = obs_tenant.get(f"/requests/logs/{missing.headers['x-request-id']}").json()["data"]
    assert refused["response"]["body"]["statusCode"] == 404  # an error answer is kept whole


def test_request_log_filters_and_pages(obs_tenant: Tenant) -> None:
    for i in range(5):
        obs_tenant.post(f"/unified/lms/users/l{i}/completions", json=SEED_COMPLETION)
    obs_tenant.get("/unified/lms/completions/nope")
    assert len(_logs(obs_tenant, **{"filter[http_methods]": "post"})["data"]) == 5
    assert len(_logs(obs_tenant, status_codes="404")["data"]) == 1
    assert len(_logs(obs_tenant, **{"filter[success]": "false"})["data"]) == 1
    assert len(_logs(obs_tenant, **{"filter[actions]": "lms_get_completion"})["data"]) == 1
    assert _logs(obs_tenant, **{"filter[start_date]": "2999-01-01T00:00:00Z"})["data"] == []
    seen: list[str] = []
    params: dict[str, Any] = {"page_size": 2, "order_direction": "asc"}
    while True:
        page = _logs(obs_tenant, **params)
        seen += [d["request_id"] for d in page["data"]]
        if not page["next"]:
            break
        params["next"] = page["next"]
    assert len(seen) == len(set(seen)) >= 6
    assert seen == [d["request_id"] for d in reversed(_logs(obs_tenant, page_size=1000)["data"])][: len(seen)]
    for bad, field_name in (({"page_size": "0"}, "page_size"), ({"order_by": "provider"}, "order_by"),
                            ({"status_codes": "2x"}, "status_codes"), ({"include": "bodies"}, "include"),
                            ({"filter[start_date]": "yesterday"}, "start_date")):
        assert_stackone_error(obs_tenant.get("/requests/logs", params=bad), 400, field_name)


def test_request_logs_are_deleted_after_the_retention_period(obs_container: Container, obs_tenant: Tenant,
                                                             tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = obs_container.settings.model_copy(update={"request_log_retention_days": 1 / 86400})  # 1 s
    short = bootstrap(settings.model_copy(update={"vault_key_file": shared_vault_key_file()}))
    with TestClient(create_app(short), raise_server_exceptions=False) as client:
        tenant = make_tenant(client, short)
        tenant.get("/unified/lms/completions")
        assert len(_logs(tenant)["data"]) == 1
        time.sleep(1.2)
        writer = client.app.state.request_log_writer
        writer._last_purge = 0.0  # due now (normally every ten minutes)
        assert _logs(tenant)["data"] == [] or len(_logs(tenant)["data"]) == 1  # the list call itself
        with short.engine.connect() as conn:
            rows = conn.execute(select(t.request_logs.c.path).where(
                t.request_logs.c.project_id == tenant.project_id)).scalars().all()
        assert "/unified/lms/completions" not in rows
    short.engine.dispose()


# ---------------------------------------------------------------- provider calls and secrets


@dataclass
class Linked:
    tenant: Tenant
    sim: ProviderSimulator
    account_id: str
    secrets: list[str]


@pytest.fixture
def linked(obs_client: TestClient, obs_container: Container) -> Iterator[Linked]:
    username, password = new_secret("lrs-key"), new_secret("lrs-pass")
    with ProviderSimulator(username, password) as sim:
        tenant = make_tenant(obs_client, obs_container)
        account = link(tenant, "xapi", xapi_setup(sim.endpoint), {"username": username, "password": password})
        pair = base64.b64encode(f"{username}:{password}".encode()).decode()
        yield Linked(on_account(tenant, account["id"]), sim, account["id"],
                     [username, password, pair, tenant.api_key, basic(tenant.api_key).split()[1]])


def test_provider_calls_show_in_the_request_log_and_metrics(linked: Linked, obs_client: TestClient) -> None:
    linked.sim.script(status(503, {}, {"error": "busy"}, path="/statements"))
    resp = linked.tenant.post("/unified/lms/users/learner-9/completions", json=completion())
    assert resp.status_code == 201, resp.text
    rid = resp.headers["x-request-id"]
    listed = _logs(linked.tenant, include="step_logs", request_ids=rid)["data"]
    (entry,) = listed
    assert entry["provider"] == "xapi" and entry["account_id"] == linked.account_id
    steps = entry["step_requests"]
    assert [s["status"] for s in steps] == [503, 204], steps
    for step in steps:
        assert step["http_method"] == "PUT" and step["url"].startswith(linked.sim.endpoint + "statements")
        assert step["duration"] >= 0 and step["provider"] == "xapi" and step["request_id"] == rid
    assert steps[0]["success"] is False and steps[1]["success"] is True
    metrics = obs_client.get("/metrics").text
    assert re.search(r'lmsgate_provider_calls_total\{outcome="2xx",provider="xapi"\} [1-9]', metrics), metrics
    assert re.search(r'lmsgate_provider_calls_total\{outcome="5xx",provider="xapi"\} [1-9]', metrics)


def test_no_secret_reaches_a_response_a_log_line_or_the_request_log(
        linked: Linked, captured: Captured, obs_client: TestClient, obs_container: Container) -> None:
    """Every secret of this test (the LRS credentials and their Basic form, lmsgate's API key and
    its Basic form) is grepped for in every response, every log line and every request-log row,
    after a tour that makes the provider echo them back."""
    username, password, pair, *_ = linked.secrets
    tenant = linked.tenant
    linked.sim.script(status(400, {"X-Echo": f"Basic {pair}"},
                             {"error": "bad", "echo": f"{username}:{password}", "password": password},
                             path="/statements"))
    tour = [
        tenant.post("/unified/lms/users/learner-1/completions", json=completion()),  # provider 400, echoed
        tenant.post("/unified/lms/users/learner-1/completions", json=completion()),
        tenant.get("/unified/lms/completions", params={"raw": "true"}),
        tenant.post(f"/accounts/{linked.account_id}/test", params={"raw": "true"}),
        tenant.patch(f"/accounts/{linked.account_id}", json={"credentials": {"password": password}}),
        tenant.get(f"/accounts/{linked.account_id}"),
        tenant.get("/accounts"),
        tenant.get("/requests/logs", params={"include": "step_logs", "page_size": 100}),
        obs_client.get("/unified/lms/completions", headers={"Authorization": basic(tenant.api_key + "x"),
                                                            "x-account-id": linked.account_id}),
        obs_client.get(f"/unified/lms/completions?proxy[api_key]={password}",
                       headers={"Authorization": basic(tenant.api_key), "x-account-id": linked.account_id}),
        obs_client.get("/metrics"),
        # Bodies the request log cannot parse: one cut at its size limit, and a form. Their
        # text is kept, and held the password in the clear.
        tenant.post("/accounts", headers={"content-type": "application/json"},
                    content='{"provider":"xapi","credentials":{"username":"u","password":' + json.dumps(password)
                    + "}," + " " * 20_000 + '"origin_owner_id":"x"}'),
        tenant.post("/accounts", headers={"content-type": "application/x-www-form-urlencoded"},
                    content=f"provider=xapi&password={password}"),
        # The API key in a query parameter of no secret-sounding name: the access log kept it.
        obs_client.get(f"/accounts?foo={tenant.api_key}", headers={"Authorization": basic(tenant.api_key)}),
    ]
    assert tour[0].status_code == 400 and tour[1].status_code == 201, (tour[0].text, tour[1].text)
    for entry in tenant.get("/requests/logs", params={"page_size": 100}).json()["data"]:
        tour.append(tenant.get(f"/requests/logs/{entry['request_id']}"))
    texts = [_read(r) for r in [*tour, *captured.responses]]
    with obs_container.engine.connect() as conn:
        rows = [json.dumps(dict(r._mapping), default=str) for r in conn.execute(
            select(t.request_logs).where(t.request_logs.c.project_id == tenant.project_id))]
        stored = [json.dumps(dict(r._mapping), default=str) for r in conn.execute(select(t.accounts))]
        stored += [json.dumps(dict(r._mapping), default=str) for r in conn.execute(select(t.api_keys))]
    assert len(rows) >= 7
    # The test's own HTTP client (TestClient is httpx) logs the URLs this test sends, the
    # password in a query string among them: the harness's line, not lmsgate's. lmsgate's
    # access line for that request is checked below.
    log_text = "\n".join(line for line in captured.stream.getvalue().splitlines()
                         if not ('"logger":"httpx"' in line and "http://testserver/" in line))
    assert any(line.get("logger") == "lmsgate.access" for line in captured.lines)
    assert any(line.get("logger") == "lmsgate.http" for line in captured.lines)
    # the secret in the query string is masked in the access log and the request log
    assert "proxy%5Bapi_key%5D=%5BREDACTED%5D" in log_text or "proxy[api_key]=[REDACTED]" in log_text
    for secret in linked.secrets:
        for where, text in [*(("response", x) for x in texts), ("logs", log_text),
                            *(("request_logs", x) for x in rows), *(("database", x) for x in stored)]:
            assert secret not in text, f"{secret[:8]}… found in {where}: {text[:300]}"


def test_access_log_lines_are_json_with_the_request_id(obs_tenant: Tenant, captured: Captured) -> None:
    resp = obs_tenant.get("/unified/lms/completions", headers={"x-request-id": f"trace-{secrets.token_hex(4)}"})
    access = [line for line in captured.lines if line.get("logger") == "lmsgate.access"]
    (line,) = [a for a in access if a.get("request_id") == resp.headers["x-request-id"]]
    assert line["status"] == 200 and line["method"] == "GET" and line["operation"] == "lms_list_completions"
    assert line["project_id"] == obs_tenant.project_id and line["account_id"] == obs_tenant.account_id
    assert line["ts"].endswith("Z") and line["level"] == "info" and line["duration_ms"] > 0


def test_metrics_count_requests_per_operation(obs_tenant: Tenant, obs_client: TestClient,
                                              obs_container: Container) -> None:
    before = obs_client.get("/metrics").text
    obs_tenant.get("/unified/lms/users")
    obs_tenant.post("/unified/lms/users/m1/completions", json=SEED_COMPLETION)
    text = obs_client.get("/metrics").text
    assert text != before
    assert re.search(r'lmsgate_http_requests_total\{method="GET",operation="lms_list_users",status="200"\}', text)
    assert re.search(r'lmsgate_http_requests_total\{method="POST",operation="lms_create_user_completion",'
                     r'status="201"\}', text)
    assert 'lmsgate_http_request_duration_seconds_bucket{le="0.005",operation="lms_list_users"}' in text
    # The depth counts every project's pending deliveries in the database, which other test
    # modules share: it must be what the store says, not a fixed number.
    depth = re.search(r"^lmsgate_delivery_queue_depth (\S+)$", text, re.MULTILINE)
    assert depth and float(depth.group(1)) == obs_container.deliveries.store.queue_depth()
    assert "lmsgate_request_logs_pending" in text


def test_metrics_can_require_a_token(obs_container: Container, tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = obs_container.settings.model_copy(update={
        "metrics_token": SecretStr("scrape-token-123456"), "vault_key_file": shared_vault_key_file()})
    locked = bootstrap(settings)
    with TestClient(create_app(locked), raise_server_exceptions=False) as client:
        assert_stackone_error(client.get("/metrics"), 401, "Bearer")
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123456"}).status_code == 200
    locked.engine.dispose()


def test_rate_limit_refusals_are_counted(obs_container: Container, tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = obs_container.settings.model_copy(update={
        "rate_limit_per_minute": 2, "vault_key_file": shared_vault_key_file()})
    limited = bootstrap(settings)
    with TestClient(create_app(limited), raise_server_exceptions=False) as client:
        tenant = make_tenant(client, limited)
        statuses = [tenant.get("/unified/lms/users").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert 'lmsgate_rate_limited_total{reason="api_key"} 1.0' in client.get("/metrics").text
    limited.engine.dispose()
