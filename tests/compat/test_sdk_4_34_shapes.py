"""Requests shaped the way StackOne's SDK 4.34.1 sends them, over plain HTTP.

Only SDK 4.28.0 is on the npm registry, so what 4.34.1 changed (SDK reference, section 8) is
sent here byte for byte as that version serialises it: its headers (including the empty
``cookie`` and its user-agent), snake_case keys in alphabetical order, ``Date`` values as
``…000Z``. The server is a real ``lmsgate serve``; each test uses a fresh linked account.

* completions carry ``score`` and must name ``learning_object_external_reference``;
* assignments carry ``assigned_at`` (4.28.0 sent ``created_at``) and must name
  ``learning_object_external_reference``;
* content carries ``passthrough`` and must name ``external_reference``;
* every call may carry ``Prefer: heartbeat``, answered with ``Preference-Applied: heartbeat``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest

USER_AGENT_434 = "speakeasy-sdk/typescript 4.34.1 2.836.4 1.0.0 @stackone/stackone-client-ts"
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


class Sdk434:
    """Sends requests with the headers and body encoding of SDK 4.34.1."""

    def __init__(self, server: Any, account_id: str) -> None:
        self.server = server
        self.account_id = account_id
        self.http = server.client()

    def headers(self, *, body: bool, prefer: str | None = "heartbeat") -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "x-account-id": self.account_id,
            "Authorization": self.server.headers()["Authorization"],
            "cookie": "",
            "user-agent": USER_AGENT_434,
        }
        if body:
            headers["Content-Type"] = "application/json"
        if prefer is not None:
            headers["Prefer"] = prefer
        return headers

    def send(self, method: str, path: str, body: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        content = None if body is None else json.dumps(body, sort_keys=True, separators=(",", ":"))
        return self.http.request(method, path, content=content, headers=self.headers(body=body is not None, **kw))


@pytest.fixture
def sdk(lmsgate_server: Any, fresh_account: str) -> Sdk434:
    return Sdk434(lmsgate_server, fresh_account)


def assert_envelope(resp: httpx.Response, status: int) -> dict[str, Any]:
    """CreateResult/UpsertResult/BatchResult as the SDK validates them: exact status, JSON, dates with offsets."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["statusCode"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert DATE_TIME.match(body["timestamp"]), body["timestamp"]
    return body


def assert_error(resp: httpx.Response, status: int, mention: str) -> None:
    body = assert_envelope(resp, status)
    assert mention in body["message"], body["message"]


# ---------------------------------------------------------------- completions

COMPLETION_434 = {
    # The body of the SDK reference's 4.34.1 probe (section 9.2) without its `content_id`, whose
    # value differs from `learning_object_id` there: lmsgate refuses two different values for one field.
    "completed_at": "2021-07-21T14:00:00.000Z",
    "learning_object_external_reference": "learning-content-123",
    "learning_object_id": "e3gd34-23tr21-er234-345er56",
    "passthrough": {"other_known_names": "John Doe"},
    "result": {"source_value": "passed", "value": "Pass"},
    "score": {"percentage": 87, "raw_value": "87 / 100"},
    "time_spent": "PT1H30M45S",
}


# SDK 4.34.1 sends Prefer only when the caller asks for it. lmsgate serves a completion
# without Prefer on its fast path (api/fastpath.py) and one with Prefer through FastAPI, so the
# completion tests run both ways.
PREFER = pytest.mark.parametrize("prefer", [None, "heartbeat"], ids=["no-prefer", "prefer-heartbeat"])


@PREFER
def test_completion_with_score_is_stored_and_read_back(sdk: Sdk434, prefer: str | None) -> None:
    created = sdk.send("POST", "/unified/lms/users/c28xyrc55866bvuv/completions", COMPLETION_434, prefer=prefer)
    body = assert_envelope(created, 201)
    assert created.headers.get("preference-applied") == prefer
    cid = body["data"]["id"]
    assert isinstance(cid, str) and cid

    got = sdk.send("GET", f"/unified/lms/completions/{cid}")
    assert got.status_code == 200
    data = got.json()["data"]
    assert data["score"] == {"percentage": 87, "raw_value": "87 / 100"}
    assert data["result"] == {"value": "Pass", "source_value": "passed"}
    assert data["learning_object_external_reference"] == "learning-content-123"
    assert data["learning_object_id"] == "e3gd34-23tr21-er234-345er56"
    assert data["time_spent"] == "PT1H30M45S"
    assert data["completed_at"] == "2021-07-21T14:00:00.000Z"
    listed = sdk.send("GET", "/unified/lms/users/c28xyrc55866bvuv/completions").json()["data"]
    assert [c["score"] for c in listed] == [{"percentage": 87, "raw_value": "87 / 100"}]


