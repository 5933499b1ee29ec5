"""Many completions at once (the import path) keep the single create's rules, on SQLite and
PostgreSQL: one record per learner, learning object and completed_at, learners created on
the fly, learning objects resolved, and a bad item failing only itself."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from lmsgate.connectors.base import CallContext, WriteResult
from lmsgate.errors import LmsGateError, Unprocessable
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.store import tables as t
from lmsgate.store.bulk import COPY_FROM
from support import SEED_COMPLETION, Tenant


def _bodies(n: int, **extra: Any) -> list[tuple[str, LmsCreateCompletionRequestDto]]:
    return [(f"bulk-learner-{i % 7}", LmsCreateCompletionRequestDto.model_validate({
        "learning_object_external_reference": f"bulk-course-{i % 5}",
        "completed_at": f"2024-02-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z", "time_spent": "PT45M", **extra}))
        for i in range(n)]


def _create_many(tenant: Tenant, items: list[tuple[str, LmsCreateCompletionRequestDto]]) -> list[Any]:
    ctx = CallContext(account=tenant.container.tenancy.get_account(tenant.account_id))
    return anyio.run(tenant.container.service.create_completions, ctx, items)


@pytest.mark.parametrize("size", [3, COPY_FROM + 5, 1200], ids=["small", "copy", "large"])
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
