"""The linked-accounts API: StackOne's shapes, validation against the connector spec, disable,
delete, tenancy, and credentials that never come back out."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from linking import completion, link, new_secret, on_account, xapi_setup
from support import SEED_COMPLETION, Tenant, assert_stackone_error, basic

LINKED_ACCOUNT_KEYS = {
    "id", "provider", "provider_name", "status", "status_reasons", "origin_owner_id", "origin_owner_name",
    "origin_username", "credentials", "setup_information", "label", "created_at", "updated_at",
}
UNREACHABLE = "http://127.0.0.1:9/xapi/"
"""An allowed address where nothing listens: linking never calls the provider."""


def _xapi(tenant: Tenant, **fields: object) -> tuple[dict, str]:
    password = new_secret("pw")
    account = link(tenant, "xapi", xapi_setup(UNREACHABLE), {"username": "lrs-key", "password": password},
                   **fields)
    return account, password


def test_local_account_is_listed_in_stackone_shape(tenant: Tenant) -> None:
    resp = tenant.get("/accounts")
    assert resp.status_code == 200
    accounts = resp.json()
    assert isinstance(accounts, list)
    (mine,) = [a for a in accounts if a["id"] == tenant.account_id]
    assert set(mine) == LINKED_ACCOUNT_KEYS
    assert mine["provider"] == "local" and mine["status"] == "active"
    assert mine["credentials"] is None
    assert mine["created_at"].endswith("Z") and mine["updated_at"].endswith("Z")
    assert isinstance(mine["origin_owner_id"], str) and isinstance(mine["origin_owner_name"], str)


def test_link_an_xapi_account_and_read_it_back(tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    account, password = _xapi(tenant, label="Acme LRS", origin_username="admin@acme.test")
    assert set(account) == LINKED_ACCOUNT_KEYS
    assert account["provider"] == "xapi" and account["provider_name"] == "xAPI Learning Record Store"
    assert account["label"] == "Acme LRS" and account["origin_username"] == "admin@acme.test"
    assert account["credentials"] is None
    assert account["setup_information"] == {
        **xapi_setup(UNREACHABLE), "xapi_version": "1.0.3", "query_filters": "lrs", "auth_type": "basic",
    }
    got = tenant.get(f"/accounts/{account['id']}")
    assert got.status_code == 200 and got.json() == account
    listed = tenant.get("/accounts", params={"provider": "xapi"}).json()
    assert [a["id"] for a in listed] == [account["id"]]
    for text in (got.text, tenant.get("/accounts").text, caplog.text):
        assert password not in text
        assert "lrs-key" not in text


@pytest.mark.parametrize(
    ("setup", "credentials", "mentions"),
    [
        ({"activity_base_iri": "https://x.test/", "actor_homepage": "https://x.test"},
         {"username": "u", "password": "p"}, ["setup_information.endpoint", "required"]),
        (xapi_setup("not a url"), {"username": "u", "password": "p"}, ["setup_information.endpoint", "http"]),
        (xapi_setup("ftp://lrs.test/"), {"username": "u", "password": "p"}, ["setup_information.endpoint"]),
        (xapi_setup(UNREACHABLE, password="leaked-in-setup"), {"username": "u"},
         ["setup_information.password", "credentials"]),
        (xapi_setup(UNREACHABLE), {"username": "u", "password": "p", "endpoint": UNREACHABLE},
         ["credentials.endpoint", "setup_information"]),
        (xapi_setup(UNREACHABLE, colour="blue"), {"username": "u", "password": "p"},
         ["setup_information.colour", "not a setting"]),
        (xapi_setup(UNREACHABLE), {"username": "u"}, ["credentials.password", "required"]),
        (xapi_setup(UNREACHABLE), {"username": "u", "password": 12345}, ["credentials.password", "string"]),
        (xapi_setup(UNREACHABLE, xapi_version="0.9"), {"username": "u", "password": "p"},
         ["setup_information.xapi_version", "1.0.3"]),
        (xapi_setup(UNREACHABLE, max_requests_per_second="fast"), {"username": "u", "password": "p"},
         ["setup_information.max_requests_per_second", "number"]),
        (xapi_setup(UNREACHABLE, max_requests_per_second=1e-320), {"username": "u", "password": "p"},
         ["setup_information.max_requests_per_second", "at least 0.001"]),  # was taken: every call a 408
        (xapi_setup(UNREACHABLE, auth_type="saml"), {"username": "u", "password": "p"},
         ["setup_information.auth_type", "oauth2_client_credentials"]),
        (xapi_setup(UNREACHABLE, auth_type="oauth2_client_credentials", token_url=UNREACHABLE,
                    client_id="c"), {}, ["credentials.client_secret", "required"]),
        (xapi_setup(UNREACHABLE, auth_type="oauth2_client_credentials", token_url=UNREACHABLE, client_id="c"),
         {"client_secret": "s", "password": "p"}, ["credentials.password", "oauth2_client_credentials"]),
        (xapi_setup("http://user:pass@lrs.test/"), {"username": "u", "password": "p"},
         ["setup_information.endpoint", "credentials"]),
    ],
)
def test_settings_are_checked_against_the_connector_spec(tenant: Tenant, setup: dict, credentials: dict,
                                                         mentions: list[str]) -> None:
    body = {"provider": "xapi", "origin_owner_id": "c", "origin_owner_name": "C",
            "setup_information": setup, "credentials": credentials}
    resp = tenant.post("/accounts", json=body)
    assert_stackone_error(resp, 400, *mentions)
    assert "leaked-in-setup" not in resp.text


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"provider": "moodle", "origin_owner_id": "c", "origin_owner_name": "C"}, ["provider", "xapi", "local"]),
        ({"provider": "local", "origin_owner_name": "C"}, ["origin_owner_id"]),
        ({"provider": "local", "origin_owner_id": "c", "origin_owner_name": "C", "setup_information": {"a": "b"}},
         ["setup_information.a", "takes none"]),
        ({"provider": "local", "origin_owner_id": "c", "origin_owner_name": "C", "id": "bad id!"}, ["id"]),
    ],
)
def test_bad_link_requests_are_400(tenant: Tenant, body: dict, mentions: list[str]) -> None:
    assert_stackone_error(tenant.post("/accounts", json=body), 400, *mentions)


def test_a_pinned_id_that_exists_is_409(tenant: Tenant) -> None:
    body = {"provider": "local", "origin_owner_id": "c", "origin_owner_name": "C", "id": tenant.account_id}
    assert_stackone_error(tenant.post("/accounts", json=body), 409, tenant.account_id)


def test_list_filters_and_pages(tenant: Tenant) -> None:
    a = link(tenant, "local", None, None, origin_owner_id="owner-a")
    b, _ = _xapi(tenant, origin_owner_id="owner-b")
    c = link(tenant, "local", None, None, origin_owner_id="owner-b")
    tenant.patch(f"/accounts/{c['id']}", json={"status": "inactive"})

    def ids(**params: object) -> list[str]:
        resp = tenant.get("/accounts", params=params)
        assert resp.status_code == 200, resp.text
        return [x["id"] for x in resp.json()]

    assert ids() == [tenant.account_id, a["id"], b["id"], c["id"]]
    assert ids(providers="local") == [tenant.account_id, a["id"], c["id"]]
    assert ids(origin_owner_id="owner-b") == [b["id"], c["id"]]
    assert ids(origin_owner_ids=["owner-a", "owner-b"], status="active") == [a["id"], b["id"]]
    assert ids(status="inactive") == [c["id"]]
    assert ids(account_ids=f"{a['id']},{c['id']}") == [a["id"], c["id"]]
    assert ids(page_size=2, page=2) == [b["id"], c["id"]]
    assert ids(page_size=2, page=3) == []
    assert_stackone_error(tenant.get("/accounts", params={"page_size": "0"}), 400, "page_size")
    assert_stackone_error(tenant.get("/accounts", params={"status": "gone"}), 400, "status")


def test_patch_changes_only_what_is_sent(tenant: Tenant) -> None:
    account, old_password = _xapi(tenant, label="before")
    row_before = tenant.container.tenancy.get_account(account["id"])
    resp = tenant.patch(f"/accounts/{account['id']}", json={"label": "after"})
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert after["label"] == "after"
    assert after["setup_information"] == account["setup_information"]
    assert after["origin_owner_name"] == account["origin_owner_name"]

    new_password = new_secret("pw2")
    resp = tenant.patch(f"/accounts/{account['id']}",
                        json={"credentials": {"password": new_password}, "setup_information": {"xapi_version": None}})
    assert resp.status_code == 200, resp.text
    resp = tenant.patch(f"/accounts/{account['id']}",
                        json={"credentials": {"username": "lrs-key", "password": new_password},
                              "setup_information": {"endpoint": "http://127.0.0.1:10/xapi/"}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["setup_information"]["endpoint"] == "http://127.0.0.1:10/xapi/"
    assert resp.json()["setup_information"]["xapi_version"] == "1.0.3"  # removed → back to the default
    assert new_password not in resp.text and old_password not in resp.text
    row_after = tenant.container.tenancy.get_account(account["id"])
    assert row_after.credentials != row_before.credentials
    from lmsgate.connectors.linking import open_credentials

    assert open_credentials(tenant.container.vault, row_after) == {"username": "lrs-key", "password": new_password}

    assert_stackone_error(tenant.patch(f"/accounts/{account['id']}", json={"provider": "local"}), 400, "provider")
    assert_stackone_error(tenant.patch(f"/accounts/{account['id']}", json={"status": "paused"}), 400, "status")
    assert_stackone_error(tenant.patch(f"/accounts/{account['id']}", json={"origin_owner_id": None}), 400,
                          "origin_owner_id")


def test_stored_credentials_are_not_sent_to_a_new_address(tenant: Tenant) -> None:
    """Any key of the project could PATCH the endpoint (or token_url) to a server of its own and
    receive the customer's LRS password with the next call: a new address needs the
    credentials sent again, all of them."""
    account, password = _xapi(tenant)
    before = tenant.container.tenancy.get_account(account["id"])
    for patch in ({"setup_information": {"endpoint": "http://127.0.0.1:18901/attacker/"}},
                  {"setup_information": {"endpoint": "http://127.0.0.1:18901/attacker/"},
                   "credentials": {"username": "attacker"}}):  # the stored password would still go
        resp = tenant.patch(f"/accounts/{account['id']}", json=patch)
        assert_stackone_error(resp, 400, "credentials.", "setup_information.endpoint", "send them again")
        assert password not in resp.text
    after = tenant.container.tenancy.get_account(account["id"])
    assert (after.config, after.credentials) == (before.config, before.credentials)
    oauth = {**xapi_setup("http://127.0.0.1:9/xapi/"), "auth_type": "oauth2_client_credentials",
             "token_url": "http://127.0.0.1:9/oauth/token", "client_id": "cid"}
    linked = link(tenant, "xapi", oauth, {"client_secret": new_secret("cs")})
    assert_stackone_error(tenant.patch(f"/accounts/{linked['id']}",
                                       json={"setup_information": {"token_url": "http://127.0.0.1:9/steal"}}),
                          400, "credentials.client_secret", "token_url")
    assert tenant.patch(f"/accounts/{linked['id']}", json={"setup_information": {"token_url": "http://127.0.0.1:9/t2"},
                        "credentials": {"client_secret": new_secret("cs2")}}).status_code == 200


@pytest.mark.parametrize(("endpoint", "mention"), [
    ("http://[::1", "not a valid URL"), ("http://127.0.0.1:99999/xapi/", "not a valid URL"),
    ("http://127.0.0.1:9/xapi/?api_key=abc", "secret in its query string"),
    ("http://127.0.0.1:9/xapi/?x=1&wstoken=abc", "secret in its query string"),
])
def test_unusable_endpoints_are_400(tenant: Tenant, endpoint: str, mention: str) -> None:
    body = {"provider": "xapi", "origin_owner_id": "c", "origin_owner_name": "C",
            "setup_information": xapi_setup(endpoint), "credentials": {"username": "u", "password": "p" * 8}}
    assert_stackone_error(tenant.post("/accounts", json=body), 400, "setup_information.endpoint", mention)


def test_an_endpoint_may_have_a_query_without_credentials(tenant: Tenant) -> None:
    body = {"provider": "xapi", "origin_owner_id": "c", "origin_owner_name": "C",
            "setup_information": xapi_setup("http://127.0.0.1:9/xapi/?passage=1&tokenizer=a"),
            "credentials": {"username": "u", "password": "p" * 8}}
    assert tenant.post("/accounts", json=body).status_code == 201


def test_a_page_past_any_account_is_400(tenant: Tenant) -> None:
    for page in ("99999999999999999999999", "9" * 5000):
        assert_stackone_error(tenant.get("/accounts", params={"page": page}), 400, "page")


def test_switching_auth_variant_drops_the_old_credentials(tenant: Tenant) -> None:
    account, password = _xapi(tenant)
    resp = tenant.patch(f"/accounts/{account['id']}", json={
        "setup_information": {"auth_type": "oauth2_client_credentials", "token_url": "http://127.0.0.1:9/token",
                              "client_id": "client-1"},
        "credentials": {"client_secret": "client-secret-1"},
    })
    assert resp.status_code == 200, resp.text
    setup = resp.json()["setup_information"]
    assert setup["auth_type"] == "oauth2_client_credentials" and setup["client_id"] == "client-1"
    from lmsgate.connectors.linking import open_credentials

    row = tenant.container.tenancy.get_account(account["id"])
    assert open_credentials(tenant.container.vault, row) == {"client_secret": "client-secret-1"}


def test_a_disabled_account_answers_412_until_enabled(tenant: Tenant) -> None:
    path = "/unified/lms/completions"
    assert tenant.get(path).status_code == 200
    resp = tenant.patch(f"/accounts/{tenant.account_id}", json={"status": "inactive"})
    assert resp.status_code == 200 and resp.json()["status"] == "inactive"
    assert_stackone_error(tenant.get(path), 412, tenant.account_id, "disabled")
    assert_stackone_error(tenant.post("/unified/lms/users/u1/completions", json=SEED_COMPLETION), 412)
    assert tenant.get(f"/accounts/{tenant.account_id}").status_code == 200  # the account itself is readable
    assert tenant.patch(f"/accounts/{tenant.account_id}", json={"status": "active"}).status_code == 200
    assert tenant.get(path).status_code == 200


def test_delete_removes_the_account_and_its_records(tenant: Tenant) -> None:
    local = link(tenant, "local", None, None)
    mine = on_account(tenant, local["id"])
    assert mine.post("/unified/lms/users/u1/completions", json=SEED_COMPLETION).status_code == 201
    key = tenant.container.store.account_key(local["id"])
    assert key is not None
    resp = tenant.delete(f"/accounts/{local['id']}")
    assert resp.status_code == 200
    assert resp.json()["id"] == local["id"] and set(resp.json()) == LINKED_ACCOUNT_KEYS
    assert_stackone_error(tenant.get(f"/accounts/{local['id']}"), 404, local["id"])
    assert_stackone_error(mine.get("/unified/lms/completions"), 404, local["id"])
    assert_stackone_error(tenant.delete(f"/accounts/{local['id']}"), 404)
    from sqlalchemy import func, select

    from lmsgate.store import tables as t

    with tenant.container.engine.connect() as conn:
        left = conn.execute(select(func.count()).select_from(t.completions)
                            .where(t.completions.c.account_key == key)).scalar()
    assert left == 0
    assert tenant.container.store.account_key(local["id"]) is None


def test_another_projects_accounts_look_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    account, _ = _xapi(other_tenant)
    for method in ("GET", "DELETE", "PATCH"):
        resp = tenant.request(method, f"/accounts/{account['id']}", json={"label": "x"})
        assert_stackone_error(resp, 404, account["id"])
    assert_stackone_error(tenant.post(f"/accounts/{account['id']}/test"), 404)
    assert account["id"] not in tenant.get("/accounts").text
    assert other_tenant.get(f"/accounts/{account['id']}").json()["label"] is None


def test_accounts_need_an_api_key(tenant: Tenant) -> None:
    assert_stackone_error(tenant.client.get("/accounts"), 401)
    bad = {"Authorization": basic("lmsg_not-a-real-key-at-all")}
    assert_stackone_error(tenant.client.post("/accounts", headers=bad, json={}), 401)


def test_an_operation_the_connector_lacks_answers_501(tenant: Tenant) -> None:
    account, _ = _xapi(tenant)
    xapi = on_account(tenant, account["id"])
    assert_stackone_error(xapi.get("/unified/lms/users"), 501, "xapi", "list_users")
    assert_stackone_error(xapi.put("/unified/lms/content", json={"external_reference": "c1", "title": "T"}),
                          501, "upsert_content")
    assert_stackone_error(xapi.get("/unified/lms/assignments"), 501, "list_assignments")


def test_testing_the_local_account(tenant: Tenant) -> None:
    resp = tenant.post(f"/accounts/{tenant.account_id}/test")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["statusCode"] == 200 and body["data"]["provider"] == "local"


def test_linking_refuses_addresses_the_ssrf_guard_blocks(tenant: Tenant) -> None:
    for url, reason in [("http://127.0.0.2:8080/xapi/", "loopback"), ("http://[::1]:8080/xapi/", "loopback"),
                        ("http://0.0.0.0:8080/", "unspecified")]:
        resp = tenant.post("/accounts", json={
            "provider": "xapi", "origin_owner_id": "c", "origin_owner_name": "C",
            "setup_information": xapi_setup(url), "credentials": {"username": "u", "password": "p"}})
        assert_stackone_error(resp, 400, "setup_information.endpoint", reason, "LMSGATE_OUTBOUND_ALLOW_NETWORKS")


def test_sealed_credentials_only_open_on_their_own_account(tenant: Tenant) -> None:
    first, password = _xapi(tenant)
    second, _ = _xapi(tenant)
    tenancy = tenant.container.tenancy
    stolen = tenancy.get_account(first["id"]).credentials
    tenancy.update_account(second["id"], credentials=stolen)
    resp = on_account(tenant, second["id"]).post("/unified/lms/users/u1/completions", json=completion())
    assert_stackone_error(resp, 500, "cannot be decrypted", second["id"])
    assert password not in resp.text


def test_the_database_holds_no_plaintext_secret(tenant: Tenant, backend: str) -> None:
    account, password = _xapi(tenant)
    sealed = tenant.container.tenancy.get_account(account["id"]).credentials
    assert sealed.startswith("v1.") and password not in sealed
    if backend != "sqlite":
        return
    database = Path(tenant.container.engine.url.database)
    files = [p for p in (database, database.with_name(database.name + "-wal")) if p.exists()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert password.encode() not in data, path
        assert b"lrs-key" not in data or b'"username"' not in data
