"""Every success response of every operation validates against StackOne's response schema.

One scenario walks all 24 operations (StackOne's 23 plus ``lms_update_content``) on a fresh
account, with every optional field filled where lmsgate stores it, and checks each body.
"""

from __future__ import annotations

from typing import Any

import httpx
from stackone_contract import errors_in, operations, response_schema
from support import SEED_COMPLETION, Tenant

FULL_CONTENT = {
    "external_reference": "content-1", "title": "T", "description": "D", "content_url": "https://e.x/1",
    "mobile_launch_content_url": "https://m.e.x/1", "cover_url": "https://e.x/c.png", "active": True,
    "duration": "PT45M", "order": 1, "tags": ["a"], "authors": [{"id": "1", "name": "A"}],
    "languages": [{"value": "en_GB"}], "content_type": {"value": "quiz", "source_value": "QUIZ"},
    "categories": [{"name": "Cat", "level": {"value": "primary"}, "language": {"value": "en_GB"}}],
    "skills": [{"name": "Skill", "hierarchy": {"value": "secondary"}}],
    "localizations": [{"title": "L", "description": "LD", "language": {"value": "fr_FR"}, "tags": ["t"]}],
    "additional_data": [{"id": "k", "value": ["v"]}], "unified_custom_fields": {"x": 1},
    "short_description": "S", "created_at": "2020-01-01T00:00:00Z", "updated_at": "2020-01-02T00:00:00Z",
}


def _check(seen: dict[str, int], op: str, method: str, path: str, resp: httpx.Response, status: int) -> Any:
    assert resp.status_code == status, (op, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), op
    body = resp.json()
    if op == "lms_update_content":  # not in StackOne's 2025 document; SDK 4.28.0's UpdateResult
        assert set(body) == {"statusCode", "message", "timestamp"} and body["timestamp"].endswith("Z")
    else:
        problems = errors_in(response_schema(path, method, status), body)
        assert not problems, (op, problems, body)
    seen[op] = seen.get(op, 0) + 1
    return body


