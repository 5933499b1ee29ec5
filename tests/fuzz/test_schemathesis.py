"""Schemathesis against lmsgate, in two runs:

1. lmsgate's own ``/openapi.json``: every operation, lmsgate's extensions included, on
   SQLite and on PostgreSQL;
2. StackOne's LMS spec (the facts-only copy in ``tests/contract``), with lmsgate as the server:
   the StackOne contract checked on generated inputs, on PostgreSQL.

Both runs use every phase and both generation modes (see ``tests/fuzzing.py``), with a small
budget by default; ``LMSGATE_FUZZ_EXAMPLES=200 pytest tests/fuzz -s`` runs a long one. Each
test prints how many cases each operation got. There must be no 5xx from lmsgate, no answer
outside the documented response schemas, statuses and content types, and every error in
StackOne's shape. Cases these runs once found are kept as plain tests in
``tests/integration/test_fuzz_regressions.py``.

Checks left out, and why:

* ``positive_data_acceptance``: both specs type ``page_size``, ``page`` and the ids as free
  strings, while lmsgate (like StackOne) answers 400 to ``page_size=abc`` or to an email that
  is not one; the check would report the specs' looseness, not lmsgate's faults.
* ``negative_data_rejection``: negative cases still run through every check above, but a 2xx
  to them is not a failure: lmsgate accepts on purpose a few things both specs forbid (an
  empty ``updated_after`` means "no filter", a ``proxy[]`` value of any type is passed on as
  text, a batch with invalid items answers 202 with per-item ``errors``, as StackOne does).
* StackOne's spec lists no 413, 414 or 431, yet every HTTP server refuses a body, URL or
  header block past its limits. The StackOne run adds those three statuses to each operation,
  with StackOne's error shape (``with_head_and_body_limits``); lmsgate's own document lists
  them. The fuzzer reaches them: a query of several hundred ``filter[...]`` keys can pass
  ``LMSGATE_MAX_URL_BYTES``.
* ``ignored_auth`` and ``use_after_free`` / ``ensure_resource_availability``: authentication
  and the lifecycle of records have their own suites (``test_auth.py``, ``test_isolation.py``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient

from fuzzing import FUZZ_EXAMPLES, OURS, FuzzReport, open_enums, run
from lmsgate.api.app import create_app
from lmsgate.bootstrap import bootstrap
from lmsgate.settings import Settings
from support import SEED_COMPLETION, basic, shared_vault_key_file

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
"""Raised inside schemathesis's own strategies; its text would print the fuzz tenant's key."""

CONTRACT = Path(__file__).resolve().parents[1] / "contract" / "stackone-lms-contract.json"
CONFORMANCE = ["status_code_conformance", "content_type_conformance", "response_schema_conformance",
               "response_headers_conformance"]


def _target(database_url: str) -> dict[str, Any]:
    """An app of its own on the suite's database, without rate limits (the fuzzer sends far more
    than 1000 requests a minute), and a project with a local account and a few records.

    It shares the suite's vault key file, as a deployment's servers share one: with a key of its
    own, an account the fuzzer happened to link put credentials sealed by that key in the suite's
    database, and the suite's own container then rightly refused to make its first key beside
    them (every later test that links an account failed)."""
    container = bootstrap(Settings(
        database_url=database_url, rate_limit_per_minute=0, auth_failures_per_minute=0,
        vault_key_file=shared_vault_key_file(),
        delivery_in_process_worker=False,  # the suite's other apps deliver; this one only fuzzes
    ))
    project = container.tenancy.create_project(f"fuzz-{secrets.token_hex(3)}")
    key = container.tenancy.issue_key(project).secret
    account = container.tenancy.create_account(project, "local").id
    app = create_app(container)
    headers = {"Authorization": basic(key), "x-account-id": account}
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.put("/unified/lms/content", headers=headers, json={
            "external_reference": "learning-content-123", "title": "Seed", "categories": [{"name": "Seed"}],
            "skills": [{"name": "Seeding"}]}).status_code == 201
        assert client.post("/unified/lms/users/learner-1/completions", headers=headers,
                           json=SEED_COMPLETION).status_code == 201
        assert client.post("/unified/lms/users/learner-1/assignments", headers=headers, json={
            "learning_object_external_reference": "learning-content-123"}).status_code == 201
        assert client.put("/unified/lms/courses", headers=headers, json={
            "external_reference": "course-1", "title": "Seed course"}).status_code == 201
    return {"app": app, "key": key, "account": account, "container": container}


@pytest.fixture(scope="module")
def fuzz_target(db_url: str) -> Iterator[dict[str, Any]]:
    """On SQLite, then on PostgreSQL."""
    target = _target(db_url)
    yield target
    target["container"].engine.dispose()


@pytest.fixture(scope="module")
def pg_fuzz_target(postgres_url: str) -> Iterator[dict[str, Any]]:
    """On PostgreSQL, the production store, only: the StackOne run exercises the same code as the
    lmsgate run, which covers SQLite, and the suite's time is short."""
    target = _target(postgres_url)
    yield target
    target["container"].engine.dispose()


