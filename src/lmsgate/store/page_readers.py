"""Page readers: processes beside the server that read and finish list pages of a SQLite file.

A page of 100 completions costs the server about half a millisecond of its one interpreter
lock: SQLite building each object (``connectors.local.rendering``) and Python finishing it
(``connectors.local.finishing``). On the event loop that is half a millisecond in which no
other request moves, and a busy list endpoint kept a 2-core machine half idle. A page reader
is a fresh interpreter with its own read connection to the same file: the server sends it the
page's SQL and parameters, and gets back the finished objects. SQLite lets readers in at any
time (WAL), and each page is one statement, which sees every transaction committed before it
started, as the server's own connection would.

:class:`PageReaders` keeps ``LMSGATE_READ_PROCESSES`` of them for each event loop an app
serves on (``serve`` at the app's start, ``close`` at its end), started on the first page asked for, and sends each page to the one with the fewest pages waiting. A page is
read in the server's process, as before, whenever no reader can take it: while they start,
after one failed (it is started again :data:`RETRY_AFTER` seconds later), when each already has
:data:`MAX_WAITING` pages waiting, and if the reader answers with an error (the server's own
read then raises it in its usual words). A reader that has not answered a page :data:`TIMEOUT`
seconds after it was sent (checked every third of that: within 30-40 s by default) is killed.
Readers live in a session of their own (a Ctrl-C on the terminal is the server's to handle)
and exit when their end of the socket closes: when the server stops, and if it is killed.

The reader process loads only the standard library, orjson and ``finishing``: about 25 MB once
it has read pages (SQLite's page cache included).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import pickle
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["MAX_WAITING", "RETRY_AFTER", "TIMEOUT", "PageReaders"]

log = logging.getLogger("lmsgate.store")

RETRY_AFTER = 30.0
"""After a reader failed, it is started again this many seconds later."""
TIMEOUT = 30.0
"""A reader that has not answered a page for this long is killed (its pages are read here)."""
MAX_WAITING = 32
"""Pages waiting on one reader beyond which a page is read in the server's process."""

_HEADER = 4


def _frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(_HEADER, "little") + data


# ---------------------------------------------------------------- the server's side

class _Reader(asyncio.Protocol):
    """One reader process and the pages it has been sent, answered in the order sent."""

    def __init__(self, owner: _Readers) -> None:
        self.owner = owner
        self.process: subprocess.Popen[bytes] | None = None
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self.gone = False
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.connecting: asyncio.Task[None] | None = None
        self.sock: socket.socket | None = None
        self._buffer = bytearray()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.gone:  # stopped while it was being connected
            transport.close()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _HEADER:
            size = int.from_bytes(buffer[:_HEADER], "little")
            if len(buffer) < _HEADER + size:
                break
            message = pickle.loads(buffer[_HEADER:_HEADER + size])
            del buffer[:_HEADER + size]
            if message == ("ready",):
                self.ready = True
                continue
            if not self.waiting:  # an answer nobody asked for: not a reader to trust
                self.stop("answered a page it was not sent")
                return
            future, _ = self.waiting.popleft()
            if not future.done():  # the request may have been cancelled meanwhile
                future.set_result(message)

    def connected(self, attempt: asyncio.Task[Any]) -> None:
        """The end of the attempt to connect: on failure (or cancelled by :meth:`stop`), the
        socket is this reader's to close."""
        if attempt.cancelled() or attempt.exception() is not None:
            if self.sock is not None:
                self.sock.close()
            if not attempt.cancelled():
                self.stop(f"could not be reached ({type(attempt.exception()).__name__})")

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop("stopped" if exc is None else f"stopped ({type(exc).__name__})")

    def send(self, sql: str, parameters: Any, page_size: int) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # written first: a page that could not be sent must not wait in line for another's answer
        self.transport.write(_frame((sql, parameters, page_size)))  # type: ignore[union-attr]
        self.waiting.append((future, time.monotonic()))
        return future

    def stop(self, why: str | None = None) -> None:
        """End this reader: its waiting pages are read in the server's process instead.

        ``why`` (a failure, logged) ends it without waiting for the process, which is reaped
        later from the event loop; without it (the app's shutdown) the process is waited for,
        two seconds at most."""
        if self.gone:
            return
        self.gone, self.ready = True, False
        if why is not None:
            log.warning("a page reader %s; pages are read in the server's process until a new one "
                        "starts in %.0f s", why, RETRY_AFTER)
            self.owner.retry_at = time.monotonic() + RETRY_AFTER
        for future, _ in self.waiting:
            if not future.done():
                future.set_result(None)
        self.waiting.clear()
        try:
            if self.transport is not None:
                self.transport.close()
            elif self.connecting is not None and not self.connecting.done():
                self.connecting.cancel()  # not connected yet: connected() closes the socket
            elif self.sock is not None:
                self.sock.close()
        except RuntimeError:  # its event loop is closed already: close the socket itself
            if self.sock is not None:
                self.sock.close()
        if self.process is None:
            return
        try:  # it reads only: nothing is lost by ending it at once
            self.process.terminate()
        except OSError:
            return
        if why is None:
            _wait(self.process)
        else:
            try:
                asyncio.get_running_loop().call_later(0.05, _reap, self.process, 0)
            except RuntimeError:  # no event loop runs here
                _wait(self.process)


