"""Tenant isolation, endpoint by endpoint: project A's key never reaches project B's data.

Project B (``other_tenant``) gets one of everything: a learner, content with a category and a
skill, a course, a completion, an assignment, a second linked account, request logs and list
cursors. Then every endpoint is called with project A's key (``tenant``) aimed at B's things:
B's account in ``x-account-id``, B's record ids in the path on A's own account, B's account
ids on ``/accounts``, B's log ids, B's cursors. Each answer must be a 404 (or a 400 for a
cursor) in StackOne's shape, or a list without any of B's records, and no answer may contain
any of B's ids or values. B's data must be unchanged afterwards.

``CASES`` has one entry per endpoint. ``test_every_endpoint_has_an_isolation_case`` walks the
app's routes and fails when an endpoint appears without one: add it to ``CASES`` (or, for an
endpoint that serves no tenant data at all, to ``PUBLIC`` with the reason).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from conftest import make_tenant
from lmsgate.bootstrap import Container
from support import SEED_COMPLETION, Tenant, assert_stackone_error

PUBLIC = {
    "GET /health": "liveness only",
    "GET /metrics": "counts by operation, status and provider; names no tenant (see test_metrics_name_no_tenant)",
}
"""Endpoints that serve no tenant data, with the reason. FastAPI's own /docs and /openapi.json
are not APIRoutes and are not listed."""


@dataclass
class World:
    a: Tenant
    b: Tenant
    ids: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    """Every string of B's that must never appear in an answer to A."""

    def b_headers(self) -> dict[str, str]:
        """A's key, B's account."""
        return {"x-account-id": self.b.account_id}

    def check(self, resp: httpx.Response, status: int = 404, *mentions: str) -> None:
        assert_stackone_error(resp, status, *mentions)
        self.no_leak(resp)

    def no_leak(self, resp: httpx.Response) -> None:
        text = resp.text + " ".join(f"{k}: {v}" for k, v in resp.headers.items())
        sent = str(resp.request.url) + " ".join(resp.request.headers.values()) + resp.request.content.decode()
        leaked = [s for s in self.secrets if s in text and s not in sent]
        assert not leaked, f"{resp.request.method} {resp.request.url} leaked {leaked}: {resp.text[:500]}"


@pytest.fixture(scope="module")
def world(app_client: TestClient, container: Container) -> World:
    """Built once per backend: every case leaves B unchanged (that is what is tested), and A's
    own writes do not matter to the others."""
    tenant, b = make_tenant(app_client, container), make_tenant(app_client, container)
    w = World(a=tenant, b=b)
    content = b.put("/unified/lms/content", json={
        "external_reference": "b-secret-content", "title": "B's confidential course material",
        "categories": [{"name": "B-category-xyz"}], "skills": [{"name": "B-skill-xyz"}]})
    assert content.status_code == 201, content.text
    w.ids["content"] = content.json()["data"]["id"]
    course = b.put("/unified/lms/courses", json={"external_reference": "b-secret-course", "title": "B course title"})
    w.ids["course"] = course.json()["data"]["id"]
    user = b.put("/unified/lms/users/b-learner-7", json={"name": "Bea Secret", "email": "bea@b.example",
                                                         "external_reference": "b-learner-ext"})
    assert user.status_code == 201, user.text
    w.ids["user"] = "b-learner-7"
    completion = b.post("/unified/lms/users/b-learner-7/completions",
                        json={**SEED_COMPLETION, "learning_object_external_reference": "b-secret-content"})
    w.ids["completion"] = completion.json()["data"]["id"]
    assignment = b.post("/unified/lms/users/b-learner-7/assignments",
                        json={"learning_object_external_reference": "b-secret-content"})
    w.ids["assignment"] = assignment.json()["data"]["id"]
    w.ids["category"] = b.get("/unified/lms/categories").json()["data"][0]["id"]
    w.ids["skill"] = b.get("/unified/lms/skills").json()["data"][0]["id"]
    linked = b.post("/accounts", json={"provider": "local", "origin_owner_id": "b-owner",
                                       "origin_owner_name": "B Owner Inc"})
    assert linked.status_code == 201, linked.text
    w.ids["second_account"] = linked.json()["id"]
    for _ in range(2):  # enough for a cursor at page_size=1
        b.post("/unified/lms/users/b-learner-7/completions",
               json={**SEED_COMPLETION, "completed_at": f"2022-0{_ + 1}-01T00:00:00Z"})
    w.ids["completions_cursor"] = b.get("/unified/lms/completions", params={"page_size": 1}).json()["next"]
    queued = b.put("/unified/lms/content", headers={"Prefer": "respond-async"},
                   json={"external_reference": "b-async-content", "title": "B queued"})
    assert queued.status_code == 202, queued.text
    w.ids["delivery"] = queued.json()["data"]["id"]
    logs = b.get("/requests/logs", params={"page_size": 1}).json()
    w.ids["log"] = logs["data"][0]["request_id"]
    w.ids["logs_cursor"] = logs["next"]
    w.secrets = [b.account_id, b.project_id, b.api_key, *w.ids.values(), "b-secret-content", "b-secret-course",
                 "B's confidential", "Bea Secret", "bea@b.example", "b-learner-ext", "B-category-xyz",
                 "B-skill-xyz", "B Owner Inc", "b-owner"]
    # A has records of its own, so lists have something to show.
    assert tenant.post("/unified/lms/users/a-learner/completions", json=SEED_COMPLETION).status_code == 201
    return w


