"""Assignments, users, content, courses, categories and skills on the embedded LMS."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from support import Tenant, apps_with_own_engines, assert_stackone_error

from lmsgate.store import tables as t
from lmsgate.store.pagination import PageRequest
from sqlalchemy import func, select


def test_assignment_round_trip_and_filters(tenant: Tenant) -> None:
    a1 = tenant.post("/unified/lms/users/u1/assignments", json={
        "learning_object_external_reference": "course-a", "status": {"value": "in_progress"},
        "progress": 40, "due_date": "2030-01-01T00:00:00Z", "assigned_at": "2026-01-01T09:00:00+01:00"})
    assert a1.status_code == 201, a1.text
    aid = a1.json()["data"]["id"]
    a2 = tenant.post("/unified/lms/users/u2/assignments", json={
        "external_reference": "course-b", "created_at": "2026-02-01T00:00:00Z"})
    assert a2.status_code == 201, a2.text

    got = tenant.get(f"/unified/lms/assignments/{aid}").json()["data"]
    assert got["status"]["value"] == "in_progress" and got["progress"] == 40
    assert got["due_date"] == "2030-01-01T00:00:00.000Z"
    assert got["assigned_at"] == "2026-01-01T08:00:00.000Z"
    second = tenant.get(f"/unified/lms/assignments/{a2.json()['data']['id']}").json()["data"]
    assert second["learning_object_external_reference"] == "course-b"
    assert second["assigned_at"] == "2026-02-01T00:00:00.000Z"
    assert second["status"]["value"] == "pending"

    assert tenant.get(f"/unified/lms/users/u1/assignments/{aid}").status_code == 200
    assert_stackone_error(tenant.get(f"/unified/lms/users/u2/assignments/{aid}"), 404)

    def ids(path: str, **params: str) -> list[str]:
        return [a["id"] for a in tenant.get(path, params=params).json()["data"]]

    assert ids("/unified/lms/assignments", **{"filter[status]": "in_progress"}) == [aid]
    assert ids("/unified/lms/assignments", status="pending") == [a2.json()["data"]["id"]]
    assert ids("/unified/lms/assignments", user_id="u1") == [aid]
    assert ids("/unified/lms/assignments", remote_user_id="u1") == [aid]
    assert ids("/unified/lms/users/u1/assignments") == [aid]
    assert ids("/unified/lms/users/u1/assignments", **{"filter[status]": "completed"}) == []
    assert_stackone_error(tenant.get("/unified/lms/assignments", params={"filter[status]": "done"}), 400, "status")


def test_assignment_repeat_returns_same_id(tenant: Tenant) -> None:
    body = {"learning_object_external_reference": "c", "assigned_at": "2026-01-01T00:00:00Z"}
    first = tenant.post("/unified/lms/users/u1/assignments", json=body).json()["data"]["id"]
    assert tenant.post("/unified/lms/users/u1/assignments", json=body).json()["data"]["id"] == first


def test_concurrent_assignments_share_commits_but_not_records(tenant: Tenant, other_tenant: Tenant,
                                                              backend: str) -> None:
    """Assignments that arrive together are written in one transaction (group commit). Each
    must land as if sent alone: a repeat (same learner, object and assigned_at) gets the first
    one's id, each account keeps its own, and one the store refuses fails alone."""
    from concurrent.futures import ThreadPoolExecutor

    learners = [f"learner-{i}" for i in range(10)]
    sends = [(who, user, n) for user in learners for who in (tenant, other_tenant) for n in range(3)]
    long_ref = "x" * 300  # over the column's 255: PostgreSQL refuses it, SQLite keeps it

    def post(send: tuple[Tenant, str, int]) -> tuple[Tenant, str, Any]:
        who, user, n = send
        ref = long_ref if n < 0 else "course-1"
        return who, user, who.post(f"/unified/lms/users/{user}/assignments", json={
            "learning_object_external_reference": ref, "assigned_at": "2026-03-01T00:00:00Z",
            "progress": 10 * max(n, 0)})

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(post, [*sends[:25], (tenant, "learner-long", -1), *sends[25:]]))

    ids: dict[tuple[int, str], set[str]] = {}
    for who, user, response in results:
        if user == "learner-long":
            if backend == "postgresql":
                assert_stackone_error(response, 422, "learning_object_external_reference")
            else:
                assert response.status_code == 201, response.text
            continue
        assert response.status_code == 201, response.text
        ids.setdefault((id(who), user), set()).add(response.json()["data"]["id"])
    assert all(len(found) == 1 for found in ids.values())  # the repeats found the first
    assert len({i for found in ids.values() for i in found}) == 2 * len(learners)  # accounts apart
    for who in (tenant, other_tenant):
        listed = who.get("/unified/lms/assignments", params={"page_size": 100}).json()["data"]
        mine = [a for a in listed if a["learning_object_external_reference"] == "course-1"]
        assert sorted(a["user_id"] for a in mine) == sorted(learners)
        assert {a["id"] for a in mine} == {i for (w, _), found in ids.items() if w == id(who) for i in found}


