"""``Prefer: heartbeat``: newline heartbeats keep a slow request alive (lmsgate.api.heartbeat).

The first tests use a real ``lmsgate serve`` configured to start heartbeats after 0.25 s, one
every 0.05 s, and a deliberately slow real operation: a batch upsert of 1000 items, each
filing its content under eight categories and eight skills, which took 0.9-2 s on SQLite here
with four of each (the machine's speed varies from day to day).

The last tests drive the middleware alone around a small FastAPI app whose handler sleeps,
to pin what happens when an operation fails *after* heartbeats committed its status, which no
real lmsgate operation can be made to do on demand.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from lmsgate.api.heartbeat import Heartbeat, prefers_heartbeat
from lmsgate.api.responses import JSONResponse, error_body

SLOW_BATCH = 1000


def slow_batch() -> dict[str, Any]:
    return {"items": [
        {
            "external_reference": f"hb-{i:04d}",
            "title": f"Heartbeat item {i}",
            "duration": "PT10M",
            # several categories and skills per item keep the batch well above a second, now
            # that one item costs little
            "categories": [{"name": f"hb-category-{(i + k) % 50}"} for k in range(8)],
            "skills": [{"name": f"hb-skill-{(i + k) % 50}"} for k in range(8)],
        }
        for i in range(SLOW_BATCH)
    ]}


def stream(server: Any, account: str, method: str, path: str, *, prefer: str | None, body: Any = None
           ) -> tuple[httpx.Response, float, list[tuple[float, bytes]], float]:
    """Send a request and note when the status line and each body chunk arrived."""
    headers = server.headers(account)
    if prefer:
        headers["Prefer"] = prefer
    started = time.monotonic()
    chunks: list[tuple[float, bytes]] = []
    with server.client() as http, http.stream(method, path, json=body, headers=headers) as resp:
        head_at = time.monotonic() - started
        for chunk in resp.iter_raw():
            chunks.append((time.monotonic() - started, chunk))
    return resp, head_at, chunks, time.monotonic() - started


def test_a_slow_request_gets_its_status_then_heartbeats_then_its_json(heartbeat_server: Any) -> None:
    account = heartbeat_server.add_account("local")
    resp, head_at, chunks, total = stream(heartbeat_server, account, "POST", "/unified/lms/content/batch",
                                          prefer="heartbeat", body=slow_batch())
    body = b"".join(c for _, c in chunks)
    assert total > 0.6, f"the batch took only {total:.2f} s; it no longer exercises heartbeats"
    # The status line went out once the 0.25 s threshold passed, well before the body was ready.
    assert resp.status_code == 202, "heartbeats commit to the operation's documented status"
    assert resp.headers["preference-applied"] == "heartbeat"
    assert resp.headers["content-type"] == "application/json"
    assert "content-length" not in resp.headers
    assert 0.2 <= head_at < total - 0.15, (head_at, total)
    beats = len(body) - len(body.lstrip(b"\n"))
    assert beats >= 3, f"expected several newline heartbeats, got {beats}"
    assert chunks[0][1].startswith(b"\n")
    assert body.rstrip().endswith(b"}")
    result = json.loads(body)  # whitespace before a JSON value is still JSON
    assert result["statusCode"] == 202
    assert result["errors"] == [[]] * SLOW_BATCH
    listed = heartbeat_server.client().get("/unified/lms/content?page_size=1000",
                                           headers=heartbeat_server.headers(account)).json()["data"]
    assert len(listed) == SLOW_BATCH


def test_without_the_preference_a_slow_request_waits_silently(heartbeat_server: Any) -> None:
    account = heartbeat_server.add_account("local")
    resp, head_at, chunks, total = stream(heartbeat_server, account, "POST", "/unified/lms/content/batch",
                                          prefer=None, body=slow_batch())
    body = b"".join(c for _, c in chunks)
    assert total > 0.6
    assert head_at > total - 0.1, "no status line before the operation finished"
    assert resp.status_code == 202
    assert "preference-applied" not in resp.headers
    assert resp.headers["content-length"] == str(len(body))
    assert body.startswith(b"{")


@pytest.mark.parametrize(("method", "path", "body", "status", "account"), [
    ("GET", "/unified/lms/users/nobody", None, 404, "own"),
    ("POST", "/unified/lms/users/u1/completions", {"completed_at": "2021-07-21T14:00:00Z"}, 400, "own"),
    ("GET", "/unified/lms/completions", None, 404, "missing-account"),
    ("GET", "/unified/lms/completions", None, 200, "own"),
])
def test_fast_answers_keep_their_exact_status(heartbeat_server: Any, method: str, path: str, body: Any,
                                              status: int, account: str) -> None:
    account_id = heartbeat_server.add_account("local") if account == "own" else account
    resp, _, chunks, _ = stream(heartbeat_server, account_id, method, path, prefer="heartbeat", body=body)
    raw = b"".join(c for _, c in chunks)
    assert resp.status_code == status, raw
    assert resp.headers["preference-applied"] == "heartbeat"
    assert resp.headers["content-length"] == str(len(raw))
    assert raw.startswith(b"{")
    answer = json.loads(raw)
    assert answer["statusCode"] == status if status >= 400 else isinstance(answer["data"], list)


# ---------------------------------------------------------------- the middleware alone


def _app(*, delay: float, outcome: str) -> FastAPI:
    """Registered as lmsgate registers it: inside Starlette's outermost error middleware."""
    app = FastAPI()
    app.add_middleware(Heartbeat, after=0.05, interval=0.02)

    @app.post("/things", status_code=201)
    async def create_thing() -> JSONResponse:
        await anyio.sleep(delay)
        if outcome == "not-found":
            return JSONResponse(error_body(404, "no such thing"), status_code=404)
        if outcome == "crash":
            raise RuntimeError("the handler broke")
        return JSONResponse({"statusCode": 201, "message": "created", "timestamp": "2024-01-01T00:00:00.000Z",
                             "data": {"id": "t1"}}, status_code=201)

    return app