def _lms(path: str, *, kind: str, method: str = "GET", body: Any = None) -> Callable[[World], None]:
    """An /unified/lms endpoint: B's account via x-account-id, then B's ids on A's account."""

    def case(w: World) -> None:
        filled = path.format(**w.ids)
        w.check(w.a.request(method, filled, headers=w.b_headers(), json=body), 404, "x-account-id")
        resp = w.a.request(method, filled, json=body)
        if kind == "record":  # B's id on A's account: not found
            w.check(resp, 404)
        elif kind == "list":
            assert resp.status_code == 200, resp.text
            w.no_leak(resp)
            w.check(w.a.get(filled, params={"next": w.ids["completions_cursor"]}), 400, "next")
        else:  # a write on A's own account is A's business; it must only not touch or show B's
            assert resp.status_code < 500, resp.text
            w.no_leak(resp)

    return case


def _accounts(method: str, suffix: str = "", body: Any = None) -> Callable[[World], None]:
    def case(w: World) -> None:
        for account in (w.b.account_id, w.ids["second_account"]):
            w.check(w.a.request(method, f"/accounts/{account}{suffix}", json=body), 404, "not found")

    return case


def _list_accounts(w: World) -> None:
    resp = w.a.get("/accounts", params={"account_ids": f"{w.b.account_id},{w.ids['second_account']}"})
    assert resp.status_code == 200 and resp.json() == [], resp.text
    everything = w.a.get("/accounts", params={"page_size": 1000})
    assert {a["id"] for a in everything.json()} == {w.a.account_id}
    w.no_leak(everything)


def _create_account(w: World) -> None:
    # A pinned id that B already uses cannot be taken (ids are global), and the answer says no more.
    resp = w.a.post("/accounts", json={"id": w.b.account_id, "provider": "local", "origin_owner_id": "a",
                                       "origin_owner_name": "A"})
    w.check(resp, 409)
    created = w.a.post("/accounts", json={"provider": "local", "origin_owner_id": "a", "origin_owner_name": "A"})
    assert created.status_code == 201
    w.no_leak(created)


def _list_logs(w: World) -> None:
    resp = w.a.get("/requests/logs", params={"page_size": 1000, "filter[account_ids]": w.b.account_id})
    assert resp.status_code == 200 and resp.json()["data"] == [], resp.text
    everything = w.a.get("/requests/logs", params={"page_size": 1000, "include": "step_logs"})
    assert everything.json()["data"], "A's own calls are logged"
    entries = everything.json()["data"]
    assert {d["project_id"] for d in entries} == {w.a.project_id}
    # A's log holds A's own earlier calls, whose paths name B's ids that A sent: those may show.
    own = json.dumps([{k: v for k, v in d.items() if k not in ("path", "url")} for d in entries])
    leaked = [s for s in w.secrets if s in own]
    assert not leaked, leaked
    w.check(w.a.get("/requests/logs", params={"next": w.ids["logs_cursor"]}), 400, "next")


