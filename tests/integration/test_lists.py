"""Paging, filtering, sparse fieldsets and the raw log, shared by every list operation."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from support import Tenant, assert_stackone_error

from lmsgate.schema.types import format_datetime


def _seed(tenant: Tenant, n: int, user: str = "u1") -> list[str]:
    ids = []
    for i in range(n):
        resp = tenant.post(f"/unified/lms/users/{user}/completions",
                           json={"learning_object_external_reference": f"lo-{i}"})
        ids.append(resp.json()["data"]["id"])
    return ids


def _walk(tenant: Tenant, path: str, **params: str) -> tuple[list[str], int]:
    seen, pages, cursor = [], 0, None
    while True:
        query = dict(params, **({"next": cursor} if cursor else {}))
        body = tenant.get(path, params=query).json()
        pages += 1
        seen += [item["id"] for item in body["data"]]
        cursor = body["next"]
        if not cursor:
            return seen, pages


def test_pages_follow_next_to_the_end(tenant: Tenant) -> None:
    ids = _seed(tenant, 23)
    seen, pages = _walk(tenant, "/unified/lms/completions", page_size="5")
    assert seen == sorted(ids)
    assert pages == 5


def test_default_page_size_is_25(tenant: Tenant) -> None:
    _seed(tenant, 26)
    first = tenant.get("/unified/lms/completions").json()
    assert len(first["data"]) == 25 and first["next"]
    second = tenant.get("/unified/lms/completions", params={"next": first["next"]}).json()
    assert len(second["data"]) == 1 and second["next"] is None


@pytest.mark.parametrize("size", ["0", "1001", "-1", "ten", "2.5"])
def test_bad_page_size_is_400(tenant: Tenant, size: str) -> None:
    assert_stackone_error(tenant.get("/unified/lms/completions", params={"page_size": size}), 400, "page_size")


def test_deprecated_page_still_works(tenant: Tenant) -> None:
    ids = sorted(_seed(tenant, 7))
    page2 = tenant.get("/unified/lms/completions", params={"page": "2", "page_size": "3"}).json()
    assert [c["id"] for c in page2["data"]] == ids[3:6]
    page3 = tenant.get("/unified/lms/completions", params={"page": "3", "page_size": "3"}).json()
    assert [c["id"] for c in page3["data"]] == ids[6:]
    assert_stackone_error(tenant.get("/unified/lms/completions", params={"page": "0"}), 400, "page")


def test_cursor_is_bound_to_account_and_list(tenant: Tenant, other_tenant: Tenant) -> None:
    _seed(tenant, 3)
    _seed(other_tenant, 3)
    cursor = tenant.get("/unified/lms/completions", params={"page_size": "1"}).json()["next"]
    assert cursor
    assert_stackone_error(other_tenant.get("/unified/lms/completions", params={"next": cursor}), 400, "next")
    assert_stackone_error(tenant.get("/unified/lms/users", params={"next": cursor}), 400, "next")
    forged = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    assert_stackone_error(tenant.get("/unified/lms/completions", params={"next": forged}), 400, "next")
    assert_stackone_error(tenant.get("/unified/lms/completions", params={"next": "garbage"}), 400, "next")


@pytest.mark.parametrize("style", ["filter[updated_after]", "updated_after"])
def test_updated_after_filters_in_both_forms(tenant: Tenant, style: str) -> None:
    old = _seed(tenant, 2)
    time.sleep(0.01)
    cutoff = datetime.now(timezone.utc)
    time.sleep(0.01)
    new = _seed(tenant, 3, user="u2")
    body = tenant.get("/unified/lms/completions", params={style: format_datetime(cutoff)}).json()
    assert sorted(c["id"] for c in body["data"]) == sorted(new)
    assert not set(old) & {c["id"] for c in body["data"]}
    future = format_datetime(cutoff + timedelta(days=1))
    assert tenant.get("/unified/lms/completions", params={style: future}).json()["data"] == []


def test_bad_updated_after_is_400(tenant: Tenant) -> None:
    resp = tenant.get("/unified/lms/completions", params={"filter[updated_after]": "last week"})
    assert_stackone_error(resp, 400, "updated_after")


def test_fields_gives_a_sparse_fieldset(tenant: Tenant) -> None:
    [cid] = _seed(tenant, 1)
    listed = tenant.get("/unified/lms/completions", params={"fields": "id,user_id"}).json()
    assert listed["data"] == [{"id": cid, "user_id": "u1"}]
    got = tenant.get(f"/unified/lms/completions/{cid}", params={"fields": "learning_object_external_reference"})
    assert got.json()["data"] == {"learning_object_external_reference": "lo-0"}


def test_raw_true_returns_the_raw_log_and_false_omits_it(tenant: Tenant) -> None:
    _seed(tenant, 2)
    with_raw = tenant.get("/unified/lms/completions", params={"raw": "true"}).json()
    assert with_raw["raw"][0]["method"] == "GET" and with_raw["raw"][0]["url"]
    assert len(with_raw["raw"][0]["response"]) == 2
    stored = with_raw["raw"][0]["response"][0]  # the row as stored, the account named by its id
    assert stored["account_id"] == tenant.account_id and "account_key" not in stored
    assert "raw" not in tenant.get("/unified/lms/completions", params={"raw": "false"}).json()
    assert_stackone_error(tenant.get("/unified/lms/completions", params={"raw": "maybe"}), 400, "raw")


def test_proxy_parameters_are_accepted(tenant: Tenant) -> None:
    resp = tenant.get("/unified/lms/completions", params={"proxy[custom]": "x"})
    assert resp.status_code == 200


def test_a_deep_page_is_a_keyset_query(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQL for page N filters on the last id instead of skipping N pages of rows."""
    from sqlalchemy import event

    _seed(tenant, 4)
    cursor = tenant.get("/unified/lms/completions", params={"page_size": "2"}).json()["next"]
    statements: list[tuple[str, object]] = []
    engine = tenant.container.engine
    listener = lambda *args: statements.append((args[2], args[3]))  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    readers = tenant.container.page_readers
    if readers is not None:  # SQLite: a page reader process may run the query instead
        read = readers.read

        async def recorded(sql: str, parameters: Any, page_size: int) -> Any:
            statements.append((sql, parameters))
            return await read(sql, parameters, page_size)

        monkeypatch.setattr(readers, "read", recorded)
    try:
        tenant.get("/unified/lms/completions", params={"page_size": "2", "next": cursor})
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    query, params = next(s for s in statements if "FROM completions" in s[0])
    assert "completions.id >" in query
    if "OFFSET" in query:  # SQLite always renders an OFFSET; it must be zero
        assert list(params.values() if isinstance(params, dict) else params)[-1] == 0