@pytest.mark.parametrize("progress", [-1, 101, "50"])
def test_assignment_progress_is_checked(tenant: Tenant, progress: object) -> None:
    resp = tenant.post("/unified/lms/users/u1/assignments",
                       json={"learning_object_external_reference": "c", "progress": progress})
    assert_stackone_error(resp, 400, "progress")


def test_users_filter_by_email_and_external_reference(tenant: Tenant) -> None:
    for uid, email, ref in [("u1", "ada@example.com", "emp-1"), ("u2", "bob@example.com", "emp-2")]:
        resp = tenant.put(f"/unified/lms/users/{uid}", json={"email": email, "external_reference": ref,
                                                              "name": uid.upper(), "active": True})
        assert resp.status_code == 201, resp.text
    assert tenant.get("/unified/lms/users/u1").json()["data"]["email"] == "ada@example.com"
    by_email = tenant.get("/unified/lms/users", params={"filter[email]": "bob@example.com"}).json()["data"]
    assert [u["id"] for u in by_email] == ["u2"]
    by_ref = tenant.get("/unified/lms/users", params={"external_reference": "emp-1"}).json()["data"]
    assert [u["id"] for u in by_ref] == ["u1"]
    assert_stackone_error(tenant.get("/unified/lms/users/nobody"), 404)


CONTENT = {
    "external_reference": "SOFTWARE-ENG-LV1-VIDEO-1",
    "title": "Software engineering, level 1",
    "description": "Intro video",
    "content_url": "https://example.com/v1",
    "content_type": {"value": "video"},
    "duration": "PT90M",
    "active": True,
    "languages": [{"value": "en_GB"}],
    "tags": ["engineering"],
    "authors": [{"id": "a1", "name": "Ada"}],
    "categories": [{"name": "Technology"}, {"id": "cat-sales", "name": "Sales"}],
    "skills": [{"name": "Python", "level": {"value": "primary"}}],
    "localizations": [{"title": "Génie logiciel", "language": {"value": "fr_FR"}}],
    "additional_data": [{"id": "x", "value": "y"}],
    "passthrough": {"secret_sauce": 1},
}


def test_content_upsert_creates_then_updates(tenant: Tenant) -> None:
    created = tenant.put("/unified/lms/content", json=CONTENT)
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert data["external_reference"] == CONTENT["external_reference"] and data["id"]
    updated = tenant.put("/unified/lms/content", json={**CONTENT, "title": "Renamed", "duration": "PT2H"})
    assert updated.status_code == 201
    assert updated.json()["data"]["id"] == data["id"]

    got = tenant.get(f"/unified/lms/content/{data['id']}").json()["data"]
    assert got["title"] == "Renamed" and got["duration"] == "PT2H"
    assert got["content_type"] == {"value": "video", "source_value": None}
    assert got["provider"] == "local" and got["active"] is True
    assert {c["name"] for c in got["categories"]} == {"Technology", "Sales"}
    assert got["skills"][0]["name"] == "Python"
    assert "passthrough" not in got and "_passthrough" not in got
    assert len(tenant.get("/unified/lms/content").json()["data"]) == 1

    cats = tenant.get("/unified/lms/categories").json()["data"]
    assert {c["name"] for c in cats} == {"Technology", "Sales"}  # matched by name/id, not duplicated
    assert tenant.get("/unified/lms/categories/cat-sales").json()["data"]["name"] == "Sales"
    skills = tenant.get("/unified/lms/skills").json()["data"]
    assert [s["name"] for s in skills] == ["Python"]
    assert tenant.get(f"/unified/lms/skills/{skills[0]['id']}").json()["data"]["level"]["value"] == "primary"


def test_content_type_outside_the_read_enum_is_unmapped(tenant: Tenant) -> None:
    cid = tenant.put("/unified/lms/content", json={"external_reference": "b1", "content_type": {"value": "book"}})
    got = tenant.get(f"/unified/lms/content/{cid.json()['data']['id']}").json()["data"]
    assert got["content_type"] == {"value": "unmapped_value", "source_value": "book"}


def test_content_requires_external_reference(tenant: Tenant) -> None:
    assert_stackone_error(tenant.put("/unified/lms/content", json={"title": "x"}), 400, "external_reference")


@pytest.mark.parametrize("resource", ["content", "courses"])
def test_active_filter_finds_active_or_inactive_records(tenant: Tenant, resource: str) -> None:
    """filter[active]=false (or the flat active=false) finds the inactive ones; it used to
    filter nothing and list the active records too."""
    for ref, active in (("on", True), ("on-text", "true"), ("off", False), ("off-text", "false")):
        assert tenant.put(f"/unified/lms/{resource}", json={"external_reference": ref, "active": active}).status_code == 201
    listed = tenant.get(f"/unified/lms/{resource}").json()["data"]
    assert len(listed) == 4

    def refs(**params: str) -> list[str]:
        answer = tenant.get(f"/unified/lms/{resource}", params=params)
        assert answer.status_code == 200, answer.text
        return sorted(x["external_reference"] for x in answer.json()["data"])

    assert refs(**{"filter[active]": "true"}) == ["on", "on-text"]
    assert refs(**{"filter[active]": "false"}) == ["off", "off-text"]
    assert refs(active="false") == ["off", "off-text"]
    assert_stackone_error(tenant.get(f"/unified/lms/{resource}", params={"filter[active]": "maybe"}),
                          400, "filter[active]")