@pytest.mark.parametrize("score", [{"percentage": 87.5}, {"raw_value": "B+"}, {"percentage": 0, "raw_value": "0/10"}])
def test_partial_and_fractional_scores(sdk: Sdk434, score: dict[str, Any]) -> None:
    body = {"learning_object_external_reference": "lo-score", "score": score}
    cid = assert_envelope(sdk.send("POST", "/unified/lms/users/u1/completions", body), 201)["data"]["id"]
    got = sdk.send("GET", f"/unified/lms/users/u1/completions/{cid}").json()["data"]["score"]
    assert got == {"percentage": score.get("percentage"), "raw_value": score.get("raw_value")}


@PREFER
@pytest.mark.parametrize(("score", "why"), [
    ({"percentage": "87"}, "percentage"),
    ({"percentage": 101}, "percentage"),
    ({"percentage": -1}, "percentage"),
    ({"raw_value": 87}, "raw_value"),
])
def test_invalid_scores_are_refused(sdk: Sdk434, score: dict[str, Any], why: str, prefer: str | None) -> None:
    body = {"learning_object_external_reference": "lo-score", "score": score}
    assert_error(sdk.send("POST", "/unified/lms/users/u1/completions", body, prefer=prefer), 400, why)
    assert sdk.send("GET", "/unified/lms/completions").json()["data"] == []


@PREFER
def test_completion_requires_learning_object_external_reference(sdk: Sdk434, prefer: str | None) -> None:
    path = "/unified/lms/users/u1/completions"
    body = {k: v for k, v in COMPLETION_434.items() if k != "learning_object_external_reference"}
    assert_error(sdk.send("POST", path, body, prefer=prefer), 400, "learning_object_external_reference")
    empty = {**COMPLETION_434, "learning_object_external_reference": ""}
    assert_error(sdk.send("POST", path, empty, prefer=prefer), 400, "learning_object_external_reference")
    # The deprecated name still counts as the reference.
    legacy = {"content_external_reference": "legacy-ref", "completed_at": "2021-07-21T14:00:00.000Z"}
    cid = assert_envelope(sdk.send("POST", path, legacy, prefer=prefer), 201)["data"]["id"]
    got = sdk.send("GET", f"/unified/lms/completions/{cid}").json()["data"]
    assert got["learning_object_external_reference"] == "legacy-ref"


# ---------------------------------------------------------------- assignments


def test_assignment_with_assigned_at_is_stored_and_read_back(sdk: Sdk434) -> None:
    body = {
        "assigned_at": "2024-02-01T09:00:00.000Z",
        "due_date": "2024-06-30T17:00:00.000Z",
        "learning_object_external_reference": "course-sql",
        "progress": 10,
        "status": {"value": "pending"},
    }
    created = sdk.send("POST", "/unified/lms/users/u1/assignments", body)
    aid = assert_envelope(created, 201)["data"]["id"]
    assert created.headers["preference-applied"] == "heartbeat"
    got = sdk.send("GET", f"/unified/lms/users/u1/assignments/{aid}").json()["data"]
    assert got["assigned_at"] == "2024-02-01T09:00:00.000Z"
    assert got["due_date"] == "2024-06-30T17:00:00.000Z"
    assert got["progress"] == 10
    assert got["status"]["value"] == "pending"
    assert got["learning_object_external_reference"] == "course-sql"


def test_assignment_created_at_of_sdk_4_28_means_assigned_at(sdk: Sdk434) -> None:
    body = {"created_at": "2024-03-01T08:00:00.000Z", "learning_object_external_reference": "course-old-sdk"}
    aid = assert_envelope(sdk.send("POST", "/unified/lms/users/u1/assignments", body), 201)["data"]["id"]
    got = sdk.send("GET", f"/unified/lms/assignments/{aid}").json()["data"]
    assert got["assigned_at"] == "2024-03-01T08:00:00.000Z"


def test_assignment_requires_learning_object_external_reference(sdk: Sdk434) -> None:
    assert_error(sdk.send("POST", "/unified/lms/users/u1/assignments", {"assigned_at": "2024-02-01T09:00:00.000Z"}),
                 400, "learning_object_external_reference")
    assert_error(sdk.send("POST", "/unified/lms/users/u1/assignments", {"learning_object_external_reference": None}),
                 400, "learning_object_external_reference")
    # The deprecated `external_reference` still names the learning object.
    aid = assert_envelope(sdk.send("POST", "/unified/lms/users/u1/assignments", {"external_reference": "course-legacy"}),
                          201)["data"]["id"]
    got = sdk.send("GET", f"/unified/lms/assignments/{aid}").json()["data"]
    assert got["learning_object_external_reference"] == "course-legacy"


# ---------------------------------------------------------------- content