def _list_deliveries(w: World) -> None:
    for params in ({"account_id": w.b.account_id}, {"page_size": 1000}):
        resp = w.a.get("/deliveries", params=params)
        assert resp.status_code == 200, resp.text
        assert w.ids["delivery"] not in {d["id"] for d in resp.json()["data"]}
        w.no_leak(resp)


def _retry_deliveries(w: World) -> None:
    resp = w.a.post("/deliveries/retry", json={"account_id": w.b.account_id, "status": "pending"})
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 200:
        assert resp.json()["data"]["retried"] == 0
    w.no_leak(resp)


def _delivery(method: str, suffix: str = "") -> Callable[[World], None]:
    def case(w: World) -> None:
        w.check(w.a.request(method, f"/deliveries/{w.ids['delivery']}{suffix}"), 404, "not found")

    return case


def _get_log(w: World) -> None:
    w.check(w.a.get(f"/requests/logs/{w.ids['log']}"), 404, "not found")


CASES: dict[str, Callable[[World], None]] = {
    "POST /unified/lms/users/{id}/completions": _lms("/unified/lms/users/{user}/completions", kind="write",
                                                     method="POST", body=SEED_COMPLETION),
    "GET /unified/lms/users/{id}/completions": _lms("/unified/lms/users/{user}/completions", kind="list"),
    "GET /unified/lms/users/{id}/completions/{subResourceId}":
        _lms("/unified/lms/users/{user}/completions/{completion}", kind="record"),
    "DELETE /unified/lms/users/{id}/completions/{subResourceId}":
        _lms("/unified/lms/users/{user}/completions/{completion}", kind="record", method="DELETE"),
    "GET /unified/lms/completions": _lms("/unified/lms/completions", kind="list"),
    "GET /unified/lms/completions/{id}": _lms("/unified/lms/completions/{completion}", kind="record"),
    "POST /unified/lms/users/{id}/assignments": _lms(
        "/unified/lms/users/{user}/assignments", kind="write", method="POST",
        body={"learning_object_external_reference": "b-secret-content"}),
    "GET /unified/lms/users/{id}/assignments": _lms("/unified/lms/users/{user}/assignments", kind="list"),
    "GET /unified/lms/users/{id}/assignments/{subResourceId}":
        _lms("/unified/lms/users/{user}/assignments/{assignment}", kind="record"),
    "GET /unified/lms/assignments": _lms("/unified/lms/assignments", kind="list"),
    "GET /unified/lms/assignments/{id}": _lms("/unified/lms/assignments/{assignment}", kind="record"),
    "PUT /unified/lms/content": _lms("/unified/lms/content", kind="write", method="PUT",
                                     body={"external_reference": "a-own-content", "title": "A"}),
    "POST /unified/lms/content/batch": _lms("/unified/lms/content/batch", kind="write", method="POST",
                                            body={"items": [{"external_reference": "a-batch", "title": "A"}]}),
    "GET /unified/lms/content": _lms("/unified/lms/content", kind="list"),
    "GET /unified/lms/content/{id}": _lms("/unified/lms/content/{content}", kind="record"),
    "PATCH /unified/lms/content/{id}": _lms("/unified/lms/content/{content}", kind="record", method="PATCH",
                                            body={"title": "A overwrote it"}),
    "GET /unified/lms/courses": _lms("/unified/lms/courses", kind="list"),
    "GET /unified/lms/courses/{id}": _lms("/unified/lms/courses/{course}", kind="record"),
    "PUT /unified/lms/courses": _lms("/unified/lms/courses", kind="write", method="PUT",
                                     body={"external_reference": "a-course", "title": "A"}),
    "GET /unified/lms/users": _lms("/unified/lms/users", kind="list"),
    "GET /unified/lms/users/{id}": _lms("/unified/lms/users/{user}", kind="record"),
    "PUT /unified/lms/users/{id}": _lms("/unified/lms/users/{user}", kind="write", method="PUT",
                                        body={"name": "A's own learner of that id"}),
    "GET /unified/lms/categories": _lms("/unified/lms/categories", kind="list"),
    "GET /unified/lms/categories/{id}": _lms("/unified/lms/categories/{category}", kind="record"),
    "GET /unified/lms/skills": _lms("/unified/lms/skills", kind="list"),
    "GET /unified/lms/skills/{id}": _lms("/unified/lms/skills/{skill}", kind="record"),
    "GET /accounts": _list_accounts,
    "POST /accounts": _create_account,
    "GET /accounts/{id}": _accounts("GET"),
    "PATCH /accounts/{id}": _accounts("PATCH", body={"label": "taken over", "status": "inactive"}),
    "DELETE /accounts/{id}": _accounts("DELETE"),
    "POST /accounts/{id}/test": _accounts("POST", "/test"),
    "GET /requests/logs": _list_logs,
    "GET /requests/logs/{id}": _get_log,
    "GET /deliveries": _list_deliveries,
    "POST /deliveries/retry": _retry_deliveries,
    "GET /deliveries/{id}": _delivery("GET"),
    "POST /deliveries/{id}/retry": _delivery("POST", "/retry"),
    "GET /accounts/{id}/delivery": _accounts("GET", "/delivery"),
    "PATCH /accounts/{id}/delivery": _accounts("PATCH", "/delivery", body={"fallback_to_async": True}),
}


