"""Authentication and tenancy: keys, linked accounts, and what another project can see."""

from __future__ import annotations

import base64

import pytest
from support import SEED_COMPLETION, Tenant, assert_stackone_error, basic

PATHS = [
    ("GET", "/unified/lms/completions"),
    ("GET", "/unified/lms/users"),
    ("POST", "/unified/lms/users/u/completions"),
    ("PUT", "/unified/lms/content"),
]


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_missing_key_is_401(tenant: Tenant, method: str, path: str) -> None:
    resp = tenant.client.request(method, path, headers={"x-account-id": tenant.account_id}, json={})
    assert_stackone_error(resp, 401, "API key")


@pytest.mark.parametrize(
    "authorization",
    [
        basic("lmsg_not-a-real-key-at-all"),
        "Bearer something",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"\xff\xfe").decode(),
        basic(""),
    ],
)
def test_bad_key_is_401(tenant: Tenant, authorization: str) -> None:
    resp = tenant.client.get(
        "/unified/lms/completions", headers={"Authorization": authorization, "x-account-id": tenant.account_id}
    )
    assert_stackone_error(resp, 401)


@pytest.mark.parametrize("path", ["/unified/lms/completions", "/accounts", "/unified/lms/content"])
def test_a_key_that_is_not_ascii_is_401(tenant: Tenant, path: str) -> None:
    """Bytes outside ASCII in the header were a 500: in plain text on the completion lane."""
    resp = tenant.client.get(path, headers={"Authorization": "Basic \u00fc".encode("latin-1"),
                                            "x-account-id": tenant.account_id})
    assert_stackone_error(resp, 401)


def test_password_is_ignored(tenant: Tenant) -> None:
    auth = "Basic " + base64.b64encode(f"{tenant.api_key}:anything".encode()).decode()
    resp = tenant.client.get("/unified/lms/completions",
                             headers={"Authorization": auth, "x-account-id": tenant.account_id})
    assert resp.status_code == 200


def test_revoked_key_is_401(tenant: Tenant) -> None:
    issued = tenant.container.tenancy.issue_key(tenant.project_id, "to-revoke")
    headers = {"Authorization": basic(issued.secret), "x-account-id": tenant.account_id}
    assert tenant.client.get("/unified/lms/completions", headers=headers).status_code == 200
    tenant.container.tenancy.revoke_key(issued.id)
    tenant.container.resolver.forget_keys()
    assert_stackone_error(tenant.client.get("/unified/lms/completions", headers=headers), 401)


def test_missing_account_header_is_400(tenant: Tenant) -> None:
    resp = tenant.client.get("/unified/lms/completions", headers={"Authorization": basic(tenant.api_key)})
    assert_stackone_error(resp, 400, "x-account-id")


def test_unknown_account_is_404(tenant: Tenant) -> None:
    resp = tenant.get("/unified/lms/completions", headers={"x-account-id": "no-such-account"})
    assert_stackone_error(resp, 404, "no-such-account")


def test_other_projects_account_looks_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    created = other_tenant.post("/unified/lms/users/u1/completions", json=SEED_COMPLETION)
    cid = created.json()["data"]["id"]
    foreign = {"x-account-id": other_tenant.account_id}
    unknown = tenant.get("/unified/lms/completions", headers={"x-account-id": "missing-account"}).json()
    for method, path in [
        ("GET", "/unified/lms/completions"),
        ("GET", f"/unified/lms/completions/{cid}"),
        ("DELETE", f"/unified/lms/users/u1/completions/{cid}"),
        ("POST", "/unified/lms/users/u1/completions"),
    ]:
        resp = tenant.request(method, path, headers=foreign, json=SEED_COMPLETION)
        body = assert_stackone_error(resp, 404)
        assert body["message"] == unknown["message"].replace("missing-account", other_tenant.account_id)
        assert cid not in resp.text
    # and the other project's record is untouched
    assert other_tenant.get(f"/unified/lms/completions/{cid}").status_code == 200


def test_own_records_are_not_visible_from_another_account(tenant: Tenant, other_tenant: Tenant) -> None:
    cid = other_tenant.post("/unified/lms/users/u1/completions", json=SEED_COMPLETION).json()["data"]["id"]
    assert_stackone_error(tenant.get(f"/unified/lms/completions/{cid}"), 404)
    assert tenant.get("/unified/lms/completions").json()["data"] == []


def test_disabled_account_is_412(tenant: Tenant) -> None:
    tenant.container.tenancy.set_account_status(tenant.account_id, "disabled")
    assert_stackone_error(tenant.get("/unified/lms/completions"), 412, "disabled")
    assert_stackone_error(tenant.post("/unified/lms/users/u/completions", json=SEED_COMPLETION), 412)
    tenant.container.tenancy.set_account_status(tenant.account_id, "active")
    assert tenant.get("/unified/lms/completions").status_code == 200


def test_keys_are_stored_hashed(tenant: Tenant) -> None:
    from sqlalchemy import select

    from lmsgate.store import tables as t

    with tenant.container.engine.connect() as conn:
        rows = conn.execute(select(t.api_keys).where(t.api_keys.c.project_id == tenant.project_id)).all()
    assert rows
    for row in rows:
        assert tenant.api_key not in (row.hash, row.prefix)
        assert len(row.hash) == 64


def test_unknown_route_is_404_in_stackone_shape(tenant: Tenant) -> None:
    assert_stackone_error(tenant.get("/unified/lms/nothing-here"), 404)
