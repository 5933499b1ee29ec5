"""Completions rendered as JSON by the database (``connectors/local/rendering.py``) read back
exactly as the Python mapping (``mapping.completion_to_wire``) renders the same rows, on
SQLite and on PostgreSQL, for generated rows: odd text, control characters, missing values,
both date precisions, floats that need 17 digits, integers beyond 64 bits in a result's
``source_value``. Then the page machinery around it: order, cursors, filters, and the fast
lane answering what FastAPI answers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from lmsgate.connectors.local import mapping as m
from lmsgate.connectors.local.connector import LocalConnector
from lmsgate.connectors.local.finishing import finish
from lmsgate.ids import new_id
from lmsgate.store import tables as t
from lmsgate.store.pagination import PageRequest
from support import Tenant

_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3), max_leaves=6)
_instant = st.builds(
    lambda base, micros: base.replace(microsecond=micros),
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)),
    st.sampled_from([0, 1000, 123000, 999000]) | st.integers(0, 999_999))
_durations = st.sampled_from(["PT1H30M45S", "PT90M", "P1Y2M", "PT0.5S", "P0D", "PT36H", "P1W", "PT1.25H"])


@st.composite
def completion_rows(draw: Any, account_key: int) -> dict[str, Any]:
    time_spent = draw(st.none() | _durations)
    text, seconds, months = m.duration_columns(time_spent)
    has_source = draw(st.booleans())
    return {
        "account_key": account_key, "id": new_id(), "created_at": draw(_instant), "updated_at": draw(_instant),
        "user_id": draw(st.sampled_from(["learner-1", "learner-2"]) | _text.filter(bool)),
        "learning_object_id": draw(st.none() | _text),
        "learning_object_external_reference": draw(_text.filter(bool)),
        "learning_object_type": draw(st.none() | st.sampled_from(["course", "content", "", "video"])),
        "completed_at": draw(st.none() | _instant),
        "time_spent": text, "time_spent_seconds": seconds, "time_spent_months": months,
        "result_value": draw(st.none() | st.sampled_from(["Pass", "Fail", "unmapped_value"])),
        "result_source_value": draw(_json) if has_source else None,
        "score_percentage": draw(st.none() | st.floats(0, 100) | st.sampled_from([0.1, 1 / 3, 80.0, 99.99, 1e-7])),
        "score_raw_value": draw(st.none() | _text),
        "passthrough": None, "dedupe_key": new_id(),
    }


def _python_page(store: Any, account_id: str, page: PageRequest) -> list[dict[str, Any]]:
    rows = store.list(t.completions, account_id, page).items
    return [json.loads(json.dumps(m.completion_to_wire(dict(r)), default=str)) for r in rows]


def _sql_page(connector: LocalConnector, account_id: str, page: PageRequest, **equal: str) -> list[dict[str, Any]]:
    texts = connector.store.list_computed(connector._rendered_completions, account_id, page, **equal).items
    return [json.loads(finish(text, *parts)) for _, *parts, text in texts]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_database_renders_what_the_python_mapping_renders(tenant: Tenant, data: st.DataObject) -> None:
    store = tenant.container.store
    connector = LocalConnector(store)
    account = tenant.account_id
    key = store.account_key(account)
    rows = data.draw(st.lists(completion_rows(key), min_size=1, max_size=6))
    with store.engine.begin() as conn:
        conn.execute(delete(t.completions).where(t.completions.c.account_key == key))
        conn.execute(t.completions.insert(), rows)
    page = PageRequest(page_size=10)
    python, sql = _python_page(store, account, page), _sql_page(connector, account, page)
    assert [item["id"] for item in sql] == sorted(r["id"] for r in rows)
    for want, got in zip(python, sql, strict=True):
        assert got == want


def test_pages_cursors_and_filters_match_the_python_path(tenant: Tenant) -> None:
    store = tenant.container.store
    connector = LocalConnector(store)
    account = tenant.account_id
    base = datetime(2026, 1, 1)
    rows = [{
        "account_key": store.account_key(account), "id": new_id(), "created_at": base,
        "updated_at": base + timedelta(minutes=i),
        "user_id": f"learner-{i % 3}", "learning_object_id": None, "learning_object_external_reference": f"lo-{i}",
        "learning_object_type": None, "completed_at": base, "time_spent": "PT1H", "time_spent_seconds": 3600,
        "time_spent_months": 0, "result_value": "Pass", "result_source_value": None, "score_percentage": 50.0,
        "score_raw_value": None, "passthrough": None, "dedupe_key": new_id()} for i in range(25)]
    with store.engine.begin() as conn:
        conn.execute(t.completions.insert(), rows)
    ids = sorted(r["id"] for r in rows)
    for page in (PageRequest(page_size=7), PageRequest(page_size=7, after_id=ids[6]), PageRequest(page_size=7, offset=21),
                 PageRequest(page_size=30, updated_after=datetime.fromisoformat("2026-01-01T00:10:00+00:00"))):
        python = _python_page(store, account, page)
        assert _sql_page(connector, account, page) == python
        texts = store.list_computed(connector._rendered_completions, account, page)
        whole = store.list(t.completions, account, page)
        assert (texts.last_id, texts.has_more) == (whole.last_id, whole.has_more)
    mine = _sql_page(connector, account, PageRequest(page_size=30), user_id="learner-1")
    assert [c["id"] for c in mine] == sorted(r["id"] for r in rows if r["user_id"] == "learner-1")
    assert _sql_page(connector, account, PageRequest(page_size=30), user_id="nobody") == []


LIST_QUERIES = [
    "/unified/lms/completions", "/unified/lms/completions?page_size=2",
    "/unified/lms/users/learner-1/completions?page_size=1&fields=id,time_spent",
    "/unified/lms/completions?raw=true&page_size=1", "/unified/lms/completions?filter[updated_after]=2020-01-01T00:00:00Z",
    "/unified/lms/completions?page_size=0", "/unified/lms/completions?page_size=abc", "/unified/lms/completions?next=nope",
    "/unified/lms/users/nobody/completions", "/unified/lms/completions?page=2&page_size=1",
]


@pytest.mark.parametrize("query", LIST_QUERIES)
def test_the_fast_lane_lists_what_fastapi_lists(tenant: Tenant, framework_client: Any, query: str) -> None:
    for i in range(3):
        assert tenant.post(f"/unified/lms/users/learner-{i % 2}/completions", json={
            "learning_object_external_reference": f"lo-{i}", "time_spent": "PT90M",
            "result": {"value": "Pass", "source_value": {"grade": 10**25}}, "score": {"percentage": 1 / 3},
            "completed_at": "2026-03-01T10:00:00.123456Z"}).status_code == 201
    fast = tenant.get(query)
    slow = framework_client.get(query, headers=tenant.headers)
    assert fast.status_code == slow.status_code
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    want, got = slow.json(), fast.json()
    if fast.status_code >= 400:
        want.pop("timestamp"), got.pop("timestamp")
        want.get("data", {}).pop("timestamp", None), got.get("data", {}).pop("timestamp", None)
    if "raw" in want:
        assert [r["url"] for r in got["raw"]] == [r["url"] for r in want["raw"]]
        want.pop("raw"), got.pop("raw")
    assert got == want


def test_a_list_with_a_prefer_header_or_a_body_takes_the_framework_route(tenant: Tenant) -> None:
    resp = tenant.get("/unified/lms/completions", headers={"Prefer": "heartbeat"})
    assert resp.status_code == 200
    resp = tenant.request("GET", "/unified/lms/completions", content=b"{}")
    assert resp.status_code == 200
