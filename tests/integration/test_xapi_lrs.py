"""The xAPI connector against a real LRS: Ralph, started by these tests (see ``tests/ralph.py``).

What must hold: a completion posted through lmsgate is in the LRS, read from the LRS directly,
with the right verb, result, duration and score; a retried post stores nothing new; lmsgate's
list and get read the LRS's statements back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from linking import ACTIVITY_BASE, ACTOR_HOMEPAGE, completion, link, on_account, xapi_setup
from ralph import LrsUser, RalphLRS, running
from support import Tenant, assert_stackone_error

WRITERS = 8
"""Ralph users with a target of their own: one per writing test and backend."""


@pytest.fixture(scope="module")
def lrs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RalphLRS]:
    yield from running(Path(tmp_path_factory.mktemp("ralph")), WRITERS)


def link_lrs(tenant: Tenant, lrs: RalphLRS, user: LrsUser, **setup: object) -> Tenant:
    setup = {"query_filters": "lmsgate", **setup}
    account = link(tenant, "xapi", xapi_setup(lrs.endpoint, **setup),
                   {"username": user.username, "password": user.password})
    return on_account(tenant, account["id"])


def test_a_completion_lands_in_the_lrs(tenant: Tenant, lrs: RalphLRS) -> None:
    writer = lrs.take_writer()
    xapi = link_lrs(tenant, lrs, writer)
    body = completion(time_spent="PT1H30M45.125S", learning_object_id="lo-internal-7",
                      passthrough={"context": {"platform": "Acme Academy"}})
    resp = xapi.post("/unified/lms/users/learner-42/completions", json=body)
    assert resp.status_code == 201, resp.text
    sid = resp.json()["data"]["id"]
    assert resp.json()["data"]["remote_id"] == sid

    (stored,) = lrs.statements(writer, statementId=sid)
    assert stored["id"] == sid
    assert stored["verb"]["id"] == "http://adlnet.gov/expapi/verbs/passed"
    assert stored["actor"]["account"] == {"homePage": ACTOR_HOMEPAGE, "name": "learner-42"}
    assert stored["object"]["id"] == ACTIVITY_BASE + "learning-content-123"
    assert stored["timestamp"].startswith("2021-07-21T14:00:00")
    assert stored["result"]["completion"] is True and stored["result"]["success"] is True
    assert stored["result"]["duration"] == "PT1H30M45.13S"  # 45.125 s, rounded to xAPI's 0.01 s
    assert stored["result"]["score"] == {"scaled": 0.87, "raw": 87, "min": 0, "max": 100}
    assert stored["context"]["platform"] == "Acme Academy"
    assert stored["context"]["extensions"]["urn:lmsgate:completion"]["learning_object_id"] == "lo-internal-7"

    # A retry is the same statement under the same id: the LRS keeps one.
    again = xapi.post("/unified/lms/users/learner-42/completions", json=body)
    assert again.status_code == 201 and again.json()["data"]["id"] == sid
    # Another score for the same learner, learning object and time: the first write wins.
    changed = xapi.post("/unified/lms/users/learner-42/completions",
                        json={**body, "score": {"percentage": 12}})
    assert changed.status_code == 201 and changed.json()["data"]["id"] == sid
    everything = lrs.statements(writer)
    assert [s["id"] for s in everything] == [sid]
    assert everything[0]["result"]["score"]["scaled"] == 0.87


def test_round_trip_through_lmsgate_list_and_get(tenant: Tenant, lrs: RalphLRS) -> None:
    writer = lrs.take_writer()
    xapi = link_lrs(tenant, lrs, writer)
    user = "ada@example.com"
    body = completion(ref="course/intro to xAPI", result={"value": "Fail"}, time_spent="PT20M",
                      score={"percentage": 42.5})
    resp = xapi.post(f"/unified/lms/users/{user}/completions", json=body)
    assert resp.status_code == 201, resp.text
    sid = resp.json()["data"]["id"]

    (stored,) = lrs.statements(writer)
    assert stored["actor"]["mbox"] == f"mailto:{user}"
    assert stored["verb"]["id"] == "http://adlnet.gov/expapi/verbs/failed"
    assert stored["result"]["success"] is False and stored["result"]["duration"] == "PT20M"
    assert stored["object"]["id"] == ACTIVITY_BASE + "course%2Fintro%20to%20xAPI"

    listed = xapi.get("/unified/lms/completions")
    assert listed.status_code == 200, listed.text
    assert listed.json()["next"] is None
    (item,) = listed.json()["data"]
    assert item["id"] == sid and item["remote_id"] == sid
    assert item["user_id"] == user
    assert item["learning_object_external_reference"] == "course/intro to xAPI"
    assert item["result"] == {"value": "Fail", "source_value": None}
    assert item["score"] == {"percentage": 42.5, "raw_value": None}
    assert item["time_spent"] == "PT20M"
    assert item["completed_at"] == "2021-07-21T14:00:00.000Z"
    assert item["created_at"].endswith("Z")

    for path in (f"/unified/lms/completions/{sid}", f"/unified/lms/users/{user}/completions/{sid}"):
        got = xapi.get(path)
        assert got.status_code == 200, got.text
        assert got.json()["data"] == item
    mine = xapi.get(f"/unified/lms/users/{user}/completions")
    assert [c["id"] for c in mine.json()["data"]] == [sid]
    assert xapi.get("/unified/lms/users/someone-else/completions").json()["data"] == []
    assert_stackone_error(xapi.get(f"/unified/lms/users/someone-else/completions/{sid}"), 404)
    assert_stackone_error(xapi.get("/unified/lms/completions/00000000-0000-5000-8000-000000000000"), 404)
    assert_stackone_error(xapi.get("/unified/lms/completions/not-a-statement-id"), 404)


def test_lists_page_over_the_lrs_more_links(tenant: Tenant, lrs: RalphLRS) -> None:
    writer = lrs.take_writer()
    verbs = ["passed", "experienced", "completed", "failed", "experienced", "passed"]
    seed = [{"actor": {"objectType": "Agent", "account": {"homePage": ACTOR_HOMEPAGE, "name": f"u{n}"}},
             "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}"},
             "object": {"objectType": "Activity", "id": f"{ACTIVITY_BASE}lo-{n}"},
             "timestamp": f"2024-0{n + 1}-01T00:00:00.000Z"}
            for n, verb in enumerate(verbs)]
    with lrs.client(writer) as c:  # written by another system: one batch, Ralph's one write
        assert c.post("statements", json=seed).status_code == 200
    xapi = link_lrs(tenant, lrs, writer)

    seen, cursor, pages = [], None, 0
    while True:
        params = {"page_size": "2", **({"next": cursor} if cursor else {})}
        resp = xapi.get("/unified/lms/completions", params=params)
        assert resp.status_code == 200, resp.text
        seen += [c["learning_object_external_reference"] for c in resp.json()["data"]]
        pages += 1
        cursor = resp.json()["next"]
        if not cursor:
            break
    assert sorted(seen) == ["lo-0", "lo-2", "lo-3", "lo-5"]  # the "experienced" statements are not completions
    assert pages >= 3
    results = {c["learning_object_external_reference"]: c["result"]
               for c in xapi.get("/unified/lms/completions", params={"page_size": "10"}).json()["data"]}
    assert results["lo-0"] == {"value": "Pass", "source_value": "http://adlnet.gov/expapi/verbs/passed"}
    assert results["lo-2"] is None

    recent = xapi.get("/unified/lms/completions", params={"filter[updated_after]": "2024-03-15T00:00:00Z"})
    assert sorted(c["learning_object_external_reference"] for c in recent.json()["data"]) == ["lo-3", "lo-5"]
    one = xapi.get("/unified/lms/completions", params={"proxy[activity]": f"{ACTIVITY_BASE}lo-3"})
    assert [c["user_id"] for c in one.json()["data"]] == ["u3"]
    assert_stackone_error(xapi.get("/unified/lms/completions", params={"page": "2"}), 400, "page")
    assert_stackone_error(xapi.get("/unified/lms/completions", params={"next": "forged"}), 400, "next")


def test_the_account_test_endpoint_reaches_the_lrs(tenant: Tenant, lrs: RalphLRS) -> None:
    xapi = link_lrs(tenant, lrs, lrs.reader)
    resp = tenant.post(f"/accounts/{xapi.account_id}/test")
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["checked"] == f"GET {lrs.endpoint}statements?limit=1"
    wrong = link(tenant, "xapi", xapi_setup(lrs.endpoint),
                 {"username": lrs.reader.username, "password": "not-the-password"})
    resp = tenant.post(f"/accounts/{wrong['id']}/test")
    body = assert_stackone_error(resp, 502, "credentials")
    assert body["provider_errors"][0]["status"] == 401
    assert "not-the-password" not in resp.text


def test_lrs_filtering_sends_the_xapi_query_parameters(tenant: Tenant, lrs: RalphLRS) -> None:
    xapi = link_lrs(tenant, lrs, lrs.reader, query_filters="lrs")
    resp = xapi.get("/unified/lms/users/learner-9/completions",
                    params={"raw": "true", "filter[updated_after]": "2024-01-01T00:00:00Z"})
    assert resp.status_code == 200, resp.text
    urls = [r["url"] for r in resp.json()["raw"]]
    assert len(urls) == 3  # one statements query per completion verb
    for url, verb in zip(urls, ("passed", "failed", "completed")):
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert query["verb"] == f"http://adlnet.gov/expapi/verbs/{verb}"
        assert json.loads(query["agent"]) == {"account": {"homePage": ACTOR_HOMEPAGE, "name": "learner-9"}}
        assert query["since"] == "2024-01-01T00:00:00.000Z"


def test_statement_batches_for_background_delivery(tenant: Tenant, lrs: RalphLRS) -> None:
    """Background delivery posts statement batches (``create_user_completion_batch``): a batch is
    stored whole; an LRS answer to a batch holding a conflicting statement refuses all of it
    (the drainer then sends its statements one by one)."""
    import anyio

    from lmsgate.connectors.base import CallContext
    from lmsgate.errors import Conflict
    from lmsgate.schema import LmsCreateCompletionRequestDto

    writer = lrs.take_writer()
    xapi = link_lrs(tenant, lrs, writer)
    account = tenant.container.tenancy.get_account(xapi.account_id)
    connector = tenant.container.registry.for_account(account)
    ctx = CallContext(account=account)
    items = [(f"batch-learner-{n}", LmsCreateCompletionRequestDto.model_validate(completion(ref=f"batch-{n}")))
             for n in range(3)]
    results = anyio.run(connector.create_user_completion_batch, ctx, items)
    stored = {s["id"] for s in lrs.statements(writer)}
    assert len(stored) == 3 and {r.id for r in results} == stored
    again = anyio.run(connector.create_user_completion_batch, ctx, items)  # sent again after a crash
    assert [r.id for r in again] == [r.id for r in results]
    assert {s["id"] for s in lrs.statements(writer)} == stored

    changed = LmsCreateCompletionRequestDto.model_validate(completion(ref="batch-0", score={"percentage": 1}))
    fresh = LmsCreateCompletionRequestDto.model_validate(completion(ref="batch-9"))
    with pytest.raises(Conflict):
        anyio.run(connector.create_user_completion_batch, ctx, [("batch-learner-0", changed),
                                                               ("batch-learner-9", fresh)])
    assert {s["id"] for s in lrs.statements(writer)} == stored, "a refused batch stored part of itself"
