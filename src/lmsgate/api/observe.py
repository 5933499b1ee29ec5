"""What happens to every request around the app: its id, its metrics, its logs.

:class:`Observe` is the outermost middleware (the completion fast lane, which runs ahead of
every middleware, calls its :meth:`~Observe.start` and :meth:`~Observe.finish` itself). For
every HTTP request it

* takes the caller's ``x-request-id`` when it is a plain token of at most 128 characters, or
  makes one, and answers it in the ``x-request-id`` header of every response, refusals and
  errors included; log lines written while the request runs carry it too (``lmsgate.logs``);
* counts the request and its latency per operation (``lmsgate.api.metrics``);
* writes one access-log line (``lmsgate.access``): method, path (query secrets masked),
  status, duration, operation, project, account, client address;
* hands authenticated calls to the request log (:class:`RequestLogWriter`, ``GET
  /requests/logs``), with the provider calls they made;
* answers an exception nobody handled with a 500 in StackOne's shape (the detail goes to the
  log only), so that answer carries its request id as well.

Provider calls are observed from the outbound client's own log events (logger
``lmsgate.http``: ``METHOD url → status in N ms``): :class:`ProviderCallTap` reads them in the
request's context, whatever the configured log level, without printing more than that level.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import anyio.to_thread
import orjson
from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmsgate.api.metrics import Metrics
from lmsgate.api.paths import as_sent
from lmsgate.api.request_log import ProviderCall, RequestLogWriter, RequestRecord
from lmsgate.api.responses import error_body
from lmsgate.http import Redactor
from lmsgate.ids import new_id, random_hex
from lmsgate.logs import request_id_var

__all__ = ["NOT_LOGGED", "Observe", "ProviderCall", "RequestLogWriter", "RequestRecord", "install_provider_tap",
           "note_caller"]

log = logging.getLogger("lmsgate.api")
access_log = logging.getLogger("lmsgate.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
NOT_LOGGED = ("/requests/logs", "/metrics", "/health", "/docs", "/openapi.json")
"""Paths never written to the request log (reading the log does not add to it)."""


_current: ContextVar[RequestRecord | None] = ContextVar("lmsgate_request", default=None)


def note_caller(project_id: str, account: Any = None) -> None:
    """Record who is calling (and on which linked account) for the current request's logs."""
    record = _current.get()
    if record is not None:
        record.project_id = project_id
        if account is not None:
            record.account_id, record.provider = account.id, account.provider


# ---------------------------------------------------------------- provider calls


_CALL_DONE = "%s %s → %d in %.0f ms (attempt %d)"
_CALL_FAILED = "%s %s → %s after %.0f ms (attempt %d)"


class ProviderCallTap(logging.Filter):
    """Reads the outbound client's per-call log events into the current request and metrics.

    Installed first on the ``lmsgate.http`` logger, whose own level is lowered so the events
    exist whatever the configuration; records below the level in force for ``lmsgate`` are then
    dropped here, so the output is what it would have been.
    """

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[Metrics] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in (_CALL_DONE, _CALL_FAILED) and isinstance(record.args, tuple) and len(record.args) == 5:
            method, url, outcome, ms, _attempt = record.args
            current = _current.get()
            provider = current.provider if current is not None and current.provider else "unknown"
            failed = record.msg is _CALL_FAILED or record.msg == _CALL_FAILED
            call = ProviderCall(method=str(method), url=str(url), status=None if failed else int(outcome),
                                error=str(outcome) if failed else None, duration_ms=float(ms),
                                ended=record.created)
            if current is not None:
                current.calls.append(call)
            label = call.error if failed else f"{int(outcome) // 100}xx"
            # the app serving the request, else (background delivery) the newest app of the process
            metrics = current.metrics if current is not None and current.metrics else (
                self.metrics[-1] if self.metrics else None)
            if metrics is not None:
                metrics.observe_provider_call(provider, str(label), float(ms) / 1000)
        return record.levelno >= logging.getLogger("lmsgate").getEffectiveLevel()


_tap = ProviderCallTap()
_tap_lock = threading.Lock()


def install_provider_tap(metrics: Metrics) -> None:
    with _tap_lock:
        logger = logging.getLogger("lmsgate.http")
        if _tap not in logger.filters:
            logger.filters.insert(0, _tap)  # before masking, which may rewrite the message
        logger.setLevel(logging.DEBUG)  # every record is made; the tap then applies the real level
        _tap.metrics = [metrics]


def _cut(text: str, limit: int = 2048) -> str:
    """Keep log lines short whatever a client sends (the URL limit refuses, but still logs)."""
    return text if len(text) <= limit else text[:limit] + f"…[{len(text) - limit} more]"


@lru_cache(maxsize=512)  # one entry per route template
def _resource_names(template: str | None) -> tuple[str | None, str | None, str | None]:
    """(service, resource, sub_resource) of a route template: ``/unified/lms/users/{id}/completions``
    gives ("lms", "users", "completions"); ``/accounts/{id}/test`` gives ("accounts", "accounts", "test")."""
    if not template:
        return None, None, None
    parts = [p for p in template.split("/") if p and not p.startswith("{")]
    if parts[:1] == ["unified"] and len(parts) >= 3:
        return parts[1], parts[2], parts[3] if len(parts) > 3 else None
    return parts[0] if parts else None, parts[0] if parts else None, parts[1] if len(parts) > 1 else None


# ---------------------------------------------------------------- the middleware