def test_every_operation_answers_in_stackone_shape(tenant: Tenant) -> None:
    seen: dict[str, int] = {}
    U = "/unified/lms"

    def call(op: str, method: str, template: str, status: int, url: str | None = None, **kw: Any) -> Any:
        resp = tenant.request(method, url or template, **kw)
        return _check(seen, op, method, template, resp, status)

    up = call("lms_upsert_content", "PUT", f"{U}/content", 201, json=FULL_CONTENT)
    content_id = up["data"]["id"]
    call("lms_batch_upsert_content", "POST", f"{U}/content/batch", 202,
         json={"items": [{**FULL_CONTENT, "external_reference": "content-2"}, {"title": "bad"}]})
    call("lms_update_content", "PATCH", f"{U}/content/{{id}}", 201, url=f"{U}/content/{content_id}",
         json={"title": "T2"})
    tenant.put(f"{U}/courses", json={"external_reference": "course-1", "title": "C", "duration": "PT2H",
                                     "content_external_references": ["content-1"],
                                     "categories": [{"name": "Cat"}], "authors": [{"name": "A"}]})
    tenant.put(f"{U}/users/u1", json={"name": "Ada", "email": "ada@example.com", "external_reference": "e1",
                                       "phone_number": "+441234", "active": "true"})

    completion = call("lms_create_user_completion", "POST", f"{U}/users/{{id}}/completions", 201,
                      url=f"{U}/users/u1/completions",
                      json={**SEED_COMPLETION, "learning_object_external_reference": "content-1",
                            "result": {"value": "Pass", "source_value": "passed"},
                            "score": {"percentage": 87.5, "raw_value": "87.5 / 100"}})
    cid = completion["data"]["id"]
    assignment = call("lms_create_user_assignment", "POST", f"{U}/users/{{id}}/assignments", 201,
                      url=f"{U}/users/u1/assignments",
                      json={"learning_object_external_reference": "course-1", "progress": 50,
                            "status": {"value": "in_progress"}, "due_date": "2030-01-01T00:00:00Z"})
    aid = assignment["data"]["id"]

    for raw in ("false", "true"):
        q = {"raw": raw}
        for op, path, url in [
            ("lms_list_completions", f"{U}/completions", None),
            ("lms_list_user_completions", f"{U}/users/{{id}}/completions", f"{U}/users/u1/completions"),
            ("lms_list_assignments", f"{U}/assignments", None),
            ("lms_list_user_assignments", f"{U}/users/{{id}}/assignments", f"{U}/users/u1/assignments"),
            ("lms_list_content", f"{U}/content", None),
            ("lms_list_courses", f"{U}/courses", None),
            ("lms_list_users", f"{U}/users", None),
            ("lms_list_categories", f"{U}/categories", None),
            ("lms_list_skills", f"{U}/skills", None),
        ]:
            body = call(op, "GET", path, 200, url=url, params={**q, "page_size": "1"})
            assert body["data"], op
        course_id = tenant.get(f"{U}/courses").json()["data"][0]["id"]
        category_id = tenant.get(f"{U}/categories").json()["data"][0]["id"]
        skill_id = tenant.get(f"{U}/skills").json()["data"][0]["id"]
        for op, path, url in [
            ("lms_get_completion", f"{U}/completions/{{id}}", f"{U}/completions/{cid}"),
            ("lms_get_user_completion", f"{U}/users/{{id}}/completions/{{subResourceId}}",
             f"{U}/users/u1/completions/{cid}"),
            ("lms_get_assignment", f"{U}/assignments/{{id}}", f"{U}/assignments/{aid}"),
            ("lms_get_user_assignment", f"{U}/users/{{id}}/assignments/{{subResourceId}}",
             f"{U}/users/u1/assignments/{aid}"),
            ("lms_get_content", f"{U}/content/{{id}}", f"{U}/content/{content_id}"),
            ("lms_get_course", f"{U}/courses/{{id}}", f"{U}/courses/{course_id}"),
            ("lms_get_user", f"{U}/users/{{id}}", f"{U}/users/u1"),
            ("lms_get_category", f"{U}/categories/{{id}}", f"{U}/categories/{category_id}"),
            ("lms_get_skill", f"{U}/skills/{{id}}", f"{U}/skills/{skill_id}"),
        ]:
            call(op, "GET", path, 200, url=url, params=q)

    call("lms_delete_user_completion", "DELETE", f"{U}/users/{{id}}/completions/{{subResourceId}}", 200,
         url=f"{U}/users/u1/completions/{cid}")

    expected = {op for op, _, _ in operations()} | {"lms_update_content"}
    assert set(seen) == expected, expected ^ set(seen)
    assert len(expected) == 24


def test_error_bodies_match_every_documented_error_schema(tenant: Tenant) -> None:
    cases = [
        (400, tenant.post("/unified/lms/users/u/completions", json={"time_spent": "bad"})),
        (401, tenant.client.get("/unified/lms/completions", headers={"x-account-id": tenant.account_id})),
        (404, tenant.get("/unified/lms/completions/missing")),
    ]
    for status, resp in cases:
        assert resp.status_code == status
        schema = response_schema("/unified/lms/completions", "get", status)
        assert not errors_in(schema, resp.json()), resp.json()


def test_validator_rejects_what_the_sdk_rejects() -> None:
    """Guard the guard: the checks above would catch the SDK's hard failures."""
    ok = {"statusCode": 201, "message": "m", "timestamp": "2021-01-01T00:00:00.000Z", "data": {"id": "x"}}
    assert not errors_in("CreateResult", ok)
    assert errors_in("CreateResult", {**ok, "timestamp": "2021-01-01T00:00:00"})
    assert errors_in("CreateResult", {k: v for k, v in ok.items() if k != "data"})
    assert errors_in("CompletionsPaginated", {"data": [{"id": 42}]})
    assert errors_in("CompletionsPaginated", {"data": [], "next": 5})
    assert not errors_in("CompletionsPaginated", {"data": [{"id": None, "score": None}], "next": None})