def _endpoints(app: Any) -> set[str]:
    out = set()
    for context in iter_route_contexts(app.routes):
        route = context.route
        if isinstance(route, APIRoute):
            out |= {f"{m} {route.path}" for m in route.methods if m != "HEAD"}
    return out


def test_every_endpoint_has_an_isolation_case(tenant: Tenant) -> None:
    endpoints = _endpoints(tenant.client.app)
    missing = sorted(endpoints - set(CASES) - set(PUBLIC))
    assert not missing, (f"endpoints without a tenant-isolation case: {missing}; add them to CASES in "
                         f"{__file__} (or to PUBLIC if they serve no tenant data)")
    stale = sorted(set(CASES) - endpoints)
    assert not stale, f"isolation cases for endpoints that no longer exist: {stale}"


def _snapshot(b: Tenant, ids: dict[str, str]) -> list[Any]:
    """B's data, less what B's own background delivery may add meanwhile."""
    return [_settled(b.get(path).json()) for path in (
        "/unified/lms/completions?page_size=1000", "/unified/lms/assignments?page_size=1000",
        "/unified/lms/content?page_size=1000", "/unified/lms/courses?page_size=1000",
        "/unified/lms/users?page_size=1000", f"/accounts/{ids['second_account']}", f"/accounts/{b.account_id}",
        f"/accounts/{b.account_id}/delivery")] + [_without_clock(b.get(f"/deliveries/{ids['delivery']}").json())]


def _settled(body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        body["data"] = [d for d in body["data"] if d.get("external_reference") != "b-async-content"]
    return body


def _without_clock(delivery: dict[str, Any]) -> dict[str, Any]:
    """A delivery as far as another project could have changed it (the worker may run meanwhile)."""
    data = delivery.get("data") or {}
    return {k: data.get(k) for k in ("id", "account_id", "request")}


@pytest.mark.parametrize("endpoint", sorted(CASES))
def test_project_a_cannot_reach_project_b(world: World, endpoint: str) -> None:
    before = _snapshot(world.b, world.ids)
    CASES[endpoint](world)
    assert _snapshot(world.b, world.ids) == before, "B's data changed"


def test_metrics_name_no_tenant(world: World) -> None:
    resp = world.a.client.get("/metrics")
    assert resp.status_code == 200
    for value in [world.a.project_id, world.a.account_id, *world.secrets]:
        assert value not in resp.text
