"""The Python SDK's public surface, its generated sync half, its error tree and retry rules."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime as http_date
from pathlib import Path

import httpx
import pytest

from lmsgate import client
from lmsgate.client import (
    Accepted,
    APIStatusError,
    AsyncClient,
    AsyncDeliveries,
    AsyncLms,
    BadGatewayError,
    BadRequestError,
    Client,
    ConflictError,
    Deliveries,
    ForbiddenError,
    InternalServerError,
    InvalidRequestError,
    Lms,
    LmsClientError,
    NotFoundError,
    NotImplementedByProviderError,
    PreconditionFailedError,
    RateLimitedError,
    RequestTimedOutError,
    Retry,
    ServerError,
    UnauthorizedError,
    UnprocessableEntityError,
)
from lmsgate.client._request import Call, headers, read, response_info, status_error
from lmsgate.http import parse_retry_after
from lmsgate.schema import BatchResultApiModel, CreateResult

PUBLIC = [
    "APIStatusError", "Accepted", "AsyncClient", "AsyncDeliveries", "AsyncLms", "BadGatewayError",
    "BadRequestError", "Client", "ClientTimeoutError", "ConflictError", "DEFAULT_SERVER_URL", "DEFAULT_TIMEOUT",
    "Deliveries", "ForbiddenError", "InternalServerError", "InvalidRequestError", "Lms", "LmsClientError",
    "NotFoundError", "NotImplementedByProviderError", "PreconditionFailedError", "RateLimitedError",
    "RequestTimedOutError", "ResponseInfo", "ResponseValidationError", "Retry", "ServerError", "TransportError",
    "UnauthorizedError", "UnprocessableEntityError", "response_info",
]
"""Changing the public surface is a decision: update this list in the same change, on purpose."""

OPERATIONS = {
    "batch_upsert_content", "create_user_assignment", "create_user_completion", "delete_user_completion",
    "get_assignment", "get_category", "get_completion", "get_content", "get_course", "get_skill", "get_user",
    "get_user_assignment", "get_user_completion", "list_assignments", "list_categories", "list_completions",
    "list_content", "list_courses", "list_skills", "list_user_assignments", "list_user_completions",
    "list_users", "update_content", "upsert_content",
}
"""The 24 operations of StackOne's SDK 4.28.0 (23 in 4.34.1, which dropped updateContent)."""
EXTENSIONS = {"upsert_course", "upsert_user"}
DELIVERY_OPERATIONS = {
    "get_delivery", "get_delivery_settings", "iter_deliveries", "list_deliveries", "retry_deliveries",
    "retry_delivery", "update_delivery_settings",
}
"""lmsgate's Delivery API (``client.deliveries``); not part of StackOne's SDK."""


def test_public_surface_is_explicit_and_sorted() -> None:
    assert client.__all__ == sorted(client.__all__)
    assert client.__all__ == PUBLIC
    for name in client.__all__:
        assert hasattr(client, name), name


def test_every_operation_of_the_official_sdk_is_a_method_with_an_iterator_per_list() -> None:
    methods = {m for m in dir(Lms) if not m.startswith("_")}
    lists = {m for m in OPERATIONS if m.startswith("list_")}
    assert len(lists) == 9
    assert methods == OPERATIONS | EXTENSIONS | {m.replace("list_", "iter_", 1) for m in lists}
    for name in methods:
        assert inspect.getdoc(getattr(Lms, name)), f"{name} has no docstring"


def test_sync_client_is_generated_from_the_async_one_and_up_to_date() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "unasync.py"
    spec = importlib.util.spec_from_file_location("unasync", script)
    assert spec and spec.loader
    unasync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(unasync)
    assert unasync.main(["--check"]) == 0, "run: python scripts/unasync.py"


@pytest.mark.parametrize("name", sorted(OPERATIONS | EXTENSIONS))
def test_sync_and_async_operations_take_the_same_parameters(name: str) -> None:
    sync, asynchronous = inspect.signature(getattr(Lms, name)), inspect.signature(getattr(AsyncLms, name))
    assert list(sync.parameters) == list(asynchronous.parameters)
    assert inspect.iscoroutinefunction(getattr(AsyncLms, name))
    assert not inspect.iscoroutinefunction(getattr(Lms, name))


