"""Many completions at once (the import path) keep the single create's rules, on SQLite and
PostgreSQL: one record per learner, learning object and completed_at, learners created on
the fly, learning objects resolved, and a bad item failing only itself."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio
import pytest

from lmsgate.connectors.base import CallContext, WriteResult
from lmsgate.errors import LmsGateError, Unprocessable
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.schema.types import Duration
from lmsgate.store import tables as t
from lmsgate.store.bulk import BATCH_FROM
from support import SEED_COMPLETION, Tenant


def _bodies(n: int, **extra: Any) -> list[tuple[str, LmsCreateCompletionRequestDto]]:
    return [(f"bulk-learner-{i % 7}", LmsCreateCompletionRequestDto.model_validate({
        "learning_object_external_reference": f"bulk-course-{i % 5}",
        "completed_at": f"2024-02-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "time_spent": "PT45M", **extra}))
        for i in range(n)]


def _create_many(tenant: Tenant, items: list[tuple[str, LmsCreateCompletionRequestDto]]) -> list[Any]:
    ctx = CallContext(account=tenant.container.tenancy.get_account(tenant.account_id))
    return anyio.run(tenant.container.service.create_completions, ctx, items)


@pytest.mark.parametrize("size", [3, BATCH_FROM + 5, 1200], ids=["small", "one-array", "large"])
def test_a_batch_stores_each_completion_once_and_reads_back_like_the_api(tenant: Tenant, size: int) -> None:
    items = _bodies(size)
    results = _create_many(tenant, items)
    assert all(isinstance(r, WriteResult) and r.created for r in results)
    assert len({r.id for r in results}) == size
    assert tenant.container.store.count(t.completions, tenant.account_id) == size

    # the API sees them as its own: same reads, and a repeat post answers the batch's id
    user, body = items[-1]
    got = tenant.get(f"/unified/lms/completions/{results[-1].id}").json()["data"]
    assert (got["user_id"], got["time_spent"], got["completed_at"]) == (user, "PT45M", body.completed_at.strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"))
    again = tenant.post(f"/unified/lms/users/{user}/completions", json=body.model_dump(mode="json", exclude_none=True))
    assert again.status_code == 201 and again.json()["data"]["id"] == results[-1].id
    assert tenant.get(f"/unified/lms/users/{user}").status_code == 200  # learners were created

    # a second run of the same batch stores nothing and answers the first ids
    rerun = _create_many(tenant, items)
    assert [r.id for r in rerun] == [r.id for r in results] and not any(r.created for r in rerun)
    assert tenant.container.store.count(t.completions, tenant.account_id) == size


def test_repeats_inside_one_batch_and_against_the_api_keep_the_first(tenant: Tenant) -> None:
    first = tenant.post("/unified/lms/users/u-api/completions", json=SEED_COMPLETION)
    assert first.status_code == 201
    api_id = first.json()["data"]["id"]
    seed = LmsCreateCompletionRequestDto.model_validate(SEED_COMPLETION)
    other = LmsCreateCompletionRequestDto.model_validate({**SEED_COMPLETION, "time_spent": "PT2H",
                                                          "completed_at": "2022-01-01T00:00:00Z"})
    later_twin = LmsCreateCompletionRequestDto.model_validate({**SEED_COMPLETION, "time_spent": "PT9H",
                                                               "completed_at": "2022-01-01T00:00:00Z"})
    results = _create_many(tenant, [("u-api", seed), ("u-api", other), ("u-api", later_twin)] + _bodies(40))
    assert (results[0].id, results[0].created) == (api_id, False)
    assert results[1].created and (results[2].id, results[2].created) == (results[1].id, False)
    stored = tenant.get(f"/unified/lms/completions/{results[1].id}").json()["data"]
    assert stored["time_spent"] == "PT2H"  # the first of the twins wins


def test_learning_objects_are_resolved_for_the_whole_batch(tenant: Tenant) -> None:
    content = tenant.put("/unified/lms/content", json={"external_reference": "bulk-course-1"}).json()["data"]["id"]
    course = tenant.put("/unified/lms/courses", json={"external_reference": "bulk-course-2"}).json()["data"]["id"]
    results = _create_many(tenant, _bodies(50))
    kinds = {}
    for r in results:
        c = tenant.get(f"/unified/lms/completions/{r.id}").json()["data"]
        kinds[c["learning_object_external_reference"]] = (c["learning_object_id"], (c["learning_object_type"] or {})
                                                          .get("value"))
    assert kinds["bulk-course-1"] == (content, "content")
    assert kinds["bulk-course-2"] == (course, "course")
    assert kinds["bulk-course-3"] == (None, None)


def test_an_item_the_store_refuses_fails_alone(tenant: Tenant, backend: str) -> None:
    items = _bodies(40)
    items[17] = ("x" * 100, items[17][1])  # longer than the 64 characters of a user id column
    results = _create_many(tenant, items)
    good = [r for i, r in enumerate(results) if i != 17]
    assert all(isinstance(r, WriteResult) and r.created for r in good)
    if backend == "postgresql":
        assert isinstance(results[17], LmsGateError) and isinstance(results[17], Unprocessable)
        assert "too long" in results[17].message
        assert tenant.container.store.count(t.completions, tenant.account_id) == 39
    else:  # SQLite does not enforce lengths: the row is stored like any other
        assert isinstance(results[17], WriteResult)
        assert tenant.container.store.count(t.completions, tenant.account_id) == 40


AWKWARD = [
    {"score": {"percentage": 5e-324, "raw_value": 'quote " backslash \\ tab \t'}, "time_spent": "PT0.000001S"},
    {"score": {"percentage": 99.99999999999999, "raw_value": "emoji 🎓 and ǅ"}, "time_spent": "P1Y2M3DT4H5M6.75S"},
    {"score": {"percentage": 0.1}, "result": {"value": "Pass", "source_value": {"n": 1e300, "deep": [None, True]}}},
    {"passthrough": {"k": "line\nbreak", "n": 12345678901234567, "f": -0.0}, "result": {"value": "Fail"}},
    {"passthrough": {"huge": 2**70}, "time_spent": "P178956970Y"},
    {"time_spent": "PT99999999999999.999999S", "result": {"value": "x" * 64}},
]


def test_a_batch_stores_exactly_what_single_posts_store(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """The many-row path (on PostgreSQL one JSON array) and the one-row path store the same
    value in every column, for values that tempt a lossy conversion; and the batch really
    goes in one piece, not through the one-by-one retry that follows a refused batch."""
    extras = AWKWARD
    items = [(f"awk-{i}-{j}", body) for j in range(BATCH_FROM)
             for i, (_, body) in enumerate(_bodies(len(extras)))]
    items = [(user, LmsCreateCompletionRequestDto.model_validate(
        {**body.model_dump(mode="json", exclude_none=True), **extras[int(user.split("-")[1])]})) for user, body in items]
    store = tenant.container.store
    calls: list[int] = []
    real = store.insert_bound
    monkeypatch.setattr(store, "insert_bound", lambda table, rows: calls.append(len(rows)) or real(table, rows))
    results = _create_many(tenant, items)
    assert calls == [len(items)]
    monkeypatch.undo()
    assert all(isinstance(r, WriteResult) and r.created for r in results)
    for (user, body), r in zip(items[:len(extras)], results):
        single = tenant.post(f"/unified/lms/users/{user}-single/completions",
                             json=body.model_dump(mode="json", exclude_none=True))
        assert single.status_code == 201, single.text
        a = store.get(t.completions, tenant.account_id, r.id)
        b = store.get(t.completions, tenant.account_id, single.json()["data"]["id"])
        assert a is not None and b is not None
        for key in ("id", "user_id", "created_at", "updated_at", "dedupe_key"):
            a.pop(key), b.pop(key)
        assert a == b
        assert a["passthrough"] == extras[int(user.split("-")[1])].get("passthrough")


def test_a_value_the_driver_cannot_carry_fails_alone(tenant: Tenant) -> None:
    """A value no validation should let through, yet too big for the driver (SQLite) or for
    JSON (the PostgreSQL array): reported for that item alone, as a database refusal is."""
    items = _bodies(40)
    body = items[5][1].model_dump()
    items[5] = (items[5][0], LmsCreateCompletionRequestDto.model_construct(**{**body, "time_spent": "P8E17Y"}))
    original = Duration.parse
    try:  # the store turns the text into months itself: give it a count past 64 bits
        Duration.parse = classmethod(lambda cls, text: Duration(months=2**64, seconds=Decimal(0))  # type: ignore
                                     if text == "P8E17Y" else original(text))
        results = _create_many(tenant, items)
    finally:
        Duration.parse = original  # type: ignore[method-assign]
    assert isinstance(results[5], Unprocessable), results[5]
    assert all(isinstance(r, WriteResult) and r.created for i, r in enumerate(results) if i != 5)


@pytest.mark.parametrize("spent", ["P800000000000000000Y", "PT100000000000000S", "PT" + "0" * 70 + "1S"])
def test_a_duration_too_long_to_store_is_refused_by_name(tenant: Tenant, spent: str) -> None:
    answer = tenant.post("/unified/lms/users/u/completions",
                         json={"learning_object_external_reference": "c", "time_spent": spent})
    assert answer.status_code == 400 and "time_spent" in answer.json()["message"], answer.text


def test_rows_are_stamped_when_stored_not_when_built(tenant: Tenant) -> None:
    """An import builds rows in worker processes, whole batches ahead of their write: stamped
    then, rows were committed seconds after their updated_at, behind rows already visible, and
    an export of what changed after the newest updated_at seen never got them."""
    import time
    from datetime import datetime, timezone

    ctx = CallContext(account=tenant.container.tenancy.get_account(tenant.account_id))
    connector = tenant.container.service.connector(ctx)
    rows = connector.completion_row_builder(ctx)(_bodies(5))  # built now...
    time.sleep(0.05)
    before_write = datetime.now(timezone.utc)
    results = anyio.run(connector.create_bound_completions, ctx, rows)  # ...stored later
    for result in results:
        got = tenant.get(f"/unified/lms/completions/{result.id}").json()["data"]
        stored = datetime.fromisoformat(got["updated_at"].replace("Z", "+00:00"))
        assert stored >= before_write.replace(microsecond=before_write.microsecond // 1000 * 1000)
        assert got["created_at"] == got["updated_at"]


def test_one_write_for_two_accounts_keeps_them_apart(tenant: Tenant, other_tenant: Tenant) -> None:
    """Concurrent posts of several accounts share one transaction (group commit): the store's
    write must keep each account's learners, repeats and ids to itself, and sorting rows by
    learner for the index must not change which repeat wins."""
    store, connector = tenant.container.store, tenant.container.service
    ours = CallContext(account=tenant.container.tenancy.get_account(tenant.account_id))
    theirs = CallContext(account=tenant.container.tenancy.get_account(other_tenant.account_id))
    body = LmsCreateCompletionRequestDto.model_validate(SEED_COMPLETION)
    twin = LmsCreateCompletionRequestDto.model_validate({**SEED_COMPLETION, "time_spent": "PT7H"})
    def rows() -> list[tuple[Any, ...]]:  # new ids each time, as each post makes
        return [*connector.completion_row_builder(ours)([("zed", body), ("amy", body), ("zed", twin)]),
                *connector.completion_row_builder(theirs)([("zed", twin), ("amy", body), ("zed", body)])]

    written = store.insert_bound(t.completions, rows())
    assert [created for _, created in written] == [True, True, False, True, True, False]
    assert written[2][0] == written[0][0] and written[5][0] == written[3][0]  # repeats answer the first
    assert len({rid for rid, _ in written}) == 4
    for who, spent in ((tenant, "PT1H30M45S"), (other_tenant, "PT7H")):  # the first of each pair was kept
        got = who.get("/unified/lms/users/zed/completions").json()["data"]
        assert [c["time_spent"] for c in got] == [spent]
        assert who.get("/unified/lms/users/amy").status_code == 200  # learners made in each account
    assert store.count(t.completions, tenant.account_id) == store.count(t.completions, other_tenant.account_id) == 2
    again = store.insert_bound(t.completions, rows())  # all stored already: the same ids, none new
    assert [rid for rid, _ in again] == [rid for rid, _ in written] and not any(c for _, c in again)