def test_content_with_passthrough_is_accepted(sdk: Sdk434) -> None:
    body = {
        "external_reference": "SOFTWARE-ENG-LV1-TRAINING-VIDEO-1",
        "title": "Software engineering, level 1",
        "content_type": {"value": "video"},
        "duration": "PT35M",
        "passthrough": {"provider_only_flag": True, "catalog": "eng"},
    }
    created = sdk.send("PUT", "/unified/lms/content", body)
    result = assert_envelope(created, 201)
    assert result["data"]["external_reference"] == "SOFTWARE-ENG-LV1-TRAINING-VIDEO-1"
    assert created.headers["preference-applied"] == "heartbeat"
    got = sdk.send("GET", f"/unified/lms/content/{result['data']['id']}").json()["data"]
    assert got["title"] == "Software engineering, level 1"
    assert got["duration"] == "PT35M"
    assert "passthrough" not in got and not any(k.startswith("_") for k in got), "passthrough is for the provider"


def test_batch_items_with_passthrough_and_a_missing_external_reference(sdk: Sdk434) -> None:
    items = [
        {"external_reference": "batch-1", "title": "One", "passthrough": {"k": 1}},
        {"title": "no reference", "passthrough": {"k": 2}},
        {"external_reference": "batch-3", "title": "Three", "passthrough": {"k": 3}},
    ]
    result = assert_envelope(sdk.send("POST", "/unified/lms/content/batch", {"items": items}), 202)
    assert result["errors"][0] == [] and result["errors"][2] == []
    assert any("external_reference" in e for e in result["errors"][1])
    listed = sdk.send("GET", "/unified/lms/content").json()["data"]
    assert sorted(c["external_reference"] for c in listed) == ["batch-1", "batch-3"]


def test_content_requires_external_reference(sdk: Sdk434) -> None:
    assert_error(sdk.send("PUT", "/unified/lms/content", {"title": "no reference", "passthrough": {}}), 400,
                 "external_reference")


# ---------------------------------------------------------------- Prefer: heartbeat


@pytest.mark.parametrize("prefer", ["heartbeat", "HeartBeat", "respond-async, heartbeat", "wait=10, heartbeat"])
def test_every_operation_answers_preference_applied(sdk: Sdk434, prefer: str) -> None:
    user = "learner-prefer"
    calls = [
        ("PUT", "/unified/lms/content", {"external_reference": "p-1", "title": "P"}, 201),
        ("POST", "/unified/lms/content/batch", {"items": [{"external_reference": "p-2"}]}, 202),
        ("POST", f"/unified/lms/users/{user}/completions", {"learning_object_external_reference": "p-1"}, 201),
        ("POST", f"/unified/lms/users/{user}/assignments", {"learning_object_external_reference": "p-1"}, 201),
        ("GET", "/unified/lms/completions", None, 200),
        ("GET", f"/unified/lms/users/{user}", None, 200),
        ("GET", "/unified/lms/content?page_size=1", None, 200),
        ("GET", "/unified/lms/users/nobody-here", None, 404),
    ]
    # With respond-async too (issue 6), single writes are accepted for background delivery: 202,
    # and both preferences applied. Reads and the batch (already a 202) stay as they are.
    asynchronous = "respond-async" in prefer
    # The learner exists before the loop: with respond-async the completion that would create it
    # is only stored later, by the background worker, and the GET below must not race it.
    assert sdk.send("PUT", f"/unified/lms/users/{user}", {"name": "Prefer"}).status_code == 201
    for method, path, body, status in calls:
        resp = sdk.send(method, path, body, prefer=prefer)
        applied = {p.strip() for p in resp.headers.get("preference-applied", "").split(",")}
        if asynchronous and method != "GET" and not path.endswith("/batch"):
            assert resp.status_code == 202, (method, path, resp.text)
            assert applied == {"heartbeat", "respond-async"}, (method, path, resp.headers)
        else:
            assert resp.status_code == status, (method, path, resp.text)
            assert applied == {"heartbeat"}, (method, path, resp.headers)
        assert resp.content.startswith(b"{"), "a fast answer carries no heartbeat"
        assert resp.headers["content-length"] == str(len(resp.content))
    for _ in range(400):  # an asynchronous completion is stored by the background worker
        listed = sdk.send("GET", f"/unified/lms/users/{user}/completions").json()["data"]
        if listed:
            break
        time.sleep(0.05)
    deleted = sdk.send("DELETE", f"/unified/lms/users/{user}/completions/{listed[0]['id']}", prefer=prefer)
    assert deleted.status_code == (202 if asynchronous else 200)
    assert "heartbeat" in deleted.headers["preference-applied"]


@pytest.mark.parametrize("prefer", [None, "return=minimal", "heartbeats", "respond-async"])
def test_no_preference_applied_without_heartbeat(sdk: Sdk434, prefer: str | None) -> None:
    resp = sdk.send("GET", "/unified/lms/completions", prefer=prefer)
    assert resp.status_code == 200
    assert "preference-applied" not in resp.headers