@pytest.mark.parametrize("name", sorted(DELIVERY_OPERATIONS))
def test_delivery_operations_are_documented_and_alike_in_both_clients(name: str) -> None:
    assert {m for m in dir(Deliveries) if not m.startswith("_")} == DELIVERY_OPERATIONS
    sync, asynchronous = getattr(Deliveries, name), getattr(AsyncDeliveries, name)
    assert inspect.getdoc(sync), f"{name} has no docstring"
    assert list(inspect.signature(sync).parameters) == list(inspect.signature(asynchronous).parameters)
    if name.startswith("iter_"):
        assert inspect.isasyncgenfunction(asynchronous) and inspect.isgeneratorfunction(sync)
    else:
        assert inspect.iscoroutinefunction(asynchronous) and not inspect.iscoroutinefunction(sync)


def test_idempotency_keys_are_sent_as_tokens_or_quoted_strings_and_checked() -> None:
    assert headers("k", "a", idempotency_key="import-line-7")["Idempotency-Key"] == "import-line-7"
    assert headers("k", "a", idempotency_key='say "hi"')["Idempotency-Key"] == '"say \\"hi\\""'
    assert headers("k", "a", idempotency_key="back\\slash")["Idempotency-Key"] == '"back\\\\slash"'
    assert headers("k", "a", idempotency_key=" padded ")["Idempotency-Key"] == '" padded "'
    for bad in ("", "x" * 256, "caf\u00e9", "tab\there"):
        with pytest.raises(InvalidRequestError, match="idempotency_key"):
            headers("k", "a", idempotency_key=bad)
    assert "x-account-id" not in headers("k", None, need_account=False)
    assert headers("k", "a", prefer_async=True)["Prefer"] == "respond-async"


def test_a_202_is_accepted_with_its_delivery_and_replays_are_told() -> None:
    delivery = {"id": "01dlv", "account_id": "01acc", "operation": "create_user_completion", "method": "POST",
                "path": "/unified/lms/users/u/completions", "status": "pending", "attempt_count": 0,
                "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z", "request": {}}
    body = {"statusCode": 202, "message": "Accepted", "timestamp": "2024-01-01T00:00:00Z", "data": delivery}
    call = Call("POST", "/unified/lms/users/u/completions", None, accept_async=True)
    accepted = read(_response(202, body, {"Location": "/deliveries/01dlv", "Idempotent-Replayed": "true"}), call)
    assert isinstance(accepted, Accepted) and accepted.delivery_id == "01dlv" and accepted.replayed
    assert accepted.delivery is not None and accepted.delivery.status == "pending"
    info = response_info(accepted)
    assert info is not None and info.replayed and info.status_code == 202 and info.location == "/deliveries/01dlv"
    foreign = read(_response(202, {"ok": True}, {"Location": "https://lms.example/jobs/9"}), call)
    assert isinstance(foreign, Accepted) and foreign.delivery is None and not foreign.replayed
    assert foreign.body == {"ok": True} and foreign.delivery_id is None

    # not asked for: a delivery kept by fallback_to_async is Accepted; any other 202 is the result
    unasked = Call("POST", "/unified/lms/users/u/completions", CreateResult)
    assert isinstance(read(_response(202, body, {"Location": "/deliveries/01dlv"}), unasked), Accepted)
    batch = {"statusCode": 202, "message": "Batch operation accepted", "timestamp": "2024-01-01T00:00:00Z",
             "errors": [[], []]}
    assert isinstance(read(_response(202, batch), Call("POST", "/unified/lms/content/batch", BatchResultApiModel)),
                      BatchResultApiModel)


def _response(status: int, json: object = None, headers: dict[str, str] | None = None, text: str | None = None,
              ) -> httpx.Response:
    request = httpx.Request("GET", "http://lms.test/unified/lms/completions")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=json, headers=headers, request=request)


@pytest.mark.parametrize(("status", "cls"), [
    (400, BadRequestError), (401, UnauthorizedError), (403, ForbiddenError), (404, NotFoundError),
    (408, RequestTimedOutError), (409, ConflictError), (412, PreconditionFailedError),
    (422, UnprocessableEntityError), (429, RateLimitedError), (500, InternalServerError),
    (501, NotImplementedByProviderError), (502, BadGatewayError), (503, ServerError), (418, APIStatusError),
])
def test_each_documented_status_has_its_exception(status: int, cls: type[APIStatusError]) -> None:
    body = {"statusCode": status, "message": "what went wrong", "timestamp": "2024-01-01T00:00:00.000Z",
            "provider_errors": [{"status": 503, "url": "https://lms.example/api", "raw": {"error": "down"}}]}
    exc = status_error(_response(status, body))
    assert type(exc) is cls
    assert isinstance(exc, APIStatusError) and isinstance(exc, LmsClientError)
    assert exc.status_code == status and exc.message == "what went wrong"
    assert exc.body is not None and exc.body.statusCode == status
    assert [p.url for p in exc.provider_errors] == ["https://lms.example/api"]
    assert str(exc) == f"{status} what went wrong"