async def _post(app: FastAPI, prefer: str | None = "heartbeat") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://lmsgate.test") as client:
        return await client.post("/things", headers={"Prefer": prefer} if prefer else {})


@pytest.mark.anyio
async def test_a_late_success_is_the_documented_status_after_heartbeats() -> None:
    resp = await _post(_app(delay=0.2, outcome="ok"))
    assert resp.status_code == 201
    assert resp.content.startswith(b"\n")
    assert json.loads(resp.content)["data"] == {"id": "t1"}


@pytest.mark.anyio
async def test_a_late_failure_keeps_the_committed_status_and_tells_the_truth_in_the_body() -> None:
    resp = await _post(_app(delay=0.2, outcome="not-found"))
    assert resp.status_code == 201, "the status line was sent before the failure"
    assert resp.headers["preference-applied"] == "heartbeat"
    body = json.loads(resp.content)
    assert body["statusCode"] == 404 and body["message"] == "no such thing"


@pytest.mark.anyio
async def test_a_late_crash_ends_the_body_with_a_500_error_body() -> None:
    resp = await _post(_app(delay=0.2, outcome="crash"))
    assert resp.status_code == 201
    body = json.loads(resp.content)
    assert body["statusCode"] == 500 and body["message"] == "Internal server error"


@pytest.mark.anyio
async def test_an_early_failure_is_answered_as_without_heartbeats() -> None:
    resp = await _post(_app(delay=0, outcome="not-found"))
    assert resp.status_code == 404
    assert resp.headers["preference-applied"] == "heartbeat"
    assert resp.content.startswith(b"{")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(("values", "wanted"), [
    ([b"heartbeat"], True),
    ([b"HEARTBEAT"], True),
    ([b"respond-async, heartbeat"], True),
    ([b"return=minimal", b"heartbeat; x=1"], True),
    ([b"heartbeat=5"], True),
    ([b"return=minimal"], False),
    ([b"heartbeats"], False),
    ([], False),
])
def test_prefer_parsing(values: list[bytes], wanted: bool) -> None:
    headers = [(b"prefer", v) for v in values] + [(b"accept", b"application/json")]
    assert prefers_heartbeat(headers) is wanted