def _configure(schema: Any, target: dict[str, Any]) -> Any:
    schema.config.update(headers={"Authorization": basic(target["key"])},
                         parameters={"x-account-id": target["account"]})
    return schema


def _report(name: str, report: FuzzReport) -> None:
    print(f"\n{name}: {sum(report.calls.values())} cases, max_examples={FUZZ_EXAMPLES}\n{report.table()}")
    assert not report.errors, "\n\n".join(report.errors)
    assert not report.failures, "\n\n".join(f"{k}:\n{v}" for k, v in report.failures.items())


LIMIT_STATUSES = {"413": "PayloadTooLargeResponse", "414": "UriTooLongResponse",
                  "431": "RequestHeaderFieldsTooLargeResponse"}


def with_head_and_body_limits(spec: dict[str, Any]) -> dict[str, Any]:
    """StackOne's spec, with the size refusals any HTTP server makes added to each operation
    (the body is the same ``{statusCode, message, timestamp}`` shape as its other errors)."""
    schemas = spec["components"]["schemas"]
    for name in LIMIT_STATUSES.values():
        schemas.setdefault(name, schemas["TooManyRequestsResponse"])
    for path_item in spec["paths"].values():
        for operation in path_item.values():
            for status, name in LIMIT_STATUSES.items():
                operation["responses"].setdefault(status, {
                    "description": name,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}})
    return spec


def _schema(spec: dict[str, Any], target: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_dict(open_enums(spec))
    schema.app = target["app"]
    return _configure(schema, target)


def test_lmsgate_openapi(fuzz_target: dict[str, Any]) -> None:
    with TestClient(fuzz_target["app"]) as client:
        spec = client.get("/openapi.json").json()
    report = run(_schema(spec, fuzz_target), checks=[*OURS, *CONFORMANCE])
    _report("lmsgate /openapi.json", report)
    documented = {f"{m.upper()} {p}" for p, item in fuzz_target["app"].openapi()["paths"].items() for m in item}
    assert documented <= set(report.per_operation()), documented - set(report.per_operation())


def test_stackone_contract(pg_fuzz_target: dict[str, Any]) -> None:
    fuzz_target = pg_fuzz_target
    spec = with_head_and_body_limits(json.loads(CONTRACT.read_text()))
    spec.setdefault("openapi", "3.1.0")
    spec.setdefault("info", {"title": "StackOne LMS (facts-only copy)", "version": "contract"})
    report = run(_schema(spec, fuzz_target), checks=[*OURS, *CONFORMANCE])
    _report("StackOne LMS contract", report)
    assert len(report.per_operation()) >= len([1 for item in spec["paths"].values() for _ in item])
