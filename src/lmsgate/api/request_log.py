"""The request log's rows: what a request leaves (:class:`RequestRecord`) and the writer that
turns it into a row, masked, and stores it in batches (:class:`RequestLogWriter`).

Apart from :mod:`lmsgate.api.observe`, which fills the records, so that the request log's
own process (:mod:`lmsgate.api.request_log_process`) loads only this, the masking and the
store: not FastAPI, not the outbound HTTP client.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import orjson

from lmsgate.api.basic_auth import basic_username
from lmsgate.errors import Unauthorized
from lmsgate.http._redact import Redactor
from lmsgate.store.request_logs import RequestLogStore

if TYPE_CHECKING:
    from lmsgate.api.metrics import Metrics
    from lmsgate.api.request_log_process import RequestLogProcess

__all__ = ["ProviderCall", "RequestLogWriter", "RequestRecord"]

log = logging.getLogger("lmsgate.api")


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
    try:
        key = basic_username(authorization)
    except Unauthorized:  # undecodable: the header is masked by name anyway
        return ()
    return (key,) if key else ()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