def test_the_5xx_errors_are_server_errors() -> None:
    for cls in (InternalServerError, NotImplementedByProviderError, BadGatewayError):
        assert issubclass(cls, ServerError)
    assert not issubclass(RequestTimedOutError, ServerError)


def test_an_error_answer_that_is_not_stackones_body_still_raises_by_status() -> None:
    exc = status_error(_response(502, text="<html>bad gateway</html>", headers={"content-type": "text/html"}))
    assert type(exc) is BadGatewayError and exc.body is None and exc.provider_errors == []
    assert "bad gateway" in exc.message


def test_rate_limited_error_carries_the_wait() -> None:
    exc = status_error(_response(429, {"statusCode": 429, "message": "slow down",
                                       "timestamp": "2024-01-01T00:00:00Z"}, {"Retry-After": "7"}))
    assert isinstance(exc, RateLimitedError) and exc.retry_after == 7


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("3", now) == 3
    assert parse_retry_after(" 0 ", now) == 0
    assert parse_retry_after(http_date(now + timedelta(seconds=42), usegmt=True), now) == 42
    assert parse_retry_after(http_date(now - timedelta(hours=1), usegmt=True), now) == 0
    assert parse_retry_after("Wed, 01 May 2024 12:00:05 GMT", now) == 5
    for bad in (None, "", "soon", "-5", "nan", "inf"):
        assert parse_retry_after(bad, now) is None, bad


def test_retry_policy_waits_as_told_and_gives_up() -> None:
    policy = Retry(max_retries=2, max_elapsed=10, jitter=0)
    assert policy.wait_after(_response(429, {}, {"Retry-After": "2"}), 0, 0.0) == 2
    assert policy.wait_after(_response(408, {}), 0, 0.0) == 0.5  # no Retry-After: backoff
    assert policy.wait_after(_response(408, {}), 1, 0.0) == 1.0
    assert policy.wait_after(_response(429, {}, {"Retry-After": "2"}), 2, 0.0) is None  # retries used up
    assert policy.wait_after(_response(429, {}, {"Retry-After": "20"}), 0, 0.0) is None  # past max_elapsed
    assert policy.wait_after(_response(500, {}), 0, 0.0) is None  # not a retried status
    request = httpx.Request("GET", "http://lms.test/")
    assert policy.wait_after_error(httpx.ConnectError("refused", request=request), 0, 0.0) == 0.5
    assert policy.wait_after_error(httpx.ReadTimeout("slow", request=request), 0, 0.0) is None
    lost = httpx.RemoteProtocolError("closed without an answer", request=request)
    assert policy.wait_after_error(lost, 0, 0.0) == 0.5
    assert policy.wait_after_error(lost, 0, 0.0, repeatable=False) is None  # it may have been served
    refused = httpx.ConnectError("refused", request=request)
    assert policy.wait_after_error(refused, 0, 0.0, repeatable=False) == 0.5  # it never left
    assert Retry.none().wait_after(_response(429, {}, {"Retry-After": "1"}), 0, 0.0) is None


def test_a_policy_can_wait_out_rate_limits() -> None:
    """For a backfill: a 429 is waited out however often it comes and however long it lasts;
    everything else keeps the usual limits."""
    patient = Retry(max_retries=2, max_elapsed=10, jitter=0, wait_out_rate_limits=True)
    assert patient.wait_after(_response(429, {}, {"Retry-After": "30"}), 50, 500.0) == 30
    assert patient.wait_after(_response(429, {}, {"Retry-After": "0"}), 50, 500.0) == 0.5  # never a busy loop
    assert patient.wait_after(_response(429, {}, {"Retry-After": "99999999999"}), 0, 0.0) == 60  # backoff_max
    assert patient.wait_after(_response(429, {}), 0, 0.0) == 0.5  # no Retry-After: backoff...
    assert patient.wait_after(_response(429, {}), 50, 500.0) == 1.0  # ...which stops growing at the last retry's
    assert patient.wait_after(_response(408, {}), 2, 0.0) is None  # other statuses: retries used up
    assert patient.wait_after(_response(408, {}, {"Retry-After": "20"}), 0, 0.0) is None  # past max_elapsed
    assert patient.wait_after(_response(500, {}), 0, 0.0) is None
    assert Retry(max_retries=0, jitter=0, wait_out_rate_limits=True).wait_after(_response(429, {}), 3, 0.0) == 0.5
    assert Retry(wait_out_rate_limits=True, statuses=frozenset({408})).wait_after(
        _response(429, {}, {"Retry-After": "1"}), 0, 0.0) is None  # 429 not retried at all


