"""Completions end to end through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from support import SEED_COMPLETION, Tenant, assert_stackone_error

USER = "c28xyrc55866bvuv"


def _create(tenant: Tenant, body: dict, user: str = USER) -> str:
    resp = tenant.post(f"/unified/lms/users/{user}/completions", json=body)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["statusCode"] == 201 and out["timestamp"].endswith("Z") and out["message"]
    assert out["data"]["id"] == out["data"]["remote_id"]
    return out["data"]["id"]


def test_seed_example_round_trip(tenant: Tenant) -> None:
    cid = _create(tenant, SEED_COMPLETION)

    expected = {
        "id": cid,
        "user_id": USER,
        "learning_object_external_reference": "learning-content-123",
        "learning_object_id": "e3gd34-23tr21-er234-345er56",
        "completed_at": "2021-07-21T14:00:00.000Z",
        "time_spent": "PT1H30M45S",
        "content_external_reference": "learning-content-123",
        "content_id": "e3gd34-23tr21-er234-345er56",
    }
    got = tenant.get(f"/unified/lms/completions/{cid}")
    assert got.status_code == 200
    assert expected.items() <= got.json()["data"].items()

    by_user = tenant.get(f"/unified/lms/users/{USER}/completions/{cid}")
    assert expected.items() <= by_user.json()["data"].items()

    listed = tenant.get("/unified/lms/completions").json()
    assert [c["id"] for c in listed["data"]] == [cid]
    assert expected.items() <= listed["data"][0].items()
    assert listed["next"] is None

    user_list = tenant.get(f"/unified/lms/users/{USER}/completions").json()
    assert [c["id"] for c in user_list["data"]] == [cid]
    assert tenant.get("/unified/lms/users/someone-else/completions").json()["data"] == []

    # passthrough is stored: the raw log shows the stored record
    raw = tenant.get(f"/unified/lms/completions/{cid}?raw=true").json()["raw"]
    assert raw[0]["response"]["passthrough"] == {"other_known_names": "John Doe"}

    deleted = tenant.delete(f"/unified/lms/users/{USER}/completions/{cid}")
    assert deleted.status_code == 200
    assert deleted.json()["statusCode"] == 200 and deleted.json()["timestamp"].endswith("Z")
    assert_stackone_error(tenant.get(f"/unified/lms/completions/{cid}"), 404, cid)
    assert tenant.get("/unified/lms/completions").json()["data"] == []
    assert_stackone_error(tenant.delete(f"/unified/lms/users/{USER}/completions/{cid}"), 404)


def test_same_completion_twice_returns_same_id(tenant: Tenant) -> None:
    first = _create(tenant, SEED_COMPLETION)
    second = _create(tenant, SEED_COMPLETION)
    # an equivalent instant written with an offset is the same completion
    third = _create(tenant, {**SEED_COMPLETION, "completed_at": "2021-07-21T16:00:00+02:00"})
    assert first == second == third
    assert len(tenant.get("/unified/lms/completions").json()["data"]) == 1
    # a different instant, learner or learning object is a new record
    assert _create(tenant, {**SEED_COMPLETION, "completed_at": "2021-07-22T14:00:00Z"}) != first
    assert _create(tenant, SEED_COMPLETION, user="another-user") != first
    assert _create(tenant, {**SEED_COMPLETION, "learning_object_external_reference": "x"}) != first
    assert len(tenant.get("/unified/lms/completions").json()["data"]) == 4


def test_repeat_does_not_overwrite_the_first_record(tenant: Tenant) -> None:
    first = _create(tenant, {**SEED_COMPLETION, "score": {"percentage": 50}})
    again = _create(tenant, {**SEED_COMPLETION, "score": {"percentage": 99}})
    assert first == again
    assert tenant.get(f"/unified/lms/completions/{first}").json()["data"]["score"]["percentage"] == 50


def test_same_completion_on_another_account_is_separate(tenant: Tenant, other_tenant: Tenant) -> None:
    a = _create(tenant, SEED_COMPLETION)
    b = _create(other_tenant, SEED_COMPLETION)
    assert a != b


def test_deprecated_names_are_mapped(tenant: Tenant) -> None:
    cid = _create(tenant, {"content_external_reference": "legacy-ref", "content_id": "legacy-id"})
    data = tenant.get(f"/unified/lms/completions/{cid}").json()["data"]
    assert data["learning_object_external_reference"] == "legacy-ref"
    assert data["learning_object_id"] == "legacy-id"
    # both names with the same value are fine
    _create(tenant, {"content_external_reference": "r2", "learning_object_external_reference": "r2"})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"learning_object_external_reference": "a", "content_external_reference": "b"}, "content_external_reference"),
        ({"learning_object_external_reference": "a", "learning_object_id": "x", "content_id": "y"}, "content_id"),
    ],
)
def test_conflicting_old_and_new_names_are_rejected(tenant: Tenant, body: dict, field: str) -> None:
    assert_stackone_error(tenant.post(f"/unified/lms/users/{USER}/completions", json=body), 400, field)
    assert tenant.get("/unified/lms/completions").json()["data"] == []


def test_learning_object_external_reference_is_required(tenant: Tenant) -> None:
    resp = tenant.post(f"/unified/lms/users/{USER}/completions", json={"completed_at": "2021-07-21T14:00:00Z"})
    assert_stackone_error(resp, 400, "learning_object_external_reference")


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        ("PT1H30M45S", "PT1H30M45S"),
        ("PT90M", "PT1H30M"),
        ("PT5445S", "PT1H30M45S"),
        ("P1DT1H", "PT25H"),
        ("PT0.25S", "PT0.25S"),
        ("PT1.5H", "PT1H30M"),
        ("PT0S", "PT0S"),
        ("P1Y2M", "P1Y2M"),
        ("pt2m", "PT2M"),
    ],
)
def test_time_spent_is_returned_normalised(tenant: Tenant, sent: str, returned: str) -> None:
    cid = _create(tenant, {"learning_object_external_reference": f"lo-{sent}", "time_spent": sent})
    assert tenant.get(f"/unified/lms/completions/{cid}").json()["data"]["time_spent"] == returned


def test_time_spent_is_stored_exactly_as_sent(tenant: Tenant) -> None:
    cid = _create(tenant, {"learning_object_external_reference": "exact", "time_spent": "PT90M"})
    raw = tenant.get(f"/unified/lms/completions/{cid}?raw=true").json()["raw"][0]["response"]
    assert raw["time_spent"] == "PT90M"
    assert float(raw["time_spent_seconds"]) == 5400


@pytest.mark.parametrize("bad", ["PT1X", "1H", "P", "PT", "-PT1H", "PT1.5H30M", "P1.5M", "", "P1DT"])
def test_bad_durations_are_rejected(tenant: Tenant, bad: str) -> None:
    resp = tenant.post(f"/unified/lms/users/{USER}/completions",
                       json={"learning_object_external_reference": "x", "time_spent": bad})
    assert_stackone_error(resp, 400, "time_spent")


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        ("2021-07-21T14:00:00.000Z", "2021-07-21T14:00:00.000Z"),
        ("2021-07-21T14:00:00", "2021-07-21T14:00:00.000Z"),
        ("2021-07-21T16:30:00+02:30", "2021-07-21T14:00:00.000Z"),
        ("2021-07-21T14:00:00.123456Z", "2021-07-21T14:00:00.123456Z"),
        ("2021-07-21T14:00:00.5-01:00", "2021-07-21T15:00:00.500Z"),
    ],
)
def test_completed_at_is_utc_with_z(tenant: Tenant, sent: str, returned: str) -> None:
    cid = _create(tenant, {"learning_object_external_reference": "d", "completed_at": sent})
    assert tenant.get(f"/unified/lms/completions/{cid}").json()["data"]["completed_at"] == returned


@pytest.mark.parametrize("bad", ["2021-07-21", "21/07/2021 14:00", "2021-13-01T00:00:00Z", "yesterday", 1626876000])
def test_bad_dates_are_rejected(tenant: Tenant, bad: object) -> None:
    resp = tenant.post(f"/unified/lms/users/{USER}/completions",
                       json={"learning_object_external_reference": "x", "completed_at": bad})
    assert_stackone_error(resp, 400, "completed_at")


def test_result_is_an_open_enum(tenant: Tenant) -> None:
    known = _create(tenant, {"learning_object_external_reference": "a", "result": {"value": "Pass"}})
    other = _create(tenant, {"learning_object_external_reference": "b", "result": {"value": "passed"}})
    kept = _create(tenant, {"learning_object_external_reference": "c",
                            "result": {"value": "unmapped_value", "source_value": "B+"}})
    get = lambda cid: tenant.get(f"/unified/lms/completions/{cid}").json()["data"]["result"]  # noqa: E731
    assert get(known) == {"value": "Pass", "source_value": None}
    assert get(other) == {"value": "passed", "source_value": "passed"}
    assert get(kept) == {"value": "unmapped_value", "source_value": "B+"}


@pytest.mark.parametrize("pct", [-0.01, 100.5, "87", True, None])
def test_score_percentage_must_be_0_to_100(tenant: Tenant, pct: object) -> None:
    body = {"learning_object_external_reference": "s", "score": {"percentage": pct, "raw_value": "x"}}
    resp = tenant.post(f"/unified/lms/users/{USER}/completions", json=body)
    if pct is None:
        assert resp.status_code == 201
    else:
        assert_stackone_error(resp, 400, "score.percentage")


def test_score_round_trip(tenant: Tenant) -> None:
    cid = _create(tenant, {"learning_object_external_reference": "s",
                           "score": {"percentage": 87.5, "raw_value": "87.5 / 100"}})
    assert tenant.get(f"/unified/lms/completions/{cid}").json()["data"]["score"] == {
        "percentage": 87.5, "raw_value": "87.5 / 100"}


def test_completion_links_known_content(tenant: Tenant) -> None:
    up = tenant.put("/unified/lms/content", json={"external_reference": "video-1", "title": "Video"})
    content_id = up.json()["data"]["id"]
    cid = _create(tenant, {"learning_object_external_reference": "video-1"})
    data = tenant.get(f"/unified/lms/completions/{cid}").json()["data"]
    assert data["learning_object_id"] == content_id
    assert data["learning_object_type"] == {"value": "content", "source_value": "content"}


def test_an_empty_learning_object_id_is_filled_from_known_content(tenant: Tenant) -> None:
    up = tenant.put("/unified/lms/content", json={"external_reference": "video-2", "title": "Video"})
    cid = _create(tenant, {"learning_object_external_reference": "video-2", "learning_object_id": ""})
    data = tenant.get(f"/unified/lms/completions/{cid}").json()["data"]
    assert data["learning_object_id"] == up.json()["data"]["id"]


def test_user_is_created_by_first_completion(tenant: Tenant) -> None:
    _create(tenant, SEED_COMPLETION, user="fresh-user")
    user = tenant.get("/unified/lms/users/fresh-user")
    assert user.status_code == 200
    assert user.json()["data"]["id"] == "fresh-user"


def test_get_user_completion_checks_the_user(tenant: Tenant) -> None:
    cid = _create(tenant, SEED_COMPLETION)
    assert_stackone_error(tenant.get(f"/unified/lms/users/not-the-owner/completions/{cid}"), 404)
    assert_stackone_error(tenant.delete(f"/unified/lms/users/not-the-owner/completions/{cid}"), 404)
    assert tenant.get(f"/unified/lms/completions/{cid}").status_code == 200


@pytest.fixture
def tenant(any_path_tenant: Tenant) -> Tenant:
    """Every test here runs through the completion fast path and through FastAPI alone."""
    return any_path_tenant


@pytest.mark.parametrize("value", [12345678901234567890123, 2**63, -(2**63) - 1, 2**63 - 1, 10**30, 1.5, -0.25])
def test_a_numeric_source_value_comes_back_exactly(tenant: Tenant, value: int | float) -> None:
    """SQLite stores JSON text that reads as a number as a number: an integer beyond 64 bits
    would come back as a float with its digits lost."""
    sent = {"learning_object_external_reference": f"exact-{value}", "result": {"value": "Pass", "source_value": value}}
    created = tenant.post("/unified/lms/users/u1/completions", json=sent)
    assert created.status_code == 201, created.text
    one = tenant.get(f"/unified/lms/completions/{created.json()['data']['id']}").json()["data"]
    listed = [c for c in tenant.get("/unified/lms/completions", params={"page_size": 200}).json()["data"]
              if c["id"] == created.json()["data"]["id"]]
    for got in (one, *listed):
        assert got["result"]["source_value"] == value and type(got["result"]["source_value"]) is type(value)
    assert len(listed) == 1
