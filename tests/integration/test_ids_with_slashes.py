"""Learner ids holding ``/`` (IRIs, the usual xAPI account names), sent as ``%2F``.

The server decodes the path before routing, so such an id used to split into several
segments and every call on it answered 404 (see ``api/paths.py``)."""

from __future__ import annotations

from urllib.parse import quote

from support import SEED_COMPLETION, Tenant, assert_stackone_error

IRI = "https://idp.example.com/users/42"
ENCODED = quote(IRI, safe="")


def test_a_learner_id_with_slashes_round_trips_on_both_lanes(any_path_tenant: Tenant) -> None:
    tenant = any_path_tenant
    created = tenant.post(f"/unified/lms/users/{ENCODED}/completions", json=SEED_COMPLETION)
    assert created.status_code == 201, created.text
    completion_id = created.json()["data"]["id"]

    mine = tenant.get(f"/unified/lms/users/{ENCODED}/completions")
    assert mine.status_code == 200, mine.text
    assert [(c["id"], c["user_id"]) for c in mine.json()["data"]] == [(completion_id, IRI)]
    one = tenant.get(f"/unified/lms/users/{ENCODED}/completions/{completion_id}")
    assert one.status_code == 200 and one.json()["data"]["user_id"] == IRI
    learner = tenant.get(f"/unified/lms/users/{ENCODED}")
    assert learner.status_code == 200 and learner.json()["data"]["id"] == IRI
    everyone = tenant.get("/unified/lms/completions").json()["data"]
    assert [c["user_id"] for c in everyone] == [IRI]

    logs = tenant.get("/requests/logs", params={"page_size": "50"}).json()["data"]
    paths = {entry["path"] for entry in logs}
    assert "/unified/lms/users/https:%2F%2Fidp.example.com%2Fusers%2F42/completions" in paths, paths

    deleted = tenant.delete(f"/unified/lms/users/{ENCODED}/completions/{completion_id}")
    assert deleted.status_code == 200, deleted.text
    assert tenant.get(f"/unified/lms/users/{ENCODED}/completions").json()["data"] == []


def test_an_encoded_slash_outside_an_id_matches_no_route(tenant: Tenant) -> None:
    assert_stackone_error(tenant.get("/unified%2Flms/completions"), 404, "")


def test_a_nul_beside_an_encoded_slash_is_still_refused(any_path_tenant: Tenant) -> None:
    resp = any_path_tenant.post("/unified/lms/users/a%2Fb%00/completions", json=SEED_COMPLETION)
    assert_stackone_error(resp, 400, "id", "NUL")
    resp = any_path_tenant.get("/unified/lms/users/a%00%2Fb/completions")
    assert_stackone_error(resp, 400, "id", "NUL")


def test_an_id_whose_bytes_are_not_utf8_is_refused_not_merged(any_path_tenant: Tenant) -> None:
    """%FF and %FE were both decoded to U+FFFD: two learners became one, "\ufffd"."""
    tenant = any_path_tenant
    for path in ("/unified/lms/users/%FF/completions", "/unified/lms/users/a%FEb/completions"):
        assert_stackone_error(tenant.post(path, json=SEED_COMPLETION), 400, "path", "UTF-8")
        assert_stackone_error(tenant.get(path), 400, "path", "UTF-8")
    assert_stackone_error(tenant.put("/unified/lms/users/%C3", json={"name": "x"}), 400, "path", "UTF-8")
    # U+FFFD itself, sent as its UTF-8 bytes, is an id like any other
    created = tenant.post("/unified/lms/users/%EF%BF%BD/completions", json=SEED_COMPLETION)
    assert created.status_code == 201, created.text
    listed = tenant.get("/unified/lms/users/%EF%BF%BD/completions").json()["data"]
    assert [c["user_id"] for c in listed] == ["\ufffd"]
