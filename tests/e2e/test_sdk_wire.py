"""The SDK on the wire, against a scripted StackOne-compatible server (a real HTTP server in a
thread): answers lmsgate does not give today but a compatible server may, such as a
``Retry-After`` HTTP-date, 408, 202 for ``Prefer: respond-async``, 204 deletes and bodies
that are not the documented shape."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime as http_date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from lmsgate.client import (
    Accepted,
    AsyncClient,
    Client,
    ClientTimeoutError,
    RequestTimedOutError,
    ResponseValidationError,
    Retry,
    TransportError,
)

CREATED = {"statusCode": 201, "message": "Record created successfully.", "timestamp": "2024-01-01T00:00:00.000Z",
           "data": {"id": "c-1", "remote_id": "r-1"}}


class Script:
    """What the server answers: per (method, path), a queue of (status, headers, body)."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], list[tuple[int, dict[str, str], Any]]] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def add(self, method: str, path: str, status: int, body: Any = None, **headers: str) -> None:
        self.answers.setdefault((method, path), []).append((status, headers, body))


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            script.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            queue = script.answers.get((self.command, path)) or [(404, {}, {"statusCode": 404, "message": "no",
                                                                             "timestamp": "2024-01-01T00:00:00Z"})]
            status, headers, payload = queue.pop(0) if len(queue) > 1 else queue[0]
            if payload == "__sleep__":
                time.sleep(1.0)
                payload = CREATED
            raw = payload if isinstance(payload, bytes) else (json.dumps(payload).encode() if payload is not None else b"")
            self.send_response(status)
            for name, value in {"content-type": "application/json", **headers}.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/prefix", script
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_wire_format_headers_and_pass_through(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    script.add("POST", "/prefix/unified/lms/users/a%20b%2Fc/completions", 201, CREATED)
    script.add("GET", "/prefix/unified/lms/completions", 200, {"next": None, "data": []})
    with Client("the-key", server_url=base, account_id="acct-1") as client:
        client.lms.create_user_completion("a b/c", {"learning_object_external_reference": "x",
                                                    "completed_at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)},
                                          idempotency_key="idem-1", prefer_async=True, account_id="acct-2")
        client.lms.list_completions(updated_after="2024-01-01T00:00:00Z", page_size=50, fields=["id", "user_id"],
                                    raw=True, proxy={"custom": "v 1"})
    (method, path, headers, body), (_, query_path, list_headers, _) = script.requests
    assert method == "POST" and path == "/prefix/unified/lms/users/a%20b%2Fc/completions"
    assert headers["authorization"] == "Basic dGhlLWtleTo="  # base64("the-key:")
    assert headers["x-account-id"] == "acct-2" and list_headers["x-account-id"] == "acct-1"
    assert headers["idempotency-key"] == "idem-1" and headers["prefer"] == "respond-async"
    assert headers["content-type"] == "application/json" and headers["user-agent"].startswith("lmsgate-python/")
    assert json.loads(body) == {"learning_object_external_reference": "x", "completed_at": "2024-01-02T03:04:05.000Z"}
    assert "prefer" not in list_headers and "idempotency-key" not in list_headers
    assert query_path == ("/prefix/unified/lms/completions?fields=id%2Cuser_id&raw=true"
                          "&filter%5Bupdated_after%5D=2024-01-01T00%3A00%3A00Z&proxy%5Bcustom%5D=v+1&page_size=50")


LIST_FILTERS = [
    # (method, its keyword filters, the path it lists)
    ("list_users", {"email": "a@b.c", "external_reference": "emp-1"}, "users"),
    ("list_assignments", {"status": "pending"}, "assignments"),
    ("list_content", {"active": True}, "content"),
    ("list_courses", {"external_reference": "c-1", "active": False}, "courses"),
    ("list_completions", {"updated_after": "2024-01-01T00:00:00Z"}, "completions"),
]


@pytest.mark.parametrize(("method", "named", "listed"), LIST_FILTERS, ids=[f[0] for f in LIST_FILTERS])
def test_a_filter_given_in_the_filter_dict_or_by_name_is_sent(scripted: tuple[str, Script], method: str,
                                                               named: dict[str, Any], listed: str) -> None:
    """``filter={"email": ...}`` and ``email=...`` are the same filter: a keyword left out
    must not wipe the entry of the dict (it did, and the list came back unfiltered)."""
    base, script = scripted
    script.add("GET", f"/prefix/unified/lms/{listed}", 200, {"next": None, "data": []})
    with Client("the-key", server_url=base, account_id="a") as client:
        getattr(client.lms, method)(filter=named)
        getattr(client.lms, method)(**named)
        getattr(client.lms, method)(filter={**named, "extra": "x"})

    async def walk() -> None:
        async with AsyncClient("the-key", server_url=base, account_id="a") as client:
            await getattr(client.lms, method)(filter=named)

    anyio.run(walk)
    sent = [path.split("?", 1)[1] if "?" in path else "" for _, path, _, _ in script.requests]
    want = sorted(f"filter%5B{k}%5D" for k in named)
    for query in sent:
        assert sorted(part.split("=")[0] for part in query.split("&") if part.startswith("filter")) in (
            want, sorted([*want, "filter%5Bextra%5D"])), sent
    assert sent[0] == sent[1] == sent[3] and "filter%5Bextra%5D=x" in sent[2]


def test_retry_after_as_an_http_date_is_honoured(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=2)
    script.add("POST", "/prefix/unified/lms/users/u1/completions", 429,
               {"statusCode": 429, "message": "slow down", "timestamp": "2024-01-01T00:00:00Z"},
               retry_after=http_date(when, usegmt=True))
    script.add("POST", "/prefix/unified/lms/users/u1/completions", 201, CREATED)
    with Client("k", server_url=base, account_id="a") as client:
        result = client.lms.create_user_completion("u1", {"learning_object_external_reference": "x"})
    assert result.data.id == "c-1"
    assert len(script.requests) == 2 and datetime.now(timezone.utc) >= when - timedelta(seconds=0.05)


def test_408_is_retried_then_raised_when_retries_run_out(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    timed_out = {"statusCode": 408, "message": "provider too slow", "timestamp": "2024-01-01T00:00:00Z"}
    script.add("GET", "/prefix/unified/lms/users", 408, timed_out, retry_after="0")
    script.add("GET", "/prefix/unified/lms/users", 200, {"data": [{"id": "u1"}]})
    with Client("k", server_url=base, account_id="a") as client:
        assert [u.id for u in client.lms.list_users().data] == ["u1"]
    script.answers.clear()
    script.add("GET", "/prefix/unified/lms/users", 408, timed_out, retry_after="0")
    with Client("k", server_url=base, account_id="a", retry=Retry(max_retries=2)) as client, \
            pytest.raises(RequestTimedOutError, match="provider too slow"):
        client.lms.list_users()
    assert sum(1 for r in script.requests if r[1].startswith("/prefix/unified/lms/users")) == 2 + 3


def test_202_for_prefer_async_and_204_for_delete(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    script.add("POST", "/prefix/unified/lms/users/u1/completions", 202, {"id": "delivery-9", "status": "queued"},
               location="/deliveries/delivery-9", preference_applied="respond-async")
    script.add("DELETE", "/prefix/unified/lms/users/u1/completions/c-1", 204, None)

    async def main() -> tuple[Any, Any]:
        async with AsyncClient("k", server_url=base, account_id="a") as client:
            accepted = await client.lms.create_user_completion(
                "u1", {"learning_object_external_reference": "x"}, prefer_async=True)
            deleted = await client.lms.delete_user_completion("u1", "c-1")
            return accepted, deleted

    accepted, deleted = anyio.run(main)
    assert isinstance(accepted, Accepted) and accepted.location == "/deliveries/delivery-9"
    assert accepted.body == {"id": "delivery-9", "status": "queued"}
    assert deleted is None


@pytest.mark.parametrize("body", [{"next": 5, "data": []}, {"next": None}, b"{not json", b""])
def test_an_answer_not_of_the_documented_shape_raises_response_validation_error(
        scripted: tuple[str, Script], body: Any) -> None:
    base, script = scripted
    script.add("GET", "/prefix/unified/lms/completions", 200, body)
    with Client("k", server_url=base, account_id="a") as client, pytest.raises(ResponseValidationError) as caught:
        client.lms.list_completions()
    assert caught.value.status_code == 200 and "CompletionsPaginated" in caught.value.message


def test_unreachable_and_slow_servers_raise_transport_errors(scripted: tuple[str, Script]) -> None:
    base, script = scripted
    with Client("k", server_url="http://127.0.0.1:9", account_id="a",
                retry=Retry(max_retries=1, backoff_initial=0.01, jitter=0)) as client, \
            pytest.raises(TransportError, match="ConnectError") as caught:
        client.lms.list_users()
    assert isinstance(caught.value.__cause__, Exception) and not isinstance(caught.value, ClientTimeoutError)

    script.add("GET", "/prefix/unified/lms/users", 200, "__sleep__")
    with Client("k", server_url=base, account_id="a", timeout=0.2) as client, pytest.raises(ClientTimeoutError):
        client.lms.list_users()