def test_a_bad_body_or_no_account_fails_before_anything_is_sent() -> None:
    # Port 9 (discard) is never listened on here: reaching the network would fail differently.
    with Client("key", server_url="http://127.0.0.1:9", retry=Retry.none()) as c:
        with pytest.raises(InvalidRequestError, match="account_id"):
            c.lms.list_completions()
        with pytest.raises(InvalidRequestError, match="time_spent") as caught:
            c.lms.create_user_completion("u1", {"learning_object_external_reference": "c", "time_spent": "PT1X"},
                                         account_id="a1")
        assert isinstance(caught.value, ValueError) and caught.value.errors
        with pytest.raises(InvalidRequestError, match="path parameter"):
            c.lms.get_completion("", account_id="a1")


def test_public_classes_present_themselves_as_lmsgate_client() -> None:
    for cls in (Client, AsyncClient, Lms, NotFoundError, Retry):
        assert cls.__module__ == "lmsgate.client"
    assert "lmsgate.client._lms_sync" in sys.modules


class _HangsUpAfterReading:
    """A real HTTP listener that reads each request whole, counts it, and closes the
    connection without answering: the client cannot tell whether it was served."""

    def __init__(self) -> None:
        import socket
        import threading

        self.requests: list[bytes] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head.split(b"\r\n")[0])

    def close(self) -> None:
        self._sock.close()


@pytest.mark.parametrize(("call", "sent"), [
    ("list", 3), ("complete", 3), ("complete_async", 1), ("complete_async_with_key", 3), ("delete", 1),
], ids=str)
def test_a_request_lost_after_it_left_is_sent_again_only_if_repeating_it_is_harmless(call: str, sent: int) -> None:
    """Writes with Prefer: respond-async (each makes a delivery) and deletes (a repeat answers
    404) were sent again after the connection broke, so one call could take effect twice."""
    from lmsgate.client import TransportError

    server = _HangsUpAfterReading()
    retry = Retry(max_retries=2, backoff_initial=0.01, jitter=0)
    try:
        with Client("k" * 24, server_url=server.url, account_id="acct", retry=retry) as c:
            run = {
                "list": lambda: c.lms.list_users(),
                "complete": lambda: c.lms.create_user_completion("u1", {"learning_object_external_reference": "x"}),
                "complete_async": lambda: c.lms.create_user_completion(
                    "u1", {"learning_object_external_reference": "x"}, prefer_async=True),
                "complete_async_with_key": lambda: c.lms.create_user_completion(
                    "u1", {"learning_object_external_reference": "x"}, prefer_async=True, idempotency_key="k-1"),
                "delete": lambda: c.lms.delete_user_completion("u1", "c1"),
            }[call]
            with pytest.raises(TransportError):
                run()
    finally:
        server.close()
    assert len(server.requests) == sent, server.requests


@pytest.mark.parametrize("make", [
    lambda: Client("k" * 24, server_url="http://[::1", account_id="acct"),
    lambda: Client("k" * 24, server_url="http://127.0.0.1:9", account_id="acé"),
    lambda: Client("k" * 24, server_url="http://127.0.0.1:9", account_id="acct", headers={"X-Team": "Zürich"}),
], ids=["bad-url", "non-ascii-account", "non-ascii-header"])
def test_a_request_that_cannot_be_sent_is_an_invalid_request_error(make) -> None:  # type: ignore[no-untyped-def]
    """httpx.InvalidURL and UnicodeEncodeError escaped untyped."""
    with make() as c, pytest.raises(InvalidRequestError, match="cannot be sent"):
        c.lms.list_users(retry=Retry.none())