@pytest.mark.parametrize("path", ["/unified/lms/content", "/unified/lms/completions", "/unified/lms/users"])
def test_a_page_beyond_what_the_database_can_skip_is_400(tenant: Tenant, path: str) -> None:
    """A page whose offset overflows 64 bits was a 500 (OverflowError in the driver)."""
    assert tenant.get(path, params={"page": "2", "page_size": "1"}).status_code == 200
    for page in ("99999999999999999999", str(2**63)):
        assert_stackone_error(tenant.get(path, params={"page": page}), 400, "page")
    assert tenant.get(path, params={"page": str(2**62 // 1000 + 1), "page_size": "1000"}).status_code == 200


def test_batch_upsert_stores_good_items_and_reports_bad_ones(tenant: Tenant) -> None:
    items = [
        {"external_reference": "b-1", "title": "one"},
        {"title": "missing ref"},
        {"external_reference": "b-2", "duration": "soon"},
        {"external_reference": "b-3"},
        {"external_reference": "b-1", "title": "dup in batch"},
    ]
    resp = tenant.post("/unified/lms/content/batch", json={"items": items})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["statusCode"] == 202 and body["timestamp"].endswith("Z")
    errors = body["errors"]
    assert errors[0] == [] and errors[3] == []
    assert any("external_reference" in e for e in errors[1])
    assert any("duration" in e for e in errors[2])
    assert any("earlier in this batch" in e for e in errors[4])
    refs = sorted(c["external_reference"] for c in tenant.get("/unified/lms/content").json()["data"])
    assert refs == ["b-1", "b-3"]


@pytest.mark.parametrize("body", [{}, {"items": []}, {"items": "x"}, [], {"items": [{}] * 1001}])
def test_batch_envelope_errors_are_400(tenant: Tenant, body: object) -> None:
    assert_stackone_error(tenant.post("/unified/lms/content/batch", json=body), 400, "items")


def test_patch_content_changes_only_given_fields(tenant: Tenant) -> None:
    cid = tenant.put("/unified/lms/content", json=CONTENT).json()["data"]["id"]
    resp = tenant.patch(f"/unified/lms/content/{cid}", json={"title": "Patched", "duration": "PT30M"})
    assert resp.status_code == 201, resp.text
    assert set(resp.json()) == {"statusCode", "message", "timestamp"}
    got = tenant.get(f"/unified/lms/content/{cid}").json()["data"]
    assert got["title"] == "Patched" and got["duration"] == "PT30M"
    assert got["description"] == CONTENT["description"]
    assert_stackone_error(tenant.patch("/unified/lms/content/nope", json={"title": "x"}), 404)
    other = tenant.put("/unified/lms/content", json={"external_reference": "taken"}).json()["data"]["id"]
    assert_stackone_error(tenant.patch(f"/unified/lms/content/{cid}", json={"external_reference": "taken"}), 409)
    assert other
    # the reference upserts find it by cannot be emptied or cleared (an empty one was stored)
    for cleared in ("", None):
        assert_stackone_error(tenant.patch(f"/unified/lms/content/{cid}", json={"external_reference": cleared}),
                              400, "external_reference")
    assert tenant.get(f"/unified/lms/content/{cid}").json()["data"]["external_reference"] == CONTENT["external_reference"]


def test_a_batch_item_the_store_refuses_fails_alone(tenant: Tenant) -> None:
    """On PostgreSQL a reference longer than its column (255) refused the whole batch: a 422, and
    the good items were not stored either."""
    items = [{"external_reference": "good-b1", "title": "g"}, {"external_reference": "y" * 300},
             {"external_reference": "good-b2", "categories": [{"name": "c" * 300}]}, {"external_reference": "good-b3"}]
    resp = tenant.post("/unified/lms/content/batch", json={"items": items})
    assert resp.status_code == 202, resp.text
    errors = resp.json()["errors"]
    refs = {c["external_reference"] for c in tenant.get("/unified/lms/content").json()["data"]}
    assert {"good-b1", "good-b3"} <= refs and errors[0] == errors[3] == []
    if tenant.container.engine.dialect.name == "postgresql":  # SQLite keeps text of any length
        assert any("external_reference (300 characters; at most 255)" in e for e in errors[1])
        assert errors[2] and len(refs) == 2


def test_a_patch_with_the_deprecated_short_description_keeps_the_description(tenant: Tenant) -> None:
    """short_description is the description "when none is given": a PATCH sending only it
    overwrote the stored description."""
    cid = tenant.put("/unified/lms/content", json={"external_reference": "sd-1",
                                                  "description": "Original long description"}).json()["data"]["id"]
    assert tenant.patch(f"/unified/lms/content/{cid}", json={"short_description": "teaser"}).status_code == 201
    assert tenant.get(f"/unified/lms/content/{cid}").json()["data"]["description"] == "Original long description"
    bare = tenant.put("/unified/lms/content", json={"external_reference": "sd-2"}).json()["data"]["id"]
    assert tenant.patch(f"/unified/lms/content/{bare}", json={"short_description": "teaser"}).status_code == 201
    assert tenant.get(f"/unified/lms/content/{bare}").json()["data"]["description"] == "teaser"
    assert tenant.put("/unified/lms/content", json={"external_reference": "sd-3", "short_description": "s"}).json()
    assert [c["description"] for c in tenant.get("/unified/lms/content").json()["data"]
            if c["external_reference"] == "sd-3"] == ["s"]  # an upsert maps it as before


def test_renamed_content_stays_in_its_courses(tenant: Tenant) -> None:
    """Courses name content by reference: a PATCH of the reference dropped the content from its
    courses, and the next content given the old reference joined them in its place."""
    a = tenant.put("/unified/lms/content", json={"external_reference": "L-a"}).json()["data"]["id"]
    b = tenant.put("/unified/lms/content", json={"external_reference": "L-b"}).json()["data"]["id"]
    course_id = tenant.put("/unified/lms/courses", json={
        "external_reference": "L-course", "content_external_references": ["L-a", "L-b"]}).json()["data"]["id"]
    both = tenant.put("/unified/lms/courses", json={  # names the new reference already
        "external_reference": "L-both", "content_external_references": ["L-a", "L-b", "L-a-v2"]}).json()["data"]["id"]
    assert tenant.patch(f"/unified/lms/content/{a}", json={"external_reference": "L-a-v2"}).status_code == 201
    assert tenant.get(f"/unified/lms/courses/{course_id}").json()["data"]["content_ids"] == [a, b]
    assert tenant.get(f"/unified/lms/courses/{both}").json()["data"]["content_ids"] == [b, a]  # once
    assert sorted(tenant.get(f"/unified/lms/content/{a}").json()["data"]["course_ids"]) == sorted([course_id, both])
    x = tenant.put("/unified/lms/content", json={"external_reference": "L-a", "title": "Unrelated"}).json()["data"]["id"]
    assert tenant.get(f"/unified/lms/content/{x}").json()["data"]["course_ids"] == []
    assert tenant.get(f"/unified/lms/courses/{course_id}").json()["data"]["content_ids"] == [a, b]


def test_a_course_naming_a_content_twice_lists_it_once(tenant: Tenant) -> None:
    """A repeated reference leaked the database's unique-constraint message as a 422."""
    c1 = tenant.put("/unified/lms/content", json={"external_reference": "twice-1"}).json()["data"]["id"]
    c2 = tenant.put("/unified/lms/content", json={"external_reference": "twice-2"}).json()["data"]["id"]
    course = tenant.put("/unified/lms/courses", json={
        "external_reference": "twice-course", "content_external_references": ["twice-2", "twice-1", "twice-2"]})
    assert course.status_code == 201, course.text
    got = tenant.get(f"/unified/lms/courses/{course.json()['data']['id']}").json()["data"]
    assert got["content_ids"] == [c2, c1]
    assert_stackone_error(tenant.put("/unified/lms/courses", json={
        "external_reference": "twice-course", "content_external_references": [""]}), 400, "content_external_references")


def test_courses_list_their_content(tenant: Tenant) -> None:
    c1 = tenant.put("/unified/lms/content", json={"external_reference": "m1"}).json()["data"]["id"]
    c2 = tenant.put("/unified/lms/content", json={"external_reference": "m2"}).json()["data"]["id"]
    course = tenant.put("/unified/lms/courses", json={
        "external_reference": "course-1", "title": "Course", "content_external_references": ["m2", "m1"],
        "duration": "PT3H"})
    assert course.status_code == 201, course.text
    course_id = course.json()["data"]["id"]
    got = tenant.get(f"/unified/lms/courses/{course_id}").json()["data"]
    assert got["content_ids"] == [c2, c1] and got["duration"] == "PT3H"
    assert tenant.get(f"/unified/lms/content/{c1}").json()["data"]["course_ids"] == [course_id]
    assert [c["id"] for c in tenant.get("/unified/lms/courses").json()["data"]] == [course_id]
    completion = tenant.post("/unified/lms/users/u/completions",
                             json={"learning_object_external_reference": "course-1"}).json()["data"]["id"]
    data = tenant.get(f"/unified/lms/completions/{completion}").json()["data"]
    assert data["learning_object_type"]["value"] == "course" and data["course_id"] == course_id


def test_concurrent_content_upserts_share_commits_but_not_records(tenant: Tenant, other_tenant: Tenant) -> None:
    """Single upserts that arrive together are written in one transaction (group commit).
    Each must still land as if sent alone: the same reference twice is one record, each
    account keeps its own, and one upsert the store refuses fails alone."""
    from concurrent.futures import ThreadPoolExecutor

    refs = [f"sync-{i}" for i in range(12)]
    sends = [(who, ref, title) for ref in refs for who in (tenant, other_tenant) for title in ("A", "B")]
    long_ref = "x" * 300  # over the column's 255: PostgreSQL refuses it, SQLite keeps it

    def put(send: tuple[Tenant, str, str]) -> tuple[Tenant, str, Any]:
        who, ref, title = send
        return who, ref, who.put("/unified/lms/content", json={"external_reference": ref, "title": title})

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(put, [*sends[:20], (tenant, long_ref, "long"), *sends[20:]]))

    ids: dict[tuple[int, str], set[str]] = {}
    for who, ref, response in results:
        if ref == long_ref:
            assert response.status_code in (201, 422), response.text
            if response.status_code == 422:
                assert_stackone_error(response, 422, "external_reference")
            continue
        assert response.status_code == 201, response.text
        ids.setdefault((id(who), ref), set()).add(response.json()["data"]["id"])
    assert all(len(found) == 1 for found in ids.values())  # the second upsert found the first
    assert len({i for found in ids.values() for i in found}) == 2 * len(refs)  # accounts apart
    for who in (tenant, other_tenant):
        listed = who.get("/unified/lms/content", params={"page_size": 100}).json()["data"]
        mine = {c["external_reference"]: c for c in listed if c["external_reference"] != long_ref}
        assert set(mine) == set(refs)
        assert {c["title"] for c in mine.values()} <= {"A", "B"}


def test_concurrent_course_and_learner_upserts_share_commits_but_not_records(
        tenant: Tenant, other_tenant: Tenant, backend: str) -> None:
    """Course and learner upserts that arrive together share a transaction too, and each
    lands as if sent alone: a course with its content links and categories, a learner with
    the fields sent; the same reference twice is one record, accounts stay apart, and one
    upsert the store refuses (PostgreSQL: a reference over 255 characters) fails alone."""
    from concurrent.futures import ThreadPoolExecutor

    refs = [f"course-{i}" for i in range(10)]
    long_ref = "x" * 300

    def course(who: Tenant, ref: str, variant: str) -> Any:
        return who.put("/unified/lms/courses", json={
            "external_reference": ref, "title": f"{ref} {variant}",
            "content_external_references": [f"{ref}-{variant}-1", f"{ref}-{variant}-2"],
            "categories": [{"name": "Safety"}, {"name": f"Cat {variant}"}]})

    def learner(who: Tenant, ref: str, variant: str) -> Any:
        return who.put(f"/unified/lms/users/{ref.replace('course', 'learner')}", json={
            "external_reference": ref if ref != long_ref else long_ref, "name": f"{ref} {variant}"})

    sends = [(fn, who, ref, variant) for ref in refs for who in (tenant, other_tenant)
             for variant in ("A", "B") for fn in (course, learner)]
    sends[40:40] = [(course, tenant, long_ref, "A"), (learner, tenant, long_ref, "A")]
    with ThreadPoolExecutor(16) as pool:
        content = [(who, f"{ref}-{variant}-{n}") for ref in refs for who in (tenant, other_tenant)
                   for variant in ("A", "B") for n in (1, 2)]
        assert all(r.status_code == 201 for r in pool.map(
            lambda sent: sent[0].put("/unified/lms/content", json={"external_reference": sent[1]}), content))
        results = list(pool.map(lambda send: (send, send[0](*send[1:])), sends))

    course_ids: dict[tuple[int, str], set[str]] = {}
    for (fn, who, ref, _), response in results:
        if ref == long_ref:
            if backend == "postgresql":
                assert_stackone_error(response, 422, "external_reference")
            else:
                assert response.status_code == 201, response.text
            continue
        assert response.status_code == 201, response.text
        if fn is course:
            course_ids.setdefault((id(who), ref), set()).add(response.json()["data"]["id"])
    assert all(len(found) == 1 for found in course_ids.values())  # the second upsert found the first
    assert len({i for found in course_ids.values() for i in found}) == 2 * len(refs)  # accounts apart
    for who in (tenant, other_tenant):
        courses = {c["external_reference"]: c for c in
                   who.get("/unified/lms/courses", params={"page_size": 100}).json()["data"]
                   if c["external_reference"] != long_ref}
        assert set(courses) == set(refs)
        for ref, c in courses.items():
            variant = c["title"].rsplit(" ", 1)[1]  # the last upsert wins, links and all
            linked = {who.get(f"/unified/lms/content/{cid}").json()["data"]["external_reference"]
                      for cid in c["content_ids"]}
            assert linked == {f"{ref}-{variant}-1", f"{ref}-{variant}-2"}, (ref, c)
        categories = who.get("/unified/lms/categories", params={"page_size": 100}).json()["data"]
        assert sorted(x["name"] for x in categories) == ["Cat A", "Cat B", "Safety"]  # each made once
        users = {u["id"]: u for u in who.get("/unified/lms/users", params={"page_size": 100}).json()["data"]}
        for ref in refs:
            user = users[ref.replace("course", "learner")]
            assert user["external_reference"] == ref and user["name"] in (f"{ref} A", f"{ref} B")


@pytest.mark.parametrize("path", ["/unified/lms/content", "/unified/lms/courses", "/unified/lms/users/learner-9"])
def test_an_external_reference_longer_than_the_store_holds(tenant: Tenant, backend: str, path: str) -> None:
    """PostgreSQL holds 255 characters there: longer is a 422 naming the field (it was a 500),
    and nothing stored before is lost. SQLite does not enforce lengths, and keeps it."""
    kept = tenant.put("/unified/lms/content", json={"external_reference": "kept", "title": "Kept"})
    assert kept.status_code == 201
    response = tenant.put(path, json={"external_reference": "r" * 300})
    if backend == "postgresql":
        assert_stackone_error(response, 422, "external_reference", "at most 255")
    else:
        assert response.status_code == 201, response.text
    listed = tenant.get("/unified/lms/content").json()["data"]
    assert [c["title"] for c in listed if c["external_reference"] == "kept"] == ["Kept"]


@pytest.mark.parametrize("what", ["completions", "assignments"])
def test_a_learning_object_reference_longer_than_the_store_holds(tenant: Tenant, backend: str, what: str) -> None:
    """Completions and assignments are written through the bulk insert: its refusal names the
    column too, and what was stored before stays."""
    path = f"/unified/lms/users/learner-1/{what}"
    kept = tenant.post(path, json={"learning_object_external_reference": "kept"})
    assert kept.status_code == 201, kept.text
    response = tenant.post(path, json={"learning_object_external_reference": "r" * 300})
    if backend == "postgresql":
        assert_stackone_error(response, 422, "learning_object_external_reference", "300 characters; at most 255")
    else:
        assert response.status_code == 201, response.text
    listed = tenant.get(f"/unified/lms/users/learner-1/{what}").json()["data"]
    assert kept.json()["data"]["id"] in [item["id"] for item in listed]


def test_a_batch_upsert_lands_as_the_same_upserts_one_by_one(tenant: Tenant, other_tenant: Tenant) -> None:
    """The store writes a batch in a few statements; the result must be what writing its
    items one after another gives: repeats update the row their first occurrence made, and
    keys stored before are updated, not duplicated."""
    import random

    from lmsgate.ids import new_id
    from lmsgate.store import tables as t

    store = tenant.container.store
    rng = random.Random(7)
    for round_ in range(4):
        keys = [f"k{rng.randrange(12)}" for _ in range(rng.randrange(1, 30))]
        docs = [{"id": new_id(), "external_reference": k, "active": rng.randrange(2),
                 "doc": {"title": f"{k}-{round_}-{i}"}} for i, k in enumerate(keys)]
        ts = datetime.now(timezone.utc)
        batch = store.upsert_docs(t.content, tenant.account_id, [dict(d) for d in docs], ts)
        alone = [r for d in docs for r in store.upsert_docs(t.content, other_tenant.account_id,
                                                              [{**d, "id": new_id()}], ts)]
        assert [created for _, created in batch] == [created for _, created in alone]
        for (id_a, _), (id_b, _), key in zip(batch, alone, keys):  # one row per key, in both
            assert [i for (i, _), k in zip(batch, keys) if k == key] == [id_a] * keys.count(key)
            assert [i for (i, _), k in zip(alone, keys) if k == key] == [id_b] * keys.count(key)

    def stored(account: str) -> dict[str, tuple[Any, ...]]:
        rows = store.list(t.content, account, PageRequest(page_size=100)).items
        return {r["external_reference"]: (r["active"], r["doc"]["title"]) for r in rows}

    assert stored(tenant.account_id) == stored(other_tenant.account_id)
    assert len(stored(tenant.account_id)) == len(set(stored(tenant.account_id)))



@pytest.mark.parametrize("kind", ["content batch", "content", "learner"])
def test_an_upsert_raced_by_another_process_for_a_new_key_still_succeeds(
        tenant: Tenant, db_url: str, backend: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two apps with engines of their own, as two processes have. App A's upsert looks its key
    up and finds nothing; just before it inserts, app B upserts the same key.

    B commits first, and A's insert breaks the unique key. A batch of content answered that
    with every item refused (both databases); A now runs again, finds B's record and updates
    it. Single upserts survived one such race already: a group of writes the store refuses is
    retried item by item.

    On SQLite, lmsgate's processes take turns on a file lock for their whole write
    transaction, so B would wait for A (tests/integration/test_sqlite_writers.py). Without
    that lock (where the operating system has no ``flock``, or beside a writer that does not
    take it) the race is as on PostgreSQL: the apps here go without it."""
    import threading

    from sqlalchemy import event

    from lmsgate.store import db
    from support import basic

    monkeypatch.setattr(db, "fcntl", None)

    headers = {"Authorization": basic(tenant.api_key), "x-account-id": tenant.account_id}
    ref = f"racer-{kind.replace(' ', '-')}-{tenant.account_id[-6:]}"
    table, method, path, body, b_body = {
        "content batch": ("content", "POST", "/unified/lms/content/batch",
                          {"items": [{"external_reference": ref, "title": "A"},
                                     {"external_reference": ref + "-2", "title": "A"}]},
                          {"items": [{"external_reference": ref, "title": "B"}]}),
        "content": ("content", "PUT", "/unified/lms/content", {"external_reference": ref, "title": "A"},
                    {"external_reference": ref, "title": "B"}),
        "learner": ("lms_users", "PUT", f"/unified/lms/users/{ref}", {"name": "A"}, {"name": "B"}),
    }[kind]
    b_answers: list[int] = []
    b_thread = threading.Thread(
        target=lambda: b_answers.append(app_b.request(method, path, json=b_body, headers=headers).status_code))
    with apps_with_own_engines(db_url, rate_limit_per_minute=0) as (app_a, app_b):

        @event.listens_for(app_a.app.state.container.engine, "before_cursor_execute")
        def b_goes_now(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if not b_thread.is_alive() and not b_answers and statement.startswith(f"INSERT INTO {table} "):
                b_thread.start()
                b_thread.join(10)

        answer = app_a.request(method, path, json=body, headers=headers)
        b_thread.join(30)
    assert answer.status_code in (201, 202), answer.text
    assert b_answers and b_answers[0] in (201, 202)
    if kind == "content batch":
        assert answer.json()["errors"] == [[], []]
    last = "A"  # A wrote last, over B's record
    if kind == "learner":
        assert tenant.get(path).json()["data"]["name"] == last
    else:
        listed = [x for x in tenant.get("/unified/lms/content", params={"page_size": 500}).json()["data"]
                  if x["external_reference"] == ref]
        assert [x["title"] for x in listed] == [last]  # one record, written twice


def test_a_new_category_named_by_concurrent_upserts_is_made_once(tenant: Tenant, db_url: str) -> None:
    """Courses and content naming the same new category and skill, upserted at once through
    two apps (and, within each, through two kinds of write that commit apart). Categories and
    skills are found by name, which no constraint makes unique: on PostgreSQL most names were
    made two to four times."""
    from concurrent.futures import ThreadPoolExecutor

    from support import basic

    headers = {"Authorization": basic(tenant.api_key), "x-account-id": tenant.account_id}
    names = [f"Topic {i}" for i in range(12)]

    def send(job: tuple[Any, str, str, int]) -> int:
        client, kind, name, n = job
        taxonomy = {"categories": [{"name": name}], "skills": [{"name": f"{name} skill"}]}
        body = {"external_reference": f"{kind}-{name}-{n}", "title": name, **taxonomy}
        return client.put(f"/unified/lms/{kind}", json=body, headers=headers).status_code

    with apps_with_own_engines(db_url, rate_limit_per_minute=0) as (a, b), ThreadPoolExecutor(8) as pool:
        jobs = [(client, kind, name, n) for name in names for n, client in enumerate((a, b))
                for kind in ("courses", "content")]
        assert set(pool.map(send, jobs)) == {201}
    for path, suffix in (("/unified/lms/categories", ""), ("/unified/lms/skills", " skill")):
        made = [x["name"] for x in tenant.get(path, params={"page_size": 500}).json()["data"]]
        assert sorted(made) == sorted(f"{n}{suffix}" for n in names), path


def test_patches_of_different_fields_at_once_all_land(tenant: Tenant, db_url: str) -> None:
    """PATCH reads the content, merges the fields sent and writes it back. Three PATCHes of
    different fields at once, through two apps: on PostgreSQL nearly every object lost one
    (the reads did not lock the row)."""
    from concurrent.futures import ThreadPoolExecutor

    from support import basic

    headers = {"Authorization": basic(tenant.api_key), "x-account-id": tenant.account_id}
    with apps_with_own_engines(db_url, rate_limit_per_minute=0) as (a, b), ThreadPoolExecutor(6) as pool:
        ids = [a.put("/unified/lms/content", json={"external_reference": f"patch-{i}", "title": "old",
                                                   "description": "old", "tags": ["old"]},
                     headers=headers).json()["data"]["id"] for i in range(10)]
        changes = [{"title": "new"}, {"description": "new"}, {"tags": ["new"]}]
        jobs = [(client, cid, change) for cid in ids for client, change in zip((a, b, a), changes)]
        answers = list(pool.map(lambda j: j[0].patch(f"/unified/lms/content/{j[1]}", json=j[2],
                                                        headers=headers).status_code, jobs))
    assert set(answers) == {201}
    for cid in ids:
        got = tenant.get(f"/unified/lms/content/{cid}").json()["data"]
        assert (got["title"], got["description"], got["tags"]) == ("new", "new", ["new"]), got


def test_deleting_an_account_while_another_process_writes_to_it(tenant: Tenant, db_url: str) -> None:
    """App A deletes an account while app B (an engine of its own, as another process) posts
    completions to it. The delete succeeds and leaves nothing behind; each post is stored
    before the delete or answered 404. On PostgreSQL the delete was a 500 most times (a
    completion committed after the records' delete blocked the account's), and posts were
    422s quoting the database's foreign-key message."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from support import basic

    account = tenant.container.tenancy.create_account(tenant.project_id, "local").id
    key = tenant.container.store.account_key(account)
    headers = {"Authorization": basic(tenant.api_key), "x-account-id": account}
    stop = threading.Event()

    def write(n: int) -> list[tuple[int, str]]:
        out = []
        i = 0
        while not stop.is_set():
            i += 1
            r = b.post(f"/unified/lms/users/del-{n}-{i % 3}/completions", headers=headers,
                       json={"learning_object_external_reference": f"del-{n}-{i}", "completed_at": "2024-01-01T00:00:00Z"})
            out.append((r.status_code, r.text))
        return out

    with apps_with_own_engines(db_url, rate_limit_per_minute=0) as (a, b), ThreadPoolExecutor(4) as pool:
        writers = [pool.submit(write, n) for n in range(4)]
        time.sleep(0.5)
        deleted = a.delete(f"/accounts/{account}", headers={"Authorization": basic(tenant.api_key)})
        time.sleep(2.5)  # past the 2 s for which B may still answer from its memory of the account
        stop.set()
        answers = [a for w in writers for a in w.result()]
    assert deleted.status_code == 200, deleted.text
    assert answers and {status for status, _ in answers} <= {201, 404}, \
        [a for a in answers if a[0] not in (201, 404)][:3]
    assert answers[-1][0] == 404
    with tenant.container.engine.connect() as conn:
        for table in (t.completions, t.users):
            left = conn.execute(select(func.count()).select_from(table).where(table.c.account_key == key)).scalar()
            assert left == 0, table.name


def test_a_category_is_one_record_whoever_names_it(tenant: Tenant) -> None:
    """A later content naming a category with fewer fields wiped its other fields for every
    content, and each content showed its own stale copy: a rename through one content left the
    others, and GET /categories/{id}, disagreeing under one id."""
    first = tenant.put("/unified/lms/content", json={"external_reference": "tx-1", "categories": [
        {"name": "Hier", "hierarchy": {"value": "primary"}, "language": {"value": "de_DE"}}]}).json()["data"]["id"]
    (cat,) = tenant.get(f"/unified/lms/content/{first}").json()["data"]["categories"]
    stamp = tenant.get(f"/unified/lms/categories/{cat['id']}").json()["data"]
    second = tenant.put("/unified/lms/content", json={"external_reference": "tx-2",
                                                      "categories": [{"name": "Hier"}]}).json()["data"]["id"]
    kept = tenant.get(f"/unified/lms/categories/{cat['id']}").json()["data"]
    assert kept == stamp  # nothing sent changed it: the same record, hierarchy and language kept
    tenant.put("/unified/lms/content", json={"external_reference": "tx-3",
                                             "categories": [{"id": cat["id"], "name": "Renamed"}]})
    for cid in (first, second):
        (shown,) = tenant.get(f"/unified/lms/content/{cid}").json()["data"]["categories"]
        assert (shown["id"], shown["name"], shown["hierarchy"]["value"]) == (cat["id"], "Renamed", "primary")
    assert tenant.get(f"/unified/lms/categories/{cat['id']}").json()["data"]["name"] == "Renamed"
    listed = tenant.get("/unified/lms/content").json()["data"]
    assert {c["categories"][0]["name"] for c in listed if c["external_reference"].startswith("tx-")} == {"Renamed"}


def test_the_deprecated_level_is_the_hierarchy(tenant: Tenant) -> None:
    cid = tenant.put("/unified/lms/content", json={"external_reference": "lvl-1", "categories": [
        {"name": "Lvl", "level": {"value": "secondary"}}], "skills": [{"name": "Sk", "level": {"value": "primary"}}]}
    ).json()["data"]["id"]
    got = tenant.get(f"/unified/lms/content/{cid}").json()["data"]
    assert got["categories"][0]["hierarchy"]["value"] == "secondary" and got["skills"][0]["hierarchy"]["value"] == "primary"
    cat = tenant.get(f"/unified/lms/categories/{got['categories'][0]['id']}").json()["data"]
    assert cat["hierarchy"]["value"] == "secondary"


def test_a_category_named_twice_by_one_content_is_listed_once(tenant: Tenant) -> None:
    cid = tenant.put("/unified/lms/content", json={"external_reference": "twice-cat", "skills": [
        {"name": "Sk2", "hierarchy": {"value": "primary"}}, {"name": "Sk2", "hierarchy": {"value": "secondary"}}]}
    ).json()["data"]["id"]
    (skill,) = tenant.get(f"/unified/lms/content/{cid}").json()["data"]["skills"]
    assert skill["hierarchy"]["value"] == "primary"


@pytest.mark.parametrize(("path", "method"), [("/unified/lms/content", "PUT"),
                                              ("/unified/lms/users/u/completions", "POST")])
@pytest.mark.parametrize(("content_type", "body"), [("text/plain", '{"external_reference": "x"}'),
                                                    ("application/json", '"a string"')])
def test_a_body_that_is_no_json_object_says_so(tenant: Tenant, path: str, method: str, content_type: str,
                                                body: str) -> None:
    resp = tenant.request(method, path, content=body, headers={"content-type": content_type})
    assert_stackone_error(resp, 400, "body: must be a JSON object", "application/json")
