"""Helper processes beside the server, for work that should not hold the server's one
interpreter lock: a kind of helper (:class:`HelperKind`) names the module a helper runs
(``python -P -m <module> <fd> <args>``) and how many to keep.

A helper talks over a socket pair, in frames of a 4-byte length and a pickle, and answers the
requests it is sent in the order sent; it first says ``("ready",)``. :class:`HelperPool`
keeps the helpers of a kind for each event loop an app serves on (``serve`` at the app's start,
``close`` at its end), starts them on the first request, and sends each request to the ready one
with the fewest waiting. :meth:`HelperPool.ask` answers None whenever no helper can do the
work, and the caller then does it itself: while they start, after one failed (started again
``retry_after`` seconds later), when each has ``max_waiting`` requests waiting, and when the
helper ended before answering. A helper that has not answered ``timeout`` seconds after a
request was sent (checked every third of that) is killed. Helpers live in a session of their
own (a Ctrl-C on the terminal is the server's to handle) and exit when their end of the socket
closes: when the server stops, and if it is killed. Users: ``store.page_readers``,
``store.commit_process``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["HEADER", "HelperKind", "HelperPool", "answer_requests", "frame", "read_requests"]

log = logging.getLogger("lmsgate.store")

HEADER = 4


MAX_FRAME = 256 * 1024 * 1024
"""The largest message sent to a helper; a larger request is the caller's to do itself (a
group of a thousand posts near the 5 MiB body limit each would not fit a 4-byte length)."""


def frame(message: Any) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) > MAX_FRAME:
        raise ValueError(f"a message of {len(data):,} bytes is over {MAX_FRAME:,}")
    return len(data).to_bytes(HEADER, "little") + data


def read_requests(channel: socket.socket) -> Any:
    """A helper's side: each request the server sends, until it closes its end."""
    incoming = channel.makefile("rb")
    while True:
        header = incoming.read(HEADER)
        if len(header) < HEADER:
            return  # the server's end closed: it stopped, or was killed
        yield pickle.loads(incoming.read(int.from_bytes(header, "little")))


def answer_requests(fd: int, answer: Callable[..., tuple[Any, ...]]) -> None:
    """A helper's life, once it is ready to work: say so, then send ``answer(*request)`` for each
    request, until the server closes its end."""
    channel = socket.socket(fileno=fd)
    channel.sendall(frame(("ready",)))
    for request in read_requests(channel):
        channel.sendall(frame(answer(*request)))


@dataclass(frozen=True)
class HelperKind:
    """What a pool keeps: the module the helpers run and its arguments, how many, what to call
    them in the log, what happens instead while they cannot work, and their limits (read when
    used, from ``limits``, so that tests may change them)."""

    module: str
    args: tuple[str, ...]
    count: int
    what: str
    instead: str
    limits: Callable[[], tuple[float, float, int]]
    """``(retry_after, timeout, max_waiting)``."""

    @property
    def retry_after(self) -> float:
        return self.limits()[0]

    @property
    def timeout(self) -> float:
        return self.limits()[1]

    @property
    def max_waiting(self) -> int:
        return self.limits()[2]