def _wait(process: subprocess.Popen[bytes]) -> None:
    """Collect an ending process, blocking two seconds at most (killed after the first)."""
    for last in (False, True):
        try:
            process.wait(timeout=1)
            return
        except subprocess.TimeoutExpired:
            if not last:
                process.kill()


def _reap(process: subprocess.Popen[bytes], tries: int) -> None:
    """Collect an ending process without blocking the event loop: killed after 2 s, given up
    after 10 s (a process stuck in the kernel; ``subprocess`` collects it later)."""
    if process.poll() is not None or tries >= 200:
        return
    if tries == 40:
        process.kill()
    try:
        asyncio.get_running_loop().call_later(0.05, _reap, process, tries + 1)
    except RuntimeError:  # the event loop is closing: subprocess collects it later
        pass


class _Readers:
    """The readers of one event loop."""

    def __init__(self, database: str, count: int) -> None:
        self.database = database
        self.count = count
        self.readers: list[_Reader] = []
        self.retry_at = 0.0
        self.watchdog: asyncio.TimerHandle | None = None
        self.closed = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the readers missing (they take pages once they said they are ready)."""
        if self.watchdog is None:
            self.watchdog = loop.call_later(TIMEOUT / 3, self._watch, loop)
        self.readers = [r for r in self.readers if not r.gone]
        for _ in range(self.count - len(self.readers)):
            reader = _Reader(self)
            try:
                ours, theirs = socket.socketpair()
            except OSError as exc:  # out of file descriptors, say
                self._not_started(exc)
                return
            try:
                reader.process = subprocess.Popen(
                    # -P: the working directory stays off the module path (a socket.py there is not ours)
                    [sys.executable, "-P", "-m", "lmsgate.store.page_readers", str(theirs.fileno()), self.database],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, start_new_session=True)
            except Exception as exc:  # noqa: BLE001 - a helper that cannot start must not fail a request
                ours.close()
                self._not_started(exc)
                return
            finally:
                theirs.close()
            self.readers.append(reader)
            reader.sock = ours
            reader.connecting = loop.create_task(loop.create_connection(lambda r=reader: r, sock=ours))
            reader.connecting.add_done_callback(reader.connected)

    def _not_started(self, exc: Exception) -> None:
        log.warning("a page reader could not be started (%s); pages are read in the server's "
                    "process, and a reader is tried again in %.0f s", exc, RETRY_AFTER)
        self.retry_at = time.monotonic() + RETRY_AFTER

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self.watchdog = None
        if self.closed:
            return
        now = time.monotonic()
        for reader in self.readers:
            if reader.waiting and now - reader.waiting[0][1] > TIMEOUT:
                if reader.process is not None:
                    reader.process.kill()
                reader.stop(f"took more than {TIMEOUT:.0f} s for a page and was stopped")
        self.watchdog = loop.call_later(TIMEOUT / 3, self._watch, loop)

    def pick(self, loop: asyncio.AbstractEventLoop) -> _Reader | None:
        """The ready reader with the fewest pages waiting, or None when none can take one."""
        if sum(not r.gone for r in self.readers) < self.count and time.monotonic() >= self.retry_at:
            self.start(loop)
        best = None
        for reader in self.readers:
            if reader.ready and (best is None or len(reader.waiting) < len(best.waiting)):
                best = reader
        if best is None or len(best.waiting) >= MAX_WAITING:
            return None
        return best

    def close(self) -> None:
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
        for reader in self.readers:
            try:
                reader.stop()
            except Exception:  # the others must still be stopped
                log.exception("a page reader could not be stopped")
        self.readers = []


class PageReaders:
    """Reader processes for one SQLite database file (see the module's docstring)."""

    def __init__(self, database: str, count: int) -> None:
        self.database = database
        self.count = count
        self._by_loop: dict[asyncio.AbstractEventLoop, _Readers] = {}
        self._guard = threading.Lock()  # apps on several threads (tests) share one container

    def serve(self) -> None:
        """Let the running event loop's pages be read by readers, until :meth:`close`: the
        app's start. Elsewhere (a command such as ``completions export``, which reads one page
        after another) pages are read in the process itself."""
        loop = asyncio.get_running_loop()
        with self._guard:
            left = [self._by_loop.pop(other) for other in list(self._by_loop) if other.is_closed()]
            self._by_loop.setdefault(loop, _Readers(self.database, self.count))
        for readers in left:  # an app that ended without closing them
            readers.close()

    async def read(self, sql: str, parameters: Any, page_size: int) -> tuple[list[str], Any, bool] | None:
        """Run the page's SQL in a reader: the first ``page_size`` rows finished
        (``finishing.finish_page``), the id of the last, and whether more rows came. None when
        no reader could take the page: the caller reads it itself."""
        loop = asyncio.get_running_loop()
        readers = self._by_loop.get(loop)
        if readers is None:
            return None
        reader = readers.pick(loop)
        if reader is None:
            return None
        answer = await reader.send(sql, parameters, page_size)
        if answer is None or answer[0] != "page":
            if answer is not None:
                log.debug("a page reader could not read a page: %s", answer[1])
            return None
        return answer[1], answer[2], answer[3]

    def ready(self) -> int:
        """How many readers of the running event loop take pages now."""
        readers = self._by_loop.get(asyncio.get_running_loop())
        return 0 if readers is None else sum(r.ready for r in readers.readers)

    def processes(self) -> list[int]:
        """The process ids of the running event loop's readers."""
        readers = self._by_loop.get(asyncio.get_running_loop())
        return [] if readers is None else [r.process.pid for r in readers.readers
                                           if r.process is not None and not r.gone]

    def close(self) -> None:
        """Stop the running event loop's readers (the app's shutdown); its pages are read in the
        process again."""
        with self._guard:
            readers = self._by_loop.pop(asyncio.get_running_loop(), None)
        if readers is not None:
            readers.close()


# ---------------------------------------------------------------- the reader's side

def _serve(fd: int, database: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from lmsgate.connectors.local.finishing import finish_page

    # Read-only: besides refusing writes, such a connection never checkpoints the WAL, not even
    # when it closes last, so it cannot meet a commit in SQLite's WAL-reset bug (docs/operations.md).
    conn = sqlite3.connect(Path(database).as_uri() + "?mode=ro", uri=True, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    channel = socket.socket(fileno=fd)
    incoming = channel.makefile("rb")
    channel.sendall(_frame(("ready",)))
    while True:
        header = incoming.read(_HEADER)
        if len(header) < _HEADER:
            return  # the server's end closed: it stopped, or was killed
        sql, parameters, page_size = pickle.loads(incoming.read(int.from_bytes(header, "little")))
        try:
            rows = conn.execute(sql, parameters).fetchall()
            page = rows[:page_size]
            answer: tuple[Any, ...] = ("page", finish_page(page), page[-1][0] if page else None,
                                       len(rows) > page_size)
        except Exception as exc:  # noqa: BLE001 - the server reads the page itself, and reports it
            answer = ("error", f"{type(exc).__name__}: {exc}")
        channel.sendall(_frame(answer))


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2])
