"""Hostile and malformed input: always a 4xx in StackOne's shape, never a 500, nothing lost."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import SEED_COMPLETION, Tenant, assert_stackone_error

PATH = "/unified/lms/users/fuzz-user/completions"

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
FIELDS = [
    "learning_object_external_reference", "learning_object_id", "completed_at", "time_spent", "result",
    "score", "passthrough", "content_id", "content_external_reference",
]


def _bad_field_values() -> st.SearchStrategy[dict[str, Any]]:
    """A valid body with one field replaced by an arbitrary JSON value."""
    return st.builds(
        lambda field, value: {**SEED_COMPLETION, field: value}, st.sampled_from(FIELDS), json_values
    )


@pytest.fixture
def seeded(tenant: Tenant) -> tuple[Tenant, dict[str, Any]]:
    resp = tenant.post(PATH, json=SEED_COMPLETION)
    assert resp.status_code == 201
    return tenant, tenant.get("/unified/lms/completions").json()


def _assert_4xx_or_created(resp: Any) -> None:
    assert resp.status_code < 500, resp.text
    if resp.status_code >= 400:
        body = resp.json()
        assert body["statusCode"] == resp.status_code
        assert isinstance(body["message"], str) and body["message"]
        assert body["timestamp"].endswith("Z")
    else:
        assert resp.status_code == 201, resp.text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bad_field_values())
def test_arbitrary_field_values_never_500(seeded: tuple[Tenant, dict[str, Any]], body: dict[str, Any]) -> None:
    tenant, before = seeded
    _assert_4xx_or_created(tenant.post(PATH, json=body))
    after = tenant.get("/unified/lms/completions", params={"page_size": "1000"}).json()["data"]
    original = before["data"][0]
    assert original in after  # nothing already stored is lost or changed


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_arbitrary_json_bodies_never_500(seeded: tuple[Tenant, dict[str, Any]], body: Any) -> None:
    tenant, _ = seeded
    _assert_4xx_or_created(tenant.post(PATH, json=body))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_500(seeded: tuple[Tenant, dict[str, Any]], raw: bytes) -> None:
    tenant, _ = seeded
    resp = tenant.post(PATH, content=raw, headers={"content-type": "application/json"})
    _assert_4xx_or_created(resp)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(duration=st.text(alphabet="PTYMWDHS0123456789.,-", max_size=14))
def test_durations_are_accepted_or_named(seeded: tuple[Tenant, dict[str, Any]], duration: str) -> None:
    tenant, _ = seeded
    resp = tenant.post(PATH, json={"learning_object_external_reference": "d", "time_spent": duration})
    if resp.status_code != 201:
        assert_stackone_error(resp, 400, "time_spent")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"learning_object_external_reference": 123}, "learning_object_external_reference"),
        ({"learning_object_external_reference": ""}, "learning_object_external_reference"),
        ({"learning_object_external_reference": "x", "passthrough": "not an object"}, "passthrough"),
        ({"learning_object_external_reference": "x", "result": "Pass"}, "result"),
        ({"learning_object_external_reference": "x", "score": {"percentage": "NaN"}}, "score.percentage"),
        ({"learning_object_external_reference": "x", "score": {"raw_value": 87}}, "score.raw_value"),
    ],
)
def test_wrong_types_name_the_field(tenant: Tenant, body: dict[str, Any], field: str) -> None:
    assert_stackone_error(tenant.post(PATH, json=body), 400, field)


def test_nan_literal_is_rejected(tenant: Tenant) -> None:
    raw = b'{"learning_object_external_reference": "x", "score": {"percentage": NaN}}'
    resp = tenant.post(PATH, content=raw, headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500


def test_malformed_json_is_400(tenant: Tenant) -> None:
    resp = tenant.post(PATH, content=b'{"learning_object_external_reference": ', headers={"content-type": "application/json"})
    assert_stackone_error(resp, 400, "JSON")


def test_oversized_body_is_400_and_stores_nothing(tenant: Tenant) -> None:
    limit = tenant.container.settings.max_body_bytes
    body = {**SEED_COMPLETION, "passthrough": {"blob": "x" * (limit + 10)}}
    resp = tenant.post(PATH, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert_stackone_error(resp, 400, "limit")
    assert tenant.get("/unified/lms/completions").json()["data"] == []


def test_oversized_chunked_body_is_refused(tenant: Tenant) -> None:
    limit = tenant.container.settings.max_body_bytes

    def chunks():  # no content-length: the limit is enforced while reading
        yield b'{"learning_object_external_reference": "x", "passthrough": {"b": "'
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536
        yield b'"}}'

    resp = tenant.post(PATH, content=chunks(), headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500
    assert tenant.get("/unified/lms/completions").json()["data"] == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/unified/lms/users/u%00x/completions", SEED_COMPLETION, "id"),
        (PATH, {**SEED_COMPLETION, "learning_object_external_reference": "a\x00b"},
         "learning_object_external_reference"),
        (PATH, {**SEED_COMPLETION, "passthrough": {"k": ["ok", "v\x00"]}}, "passthrough.k[1]"),
    ],
)
def test_nul_characters_are_refused_on_every_backend(tenant: Tenant, path: str, body: dict, field: str) -> None:
    """Regression: PostgreSQL cannot store NUL in text; this used to answer 500 there."""
    assert_stackone_error(tenant.post(path, json=body), 400, field, "NUL")
    assert tenant.get("/unified/lms/completions", params={"filter[updated_after]": "2000-01-01T00:00:00Z",
                                                          "fields": "id\x00"}).status_code == 400


@pytest.fixture
def tenant(any_path_tenant: Tenant) -> Tenant:
    """Every test here runs through the completion fast path and through FastAPI alone."""
    return any_path_tenant


def test_huge_integers_in_passthrough_are_kept_exactly(tenant: Tenant) -> None:
    """Regression: orjson refuses integers beyond 64 bits; storing one must not be a 500."""
    big = 123456789012345678901234567890
    body = {**SEED_COMPLETION, "passthrough": {"n": big, "m": -big}}
    cid = tenant.post(PATH, json=body).json()["data"]["id"]
    raw = tenant.get(f"/unified/lms/completions/{cid}", params={"raw": "true"}).json()["raw"]
    assert raw[0]["response"]["passthrough"] == {"n": big, "m": -big}


def test_huge_integers_in_an_accepted_async_write_are_kept_exactly(tenant: Tenant) -> None:
    """Regression: the 202 of ``Prefer: respond-async`` echoes the stored write; an integer
    beyond 64 bits in it must not turn the answer into a 500 on either lane."""
    big = 123456789012345678901234567890
    body = {**SEED_COMPLETION, "passthrough": {"n": big}}
    resp = tenant.post(PATH, json=body, headers={"Prefer": "respond-async"})
    assert resp.status_code == 202, resp.text
    assert json.loads(resp.text)["data"]["request"]["body"]["passthrough"] == {"n": big}


@pytest.mark.parametrize("when", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_date_time_beyond_year_9999_or_before_year_1_in_utc_is_a_400(any_path_tenant: Tenant, when: str) -> None:
    """Valid RFC 3339 text that leaves the years 1-9999 once converted to UTC was a 500."""
    body = {"learning_object_external_reference": "c", "completed_at": when}
    assert_stackone_error(any_path_tenant.post(PATH, json=body), 400, "completed_at")
    for params in ({"filter[updated_after]": when}, {"updated_after": when}):
        assert_stackone_error(any_path_tenant.get("/unified/lms/completions", params=params), 400, "updated_after")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PATCH", "/unified/lms/users/u1/completions/x", "DELETE, GET"),
    ("DELETE", "/unified/lms/content/abc", "GET, PATCH"),
    ("POST", "/unified/lms/users/u1", "GET, PUT"),
])
def test_a_wrong_method_is_405_naming_every_allowed_one(tenant: Tenant, method: str, path: str, allowed: str) -> None:
    """The Allow header named only the first method Starlette found on the path."""
    resp = tenant.request(method, path)
    assert_stackone_error(resp, 405)
    assert resp.headers["allow"] == allowed


def _nested(levels: int) -> str:
    """JSON text of ``levels`` objects, one inside the other: {"a":{"a":...1...}}."""
    return '{"a":' * levels + "1" + "}" * levels


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("PUT", "/unified/lms/content", '{"external_reference":"deep","unified_custom_fields":%s}', "unified_custom_fields"),
    ("PUT", "/unified/lms/courses", '{"external_reference":"deep","unified_custom_fields":%s}', "unified_custom_fields"),
    ("PUT", "/unified/lms/users/deep", '{"name":"x","unified_custom_fields":%s}', "unified_custom_fields"),
    ("POST", "/unified/lms/users/deep/completions", '{"learning_object_external_reference":"x","passthrough":%s}',
     "passthrough"),
    ("POST", "/unified/lms/users/deep/assignments", '{"learning_object_external_reference":"x","passthrough":%s}',
     "passthrough"),
])
def test_json_nested_too_deep_is_400_on_both_lanes(any_path_tenant: Tenant, method: str, path: str, body: str,
                                                   field: str) -> None:
    """Nesting of 256 levels was a 500 (the serialiser stops near 255), and the completion
    lanes disagreed: 200 levels were a 400 on the fast lane and a 201 on the other."""
    tenant = any_path_tenant
    headers = {"content-type": "application/json"}
    ok = tenant.client.request(method, path, content=body % _nested(63), headers={**tenant.headers, **headers})
    assert ok.status_code in (200, 201, 202), ok.text  # 64 levels in all: the body and 63 more
    for levels in (64, 200, 256, 1200):
        answer = tenant.client.request(method, path, content=body % _nested(levels),
                                       headers={**tenant.headers, **headers})
        assert_stackone_error(answer, 400, "nested more than 64 levels")
        if levels == 64:  # deeper, a JSON parser may give up first: then the body is named
            assert field in answer.json()["message"], answer.text


def test_a_batch_item_nested_too_deep_is_reported_alone(tenant: Tenant) -> None:
    body = '{"items":[{"external_reference":"shallow"},{"external_reference":"deep","unified_custom_fields":%s}]}'
    answer = tenant.client.post("/unified/lms/content/batch", content=body % _nested(300),
                                headers={**tenant.headers, "content-type": "application/json"})
    assert answer.status_code == 202, answer.text
    errors = answer.json()["errors"]
    assert errors[0] == [] and "nested more than 64 levels" in errors[1][0]