class _Helper(asyncio.Protocol):
    """One helper process and the requests it has been sent, answered in the order sent."""

    def __init__(self, owner: _Helpers) -> None:
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
        while len(buffer) >= HEADER:
            size = int.from_bytes(buffer[:HEADER], "little")
            if len(buffer) < HEADER + size:
                break
            message = pickle.loads(buffer[HEADER:HEADER + size])
            del buffer[:HEADER + size]
            if message == ("ready",):
                self.ready = True
                continue
            if not self.waiting:  # an answer nobody asked for: not a helper to trust
                self.stop("answered a request it was not sent")
                return
            future, _ = self.waiting.popleft()
            if not future.done():  # the request may have been cancelled meanwhile
                future.set_result(message)

    def connected(self, attempt: asyncio.Task[Any]) -> None:
        """The end of the attempt to connect: on failure (or cancelled by :meth:`stop`), the
        socket is this helper's to close."""
        if attempt.cancelled() or attempt.exception() is not None:
            if self.sock is not None:
                self.sock.close()
            if not attempt.cancelled():
                self.stop(f"could not be reached ({type(attempt.exception()).__name__})")

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop("stopped" if exc is None else f"stopped ({type(exc).__name__})")

    def send(self, *request: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # written first: a request that could not be sent must not wait in line for another's answer
        self.transport.write(frame(request))  # type: ignore[union-attr]
        self.waiting.append((future, time.monotonic()))
        return future

    def stop(self, why: str | None = None) -> None:
        """End this helper: its waiting requests are answered None (the caller does the work).

        ``why`` (a failure, logged) ends it without waiting for the process, which is reaped
        later from the event loop; without it (the app's shutdown) the process is waited for,
        two seconds at most."""
        if self.gone:
            return
        self.gone, self.ready = True, False
        if why is not None:
            kind = self.owner.kind
            log.warning("%s %s; %s until a new one starts in %.0f s", kind.what, why, kind.instead,
                        kind.retry_after)
            self.owner.retry_at = time.monotonic() + kind.retry_after
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
        try:
            self.process.terminate()
        except OSError:
            return
        if why is None:
            wait_ended(self.process)
        else:
            try:
                asyncio.get_running_loop().call_later(0.05, reap_later, self.process, 0)
            except RuntimeError:  # no event loop runs here
                wait_ended(self.process)


def wait_ended(process: subprocess.Popen[bytes]) -> None:
    """Collect an ending process, blocking two seconds at most (killed after the first)."""
    for last in (False, True):
        try:
            process.wait(timeout=1)
            return
        except subprocess.TimeoutExpired:
            if not last:
                process.kill()


def reap_later(process: subprocess.Popen[bytes], tries: int) -> None:
    """Collect an ending process without blocking the event loop: killed after 2 s, given up
    after 10 s (a process stuck in the kernel; ``subprocess`` collects it later)."""
    if process.poll() is not None or tries >= 200:
        return
    if tries == 40:
        process.kill()
    try:
        asyncio.get_running_loop().call_later(0.05, reap_later, process, tries + 1)
    except RuntimeError:  # the event loop is closing: subprocess collects it later
        pass


class _Helpers:
    """The helpers of one kind, for one event loop."""

    def __init__(self, kind: HelperKind) -> None:
        self.kind = kind
        self.helpers: list[_Helper] = []
        self.retry_at = 0.0
        self.watchdog: asyncio.TimerHandle | None = None
        self.closed = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the helpers missing (they take requests once they said they are ready)."""
        if self.watchdog is None:
            self.watchdog = loop.call_later(self.kind.timeout / 3, self._watch, loop)
        self.helpers = [h for h in self.helpers if not h.gone]
        for _ in range(self.kind.count - len(self.helpers)):
            helper = _Helper(self)
            try:
                ours, theirs = socket.socketpair()
            except OSError as exc:  # out of file descriptors, say
                self._not_started(exc)
                return
            try:
                helper.process = subprocess.Popen(
                    # -P: the working directory stays off the module path (a socket.py there is not ours)
                    [sys.executable, "-P", "-m", self.kind.module, str(theirs.fileno()), *self.kind.args],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, start_new_session=True)
            except Exception as exc:  # noqa: BLE001 - a helper that cannot start must not fail a request
                ours.close()
                self._not_started(exc)
                return
            finally:
                theirs.close()
            self.helpers.append(helper)
            helper.sock = ours
            helper.connecting = loop.create_task(loop.create_connection(lambda h=helper: h, sock=ours))
            helper.connecting.add_done_callback(helper.connected)

    def _not_started(self, exc: Exception) -> None:
        kind = self.kind
        log.warning("%s could not be started (%s); %s, and one is tried again in %.0f s", kind.what, exc,
                    kind.instead, kind.retry_after)
        self.retry_at = time.monotonic() + kind.retry_after

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self.watchdog = None
        if self.closed:
            return
        now = time.monotonic()
        for helper in self.helpers:
            if helper.waiting and now - helper.waiting[0][1] > self.kind.timeout:
                if helper.process is not None:
                    helper.process.kill()
                helper.stop(f"took more than {self.kind.timeout:.0f} s to answer and was stopped")
        self.watchdog = loop.call_later(self.kind.timeout / 3, self._watch, loop)

    def pick(self, loop: asyncio.AbstractEventLoop) -> _Helper | None:
        """The ready helper with the fewest requests waiting, or None when none can take one."""
        if sum(not h.gone for h in self.helpers) < self.kind.count and time.monotonic() >= self.retry_at:
            self.start(loop)
        best = None
        for helper in self.helpers:
            if helper.ready and (best is None or len(helper.waiting) < len(best.waiting)):
                best = helper
        if best is None or len(best.waiting) >= self.kind.max_waiting:
            return None
        return best

    def close(self) -> None:
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
        for helper in self.helpers:
            try:
                helper.stop()
            except Exception:  # the others must still be stopped
                log.exception("%s could not be stopped", self.kind.what)
        self.helpers = []


class HelperPool:
    """Helpers of one kind for each event loop an app serves on (see the module's docstring)."""

    def __init__(self, kind: HelperKind) -> None:
        self.kind = kind
        self._by_loop: dict[asyncio.AbstractEventLoop, _Helpers] = {}
        self._guard = threading.Lock()  # apps on several threads (tests) share one container

    def serve(self) -> None:
        """Let the running event loop's requests go to helpers, until :meth:`close`: the app's
        start. Elsewhere (a command) the caller does the work itself."""
        loop = asyncio.get_running_loop()
        with self._guard:
            left = [self._by_loop.pop(other) for other in list(self._by_loop) if other.is_closed()]
            self._by_loop.setdefault(loop, _Helpers(self.kind))
        for helpers in left:  # an app that ended without closing them
            helpers.close()

    async def ask(self, *request: Any) -> Any:
        """Send ``request`` to the ready helper with the fewest waiting, and return its answer;
        None when no helper could take it or it ended before answering."""
        loop = asyncio.get_running_loop()
        helpers = self._by_loop.get(loop)
        if helpers is None:
            return None
        helper = helpers.pick(loop)
        if helper is None:
            return None
        try:
            answer = helper.send(*request)
        except Exception as exc:  # noqa: BLE001 - too big to send, say: the caller does it
            log.debug("%s was not sent a request: %s", self.kind.what, exc)
            return None
        return await answer

    def restart(self, why: str) -> None:
        """Stop the running event loop's helpers after a failure (logged); new ones start
        ``retry_after`` seconds later."""
        helpers = self._by_loop.get(asyncio.get_running_loop())
        if helpers is not None:
            for helper in helpers.helpers:
                helper.stop(why)

    def ready(self) -> int:
        """How many helpers of the running event loop take requests now."""
        helpers = self._by_loop.get(asyncio.get_running_loop())
        return 0 if helpers is None else sum(h.ready for h in helpers.helpers)

    def processes(self) -> list[int]:
        """The process ids of the running event loop's helpers."""
        helpers = self._by_loop.get(asyncio.get_running_loop())
        return [] if helpers is None else [h.process.pid for h in helpers.helpers
                                           if h.process is not None and not h.gone]

    def close(self) -> None:
        """Stop the running event loop's helpers (the app's shutdown)."""
        with self._guard:
            helpers = self._by_loop.pop(asyncio.get_running_loop(), None)
        if helpers is not None:
            helpers.close()