class Observe:
    def __init__(self, app: ASGIApp, *, routes: Any, metrics: Metrics, writer: RequestLogWriter | None) -> None:
        self.app = app
        self.routes = routes
        self._flat: list[Any] | None = None
        self.metrics = metrics
        self.writer = writer
        self.body_bytes = writer.body_bytes if writer is not None else 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record, authorization = self.start(scope)
        token, rid_token = _current.set(record), request_id_var.set(record.request_id)
        request_id = record.request_id
        status = 0
        started = False
        capture = self.writer is not None and self.body_bytes > 0 and not scope["path"].startswith(NOT_LOGGED)
        request_body = bytearray()
        response_body = bytearray()
        truncated = {"request": False, "response": False}
        header = (b"x-request-id", request_id.encode())

        async def receive_wrapper() -> Message:
            message = await receive()
            if capture and message["type"] == "http.request" and not truncated["request"]:
                request_body.extend(message.get("body", b""))
                if len(request_body) > self.body_bytes:
                    truncated["request"] = True
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), header]}
            elif message["type"] == "http.response.body" and capture and not truncated["response"]:
                response_body.extend(message.get("body", b""))
                if len(response_body) > self.body_bytes:
                    truncated["response"] = True
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:
            log.exception("unhandled error", exc_info=exc)
            if not started:
                body = orjson.dumps(error_body(500, "Internal server error"))
                await send_wrapper({"type": "http.response.start", "status": 500,
                                    "headers": [(b"content-type", b"application/json"),
                                                (b"content-length", str(len(body)).encode())]})
                await send_wrapper({"type": "http.response.body", "body": body})
            status = status or 500
        finally:
            seconds = time.perf_counter() - record.started
            try:
                self.finish(scope, record, status, seconds, authorization, request_body, response_body, truncated)
            finally:
                _current.reset(token)
                request_id_var.reset(rid_token)

    def start(self, scope: Scope) -> tuple[RequestRecord, str | None]:
        """The record of a new request (its id taken from ``x-request-id`` or made), and its
        ``Authorization`` header. The caller sets :data:`_current` and the log's request id."""
        request_id = None
        authorization = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                request_id = candidate if _REQUEST_ID.match(candidate) else None
            elif name == b"authorization":
                authorization = value.decode("latin-1")
        client = scope.get("client")
        record = RequestRecord(
            id=new_id(), request_id=request_id or random_hex(), method=scope["method"],
            path=as_sent(scope["path"]),
            query=scope.get("query_string", b"").decode("latin-1"), client=client[0] if client else None,
            started=time.perf_counter(), started_at=datetime.now(UTC), metrics=self.metrics,
        )
        return record, authorization

    def _route(self, scope: Scope) -> Any:
        route = scope.get("route")
        if route is not None:
            return route
        if self._flat is None:
            self._flat = [context.route for context in iter_route_contexts(self.routes)]
        for candidate in self._flat:  # requests answered before routing (fast path, refusals)
            match, _ = candidate.matches({**scope, "type": "http"})
            if match is Match.FULL:
                return candidate
        return None

    def finish(self, scope: Scope, record: RequestRecord, status: int, seconds: float,
                authorization: str | None, request_body: bytearray, response_body: bytearray,
                truncated: dict[str, bool]) -> None:
        route = self._route(scope)
        operation = getattr(route, "operation_id", None) or getattr(route, "name", None) or "unmatched"
        self.metrics.observe_request(operation, record.method, status, seconds)
        if (record.account_id is None and record.project_id and status not in (401, 404)
                and getattr(route, "path", "").startswith("/accounts/{id}")):
            # the account in the path is the caller's own (a 404 names one it does not have)
            record.account_id = (scope.get("path_params") or {}).get("id")
        duration_ms = round(seconds * 1000, 3)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info("%s %s %d", record.method, _cut(record.path, 200), status, extra={"fields": {
                "method": record.method,
                "path": _cut(Redactor().url(record.path + ("?" + record.query if record.query else ""))),
                "status": status, "duration_ms": duration_ms, "operation": operation,
                "project_id": record.project_id, "account_id": record.account_id, "client": record.client,
                "provider_calls": len(record.calls),
            }})
        if self.writer is None or not record.project_id or record.path.startswith(NOT_LOGGED):
            return
        service, resource, sub_resource = _resource_names(getattr(route, "path", None))
        if (record.method == "GET" and status < 400 and len(response_body) > self.writer.read_body_bytes):
            # a successful read: its answer kept shorter (LMSGATE_REQUEST_LOG_READ_BODY_BYTES)
            response_body = response_body[: self.writer.read_body_bytes]
            truncated = {**truncated, "response": True}
        # Only what the request already holds: decoding and masking happen in the writer's thread.
        self.writer.add(record, {
            "status": status, "duration_ms": duration_ms, "operation": operation, "service": service,
            "resource": resource, "sub_resource": sub_resource, "authorization": authorization,
            "request_headers": scope["headers"],
            "request_body": bytes(request_body), "request_truncated": truncated["request"],
            "response_body": bytes(response_body), "response_truncated": truncated["response"],
        })

    def _lifespan_send(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if self.writer is not None:
                if message["type"] == "lifespan.startup.complete":
                    self.writer.start()
                elif message["type"] == "lifespan.shutdown.complete":
                    self.writer.cancel_timer()
                    await anyio.to_thread.run_sync(self.writer.close)
            await send(message)

        return wrapped
