"""The request log's own process: log rows built and written beside the server, not in it.

Every logged call costs the server about as much again as the call itself: its headers and
bodies are decoded and masked, a JSON document is built, and the row is inserted. In the
server's process that work runs under the same interpreter lock as the requests, so it slows
them all, and, since rows are written in batches, it stalls them in bursts (on this
project's 2-core benchmark machine the request log cost POST completions about 15% of their
throughput and doubled their p99 latency). A second process has a lock of its own.

:class:`RequestLogProcess` keeps one child process (a fresh interpreter: "spawn") that
receives batches of requests over a pipe, builds their rows with the same code as the
in-process writer (:meth:`~lmsgate.api.request_log.RequestLogWriter.write_batch`) and writes
them. The server's share is copying each record into the pipe. A batch is acknowledged once
its transaction has committed, so ``GET /requests/logs``, which flushes first, still sees
every earlier call.

The request log must never break the API. If the child cannot be started, dies, or takes
longer than :data:`ACK_TIMEOUT` to answer, the batch is written in the server's process
instead, as it would be without a child (a batch the child had written already is not
written twice: its rows' ids are taken), and a new child is tried after
:data:`RETRY_AFTER` seconds. The child ignores Ctrl-C, which the server handles, and exits
once the server's end of the pipe closes: when the server stops, or if it is killed.
"""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from lmsgate.api.request_log import RequestLogWriter, RequestRecord
from lmsgate.http._redact import install_log_redaction, remember_secrets
from lmsgate.logs import configure_logging
from lmsgate.signals import ctrl_c_ignored
from lmsgate.store.db import create_db_engine
from lmsgate.store.request_logs import RequestLogStore

if TYPE_CHECKING:
    from lmsgate.settings import Settings

__all__ = ["ACK_TIMEOUT", "RETRY_AFTER", "LogSettings", "RequestLogProcess", "runs_apart"]

log = logging.getLogger("lmsgate.api")

ACK_TIMEOUT = 60.0
"""Longest wait for the child to commit a batch: twice the time a write waits for the
database's lock (``store.db.BUSY_TIMEOUT``), plus the child's start the first time."""
RETRY_AFTER = 30.0
"""After a child failed, batches are written in the server's process for this long."""

_WRITTEN = b"w"


@dataclass(frozen=True)
class LogSettings:
    """What the child needs to write rows as the server would (sent to it once, at start)."""

    database_url: str = field(repr=False)  # may hold a password
    body_bytes: int
    read_body_bytes: int
    retention_days: float
    log_level: str
    log_format: str
    pinned_key: str | None = field(default=None, repr=False)
    """``LMSGATE_API_KEY``, which the child's log lines mask as the server's do."""

    @classmethod
    def of(cls, settings: Settings) -> LogSettings:
        return cls(database_url=settings.database_url, body_bytes=settings.request_log_body_bytes,
                   read_body_bytes=settings.request_log_read_body_bytes,
                   retention_days=settings.request_log_retention_days,
                   log_level=settings.log_level, log_format=settings.log_format, pinned_key=settings.api_key)


def runs_apart(settings: Settings) -> bool:
    """Whether request logs get their own process: when asked for, and the database is one a
    second process can open (not an in-memory SQLite database)."""
    if not (settings.request_logs and settings.request_log_process):
        return False
    try:
        url = make_url(settings.database_url)
    except ArgumentError:  # an unreadable URL fails the start elsewhere, in its own words
        return False
    if url.get_backend_name() != "sqlite":
        return True
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return False
    return url.query.get("mode") != "memory" and "mode=memory" not in database


def _portable(record: RequestRecord) -> tuple[Any, ...]:
    """A record without what only the server's process can use (its metrics, its clock)."""
    return (record.id, record.request_id, record.method, record.path, record.query, record.client,
            record.started_at, record.project_id, record.account_id, record.provider, record.calls)


def _restored(fields: tuple[Any, ...]) -> RequestRecord:
    """The record :func:`_portable` sent, in the child."""
    return RequestRecord(*fields[:6], started=0.0, started_at=fields[6], project_id=fields[7],
                         account_id=fields[8], provider=fields[9], calls=fields[10])


class RequestLogProcess:
    """The child process that writes request logs, seen from the server. One thread at a
    time calls :meth:`write` (the writer's flush holds its own lock)."""

    def __init__(self, settings: LogSettings) -> None:
        self.settings = settings
        self._proc: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> bool:
        """Start the child unless one runs; False if it cannot be started now. From the main
        thread the child is made while Ctrl-C is ignored, so that it is ignored from the
        child's first instant."""
        with self._lock:
            if self._proc is not None and self._proc.is_alive():
                return True
            if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER:
                return False
            self._stop_child()
            try:
                with ctrl_c_ignored():
                    context = multiprocessing.get_context("spawn")
                    ours, theirs = context.Pipe(duplex=True)
                    proc = context.Process(target=_child, args=(theirs, self.settings), daemon=True,
                                           name="lmsgate-request-log")
                    proc.start()
            except Exception:
                log.exception("could not start the request log's process; writing request logs in the "
                              "server's process")
                self._failed_at = time.monotonic()
                return False
            theirs.close()  # the child holds the only other end: its exit shows here as EOF
            self._proc, self._conn, self._failed_at = proc, ours, None
            return True

    def write(self, batch: list[tuple[RequestRecord, dict[str, Any]]]) -> bool:
        """Have the child write ``batch``, and wait until it has committed. False when it
        could not: the caller writes the batch itself."""
        if not self.start():
            return False
        conn = self._conn
        assert conn is not None
        try:
            conn.send_bytes(pickle.dumps([(_portable(r), extra) for r, extra in batch], protocol=5))
            if conn.poll(ACK_TIMEOUT) and conn.recv_bytes() == _WRITTEN:
                return True
            reason = f"no answer in {ACK_TIMEOUT:.0f} s"
        except (EOFError, OSError) as exc:
            reason = f"it stopped ({type(exc).__name__})"
        log.warning("the request log's process failed: %s; writing request logs in the server's process "
                    "for %.0f s", reason, RETRY_AFTER)
        with self._lock:
            self._failed_at = time.monotonic()
            self._stop_child()
        return False

    def close(self) -> None:
        """Stop the child once it has written what it was sent (the caller flushed first)."""
        with self._lock:
            self._stop_child(wait=10.0)

    def _stop_child(self, wait: float = 1.0) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()  # the child reads EOF and exits
        if proc is not None:
            proc.join(wait)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


def _child(conn: Connection, settings: LogSettings) -> None:
    """The child's life: write each batch received and acknowledge it, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings.log_level, settings.log_format)
    install_log_redaction()  # the same masking of its log lines as the server's (lmsgate.bootstrap)
    if settings.pinned_key:
        remember_secrets(settings.pinned_key)
    # The same engine as the server's: on SQLite, synchronous=FULL, and writes that take
    # turns with the server's on <database>-write.lock (see docs/operations.md)
    engine = create_db_engine(settings.database_url)
    writer = RequestLogWriter(RequestLogStore(engine), retention_days=settings.retention_days,
                              body_bytes=settings.body_bytes, read_body_bytes=settings.read_body_bytes)
    try:
        while True:
            try:
                data = conn.recv_bytes()
            except (EOFError, OSError):
                return
            batch = [(_restored(fields), extra) for fields, extra in pickle.loads(data)]
            writer.write_batch(batch)
            try:
                conn.send_bytes(_WRITTEN)
            except OSError:
                return
    finally:
        engine.dispose()
