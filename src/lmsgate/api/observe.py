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

import asyncio
import contextvars
import logging
import re
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import orjson
from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmsgate.api.metrics import Metrics
from lmsgate.api.paths import as_sent
from lmsgate.api.responses import error_body
from lmsgate.http import Redactor
from lmsgate.ids import new_id, random_hex
from lmsgate.logs import request_id_var
from lmsgate.store.request_logs import RequestLogStore

if TYPE_CHECKING:
    from lmsgate.api.request_log_process import RequestLogProcess

log = logging.getLogger("lmsgate.api")
access_log = logging.getLogger("lmsgate.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
NOT_LOGGED = ("/requests/logs", "/metrics", "/health", "/docs", "/openapi.json")
"""Paths never written to the request log (reading the log does not add to it)."""


@dataclass(slots=True)
class ProviderCall:
    method: str
    url: str
    status: int | None
    error: str | None
    duration_ms: float
    ended: float
    """Unix time at the end of the call."""


@dataclass(slots=True)
class RequestRecord:
    """What is known about the request being served; filled in by the layers it passes."""

    id: str
    request_id: str
    method: str
    path: str
    query: str
    client: str | None
    started: float
    started_at: datetime
    project_id: str | None = None
    account_id: str | None = None
    provider: str | None = None
    calls: list[ProviderCall] = field(default_factory=list)
    metrics: Metrics | None = None


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


# ---------------------------------------------------------------- the request log


class RequestLogWriter:
    """Buffers request-log rows and writes them in batches from a worker thread.

    A batch is written half a second after its first row, or at once from 500 rows, and when
    the server stops. ``GET /requests/logs`` writes what is pending first, so a client always
    sees its own earlier calls. Rows older than the retention period are deleted at most
    every ten minutes.

    With a ``process`` (:mod:`lmsgate.api.request_log_process`), batches are built and
    written there, away from the requests' interpreter lock; the thread only waits for it.
    """

    FLUSH_AFTER = 0.5
    MAX_PENDING = 500
    PROCESS_BATCH = 64
    """With a process, batches are sent from 64 rows: its transactions, shorter, hold the
    database's write lock (which completions wait for on SQLite) for less time."""
    PURGE_EVERY = 600.0

    def __init__(self, store: RequestLogStore, *, retention_days: float, body_bytes: int,
                 read_body_bytes: int | None = None, process: RequestLogProcess | None = None) -> None:
        self.store = store
        self.process = process
        self.retention = timedelta(days=retention_days)
        self.body_bytes = body_bytes
        self.read_body_bytes = body_bytes if read_body_bytes is None else min(read_body_bytes, body_bytes)
        self._pending: list[tuple[RequestRecord, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._last_purge = 0.0
        self._redactors: dict[tuple[str, ...], Redactor] = {}

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, record: RequestRecord, extra: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append((record, extra))
            count = len(self._pending)
        loop = asyncio.get_running_loop()
        if count >= (self.PROCESS_BATCH if self.process is not None else self.MAX_PENDING):
            self._spawn(loop)
        elif self._timer is None or self._timer.cancelled() or self._timer.when() < loop.time() - 1:
            self._flush_later(loop)

    def _flush_later(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = loop.call_later(self.FLUSH_AFTER, self._flush_soon, context=contextvars.Context())

    def _flush_soon(self) -> None:
        self._timer = None
        self._spawn(asyncio.get_running_loop())

    def _spawn(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._tasks:
            # One flush at a time. More would only wait for it, each holding one of the worker
            # threads that completions are committed from: a slow write (the log process
            # starting, a busy database) once stalled every POST for a quarter of a second.
            return
        # a batch of many requests' rows: none of their request ids belongs on its log lines
        task = loop.create_task(anyio.to_thread.run_sync(self.flush), context=contextvars.Context())
        self._tasks.add(task)  # the loop keeps only a weak reference to tasks
        task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._pending and self._timer is None:  # rows that came meanwhile go with the next
            self._flush_later(task.get_loop())

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def flush(self) -> None:
        """Write every pending row (blocking); purge old rows when due."""
        with self._writing:  # a flush returns only once every row added before it is committed
            with self._lock:
                batch, self._pending = self._pending, []
            if batch and (self.process is None or not self.process.write(batch)):
                self.write_batch(batch)
        now = time.monotonic()
        if now - self._last_purge > self.PURGE_EVERY:
            self._last_purge = now
            try:
                self.store.purge(datetime.now(UTC) - self.retention)
            except Exception:
                log.exception("could not delete old request logs")

    def start(self) -> None:
        """Start the writing process, if there is one (at the server's start; else it starts
        with the first batch)."""
        if self.process is not None:
            self.process.start()

    def close(self) -> None:
        """Write what is pending, then stop the writing process (blocking; the caller, on the
        event loop, cancels the timer first)."""
        self.flush()
        if self.process is not None:
            self.process.close()

    def write_batch(self, batch: list[tuple[RequestRecord, dict[str, Any]]]) -> None:
        """Write a batch in one transaction; if the database refuses it, row by row, so that
        one row it cannot take does not cost the others. The request log must never break
        the API: what cannot be written is said loudly and dropped."""
        rows = []
        for record, extra in batch:
            try:
                rows.append(self._row(record, extra))
            except Exception:
                log.exception("could not build the request-log row of request %s", record.request_id)
        try:
            self.store.write(rows)
            return
        except Exception:
            if len(rows) == 1:
                log.exception("could not write the request-log row of request %s", rows[0]["request_id"])
                return
        lost = 0
        for row in rows:
            try:
                self.store.write([row])
            except Exception:
                lost += 1
                log.exception("could not write the request-log row of request %s", row["request_id"])
        log.warning("request-log batch of %d rows refused; %d written one by one, %d dropped",
                    len(rows), len(rows) - lost, lost)

    # ------------------------------------------------------------ building a row

    def _body(self, raw: bytes, redactor: Redactor, truncated: bool, *, request: bool = False) -> Any:
        """A body as the request log keeps it. One that is not parsed (cut at the size limit,
        or not JSON) keeps its text; a request's text also gets the name rule (a client may
        post credentials in it); a response's, lmsgate's own answer, is masked by value."""
        if not raw or not self.body_bytes:
            return None
        if not truncated:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                pass
            else:  # most bodies hold nothing to mask: then the walk through every value is skipped
                return value if redactor.leaves_alone(raw, value) else redactor.data(value)
        text = raw[: self.body_bytes].decode("utf-8", errors="replace")
        return (redactor.unparsed(text) if request else redactor.text(text)) + (" …[truncated]" if truncated else "")

    def _redactor(self, secrets: tuple[str, ...]) -> Redactor:
        """One redactor per set of secrets (a caller's key), reused across rows: building one
        compiles a pattern."""
        redactor = self._redactors.get(secrets)
        if redactor is None:
            if len(self._redactors) > 256:
                self._redactors.clear()
            redactor = self._redactors[secrets] = Redactor(secrets)
        return redactor

    def _row(self, r: RequestRecord, extra: dict[str, Any]) -> dict[str, Any]:
        redactor = self._redactor(_caller_secrets(extra.get("authorization")))
        headers = redactor.headers((k.decode("latin-1"), v.decode("latin-1"))
                                   for k, v in extra.get("request_headers", ()))
        url = redactor.url(r.path + ("?" + r.query if r.query else ""))
        response_body = self._body(extra.get("response_body", b""), redactor, extra.get("response_truncated", False))
        provider_errors = response_body.get("provider_errors") if isinstance(response_body, dict) else None
        ended = r.started_at + timedelta(milliseconds=extra["duration_ms"])
        steps = [{
            "id": f"{r.id}-{i}", "http_method": c.method, "url": redactor.url(c.url), "status": c.status,
            "error": c.error, "duration": round(c.duration_ms, 3), "success": c.status is not None and c.status < 400,
            "start_time": _iso(datetime.fromtimestamp(c.ended - c.duration_ms / 1000, UTC)),
            "end_time": _iso(datetime.fromtimestamp(c.ended, UTC)), "provider": r.provider,
        } for i, c in enumerate(r.calls)]
        detail = {
            "request": {"method": r.method, "url": url, "headers": headers,
                        "body": self._body(extra.get("request_body", b""), redactor,
                                           extra.get("request_truncated", False), request=True)},
            "response": {"status_code": extra["status"], "body": response_body,
                         "provider_errors": provider_errors},
            "steps": steps,
            "end_time": _iso(ended),
            "sub_resource": extra.get("sub_resource"),
            "service": extra.get("service"),
        }
        return {
            "id": r.id, "project_id": r.project_id, "linked_account_id": r.account_id,
            "request_id": r.request_id, "method": r.method, "path": r.path, "operation": extra.get("operation"),
            "resource": extra.get("resource"), "provider": r.provider, "status": extra["status"],
            "duration_ms": extra["duration_ms"], "started_at": r.started_at, "source_ip": r.client,
            "detail": detail,
        }


@lru_cache(maxsize=256)
def _caller_secrets(authorization: str | None) -> tuple[str, ...]:
    """The caller's API key, from its ``Authorization`` header, to mask wherever it appears."""
    from lmsgate.api.deps import basic_username
    from lmsgate.errors import Unauthorized

    try:
        key = basic_username(authorization)
    except Unauthorized:  # undecodable: the header is masked by name anyway
        return ()
    return (key,) if key else ()


def _cut(text: str, limit: int = 2048) -> str:
    """Keep log lines short whatever a client sends (the URL limit refuses, but still logs)."""
    return text if len(text) <= limit else text[:limit] + f"…[{len(text) - limit} more]"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
