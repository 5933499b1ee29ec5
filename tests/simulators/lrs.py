"""A fast xAPI LRS on 127.0.0.1 that can be switched between healthy, slow, 429-ing, 500-ing and dead.

Built for the delivery fault tests and ``bench/delivery_bench.py``: an asyncio server in its
own thread (thousands of requests a second), speaking the part of xAPI the ``xapi`` connector
writes with: ``PUT /xapi/statements?statementId=…`` (204; 409 for a different statement under a
known id), ``POST /xapi/statements`` with one statement or an array (200 with their ids; all or
nothing, as xAPI requires: one statement refused refuses the batch) and ``GET
/xapi/statements?limit=1`` (the account check).

What it records, to judge lmsgate by:

* ``accepted``: per statement id, how many times a PUT of it was answered 2xx: a completion
  that arrived exactly once has 1. ``stored`` holds the statements themselves.
* per account (the Basic user name): the most requests it ever had in flight at once, and
  the arrival time of every request, to check concurrency and rate limits; ``batches`` counts
  the statement batches (POSTs) it accepted.

Modes (:meth:`LrsSimulator.set_mode`): ``healthy`` answers after ``latency`` seconds; ``slow``
after ``slow_seconds``; ``429`` answers 429 with ``Retry-After``; ``500`` answers 500; ``dead``
closes the listening socket (connections are refused) until another mode is set. Statements
whose activity id ends with a reference in ``reject`` are answered 400 with an error body, in
every mode but dead.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections import Counter, defaultdict
from typing import Any
from urllib.parse import parse_qs, urlsplit

MODES = ("healthy", "slow", "429", "500", "dead")


class LrsSimulator:
    def __init__(self, *, latency: float = 0.0, slow_seconds: float = 2.0, retry_after: int = 1) -> None:
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.mode = "healthy"
        self.reject: set[str] = set()
        self.accepted: Counter[str] = Counter()
        self.stored: dict[str, dict[str, Any]] = {}
        self.accepted_at: dict[str, float] = {}
        """Statement id → when it was first accepted (``time.monotonic()``)."""
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.requests = 0
        self.batches = 0
        self.lock = threading.Lock()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # ------------------------------------------------------------ control (any thread)

    def __enter__(self) -> LrsSimulator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/xapi/"

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        was = self.mode
        self.mode = mode
        if mode == "dead" and was != "dead":
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        elif mode != "dead" and was == "dead":
            asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def delivered_count(self) -> int:
        with self.lock:
            return len(self.accepted)

    # ------------------------------------------------------------ server

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True,
                                                  backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        """Stop listening and drop the open (keep-alive) connections: a dead provider answers nothing."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                status, payload, extra = await self._handle(method, target, headers, body)
                data = json.dumps(payload).encode() if payload is not None else b""
                out = [f"HTTP/1.1 {status} X", f"Content-Length: {len(data)}", "Connection: keep-alive"]
                if data:
                    out.append("Content-Type: application/json")
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _handle(self, method: str, target: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        user = _basic_user(headers.get("authorization", ""))
        now = time.monotonic()
        with self.lock:
            self.requests += 1
            self.arrivals[user].append(now)
            self.in_flight[user] += 1
            self.max_in_flight[user] = max(self.max_in_flight[user], self.in_flight[user])
        try:
            mode = self.mode
            await asyncio.sleep(self.slow_seconds if mode == "slow" else self.latency)
            if mode == "429":
                return 429, {"error": "slow down"}, {"Retry-After": str(self.retry_after)}
            if mode == "500":
                return 500, {"error": "internal error"}, {}
            if parts.path != "/xapi/statements":
                return 404, {"error": "no such resource"}, {}
            if method == "GET":
                return 200, {"statements": [], "more": ""}, {}
            if method == "PUT":
                statements = [{**json.loads(body), "id": query.get("statementId", "")}]
            elif method == "POST":
                parsed = json.loads(body)
                statements = parsed if isinstance(parsed, list) else [parsed]
            else:
                return 405, {"error": "method not allowed"}, {}
            for statement in statements:
                activity = (statement.get("object") or {}).get("id", "")
                if any(activity.endswith(ref) for ref in self.reject):
                    return 400, {"error": f"statement {statement.get('id')} refused: activity {activity} is not "
                                 "in the catalogue"}, {}
            with self.lock:  # all or nothing
                for statement in statements:
                    known = self.stored.get(statement.get("id", ""))
                    if known is not None and known != statement:
                        return 409, {"error": "conflict"}, {}
                at = time.monotonic()
                for statement in statements:
                    sid = statement["id"]
                    self.stored[sid] = statement
                    self.accepted[sid] += 1
                    self.accepted_at.setdefault(sid, at)
                if method == "POST":
                    self.batches += 1
            return (204, None, {}) if method == "PUT" else (200, [st["id"] for st in statements], {})
        finally:
            with self.lock:
                self.in_flight[user] -= 1


def _basic_user(header: str) -> str:
    if not header.startswith("Basic "):
        return ""
    try:
        return base64.b64decode(header[6:]).decode().partition(":")[0]
    except ValueError:
        return ""
