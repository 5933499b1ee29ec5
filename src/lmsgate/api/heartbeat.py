"""``Prefer: heartbeat`` (RFC 7240): keep the connection of a slow request alive.

StackOne's SDK from 4.34 can send ``Prefer: heartbeat`` on every LMS call. lmsgate honours it:

* Every response to such a request carries ``Preference-Applied: heartbeat``.
* A request answered within ``after`` seconds (``LMSGATE_HEARTBEAT_AFTER_SECONDS``, 5 by
  default) is answered exactly as it would be without the preference: same status, same
  headers, same body. Fast failures (authentication, validation, unknown records) therefore
  keep their exact status.
* A request still running after ``after`` seconds gets its status line and headers at once,
  then a ``\\n`` every ``interval`` seconds until the body is ready, then the body. JSON
  allows whitespace before a value, so ``JSON.parse`` reads the body unchanged.

The status line can only be sent once. When heartbeats start, lmsgate commits to the
operation's documented success status: the ``status_code`` of the matched route, that is 201
for creates and upserts, 202 for the batch upsert and 200 for the rest (the status the SDK
expects). If the operation then fails anyway, the status can no longer change: the body is
still lmsgate's error body, whose ``statusCode`` tells the real outcome, and the mismatch is
logged. A client that asks for heartbeats must therefore trust ``statusCode`` in the body
over the HTTP status. The headers are committed with the status, so the operation's own
headers (say ``Retry-After``) are lost in that case too. Requests on unknown routes never
start heartbeats.
"""

from __future__ import annotations

import logging

import anyio
import orjson
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmsgate.api.responses import error_body

log = logging.getLogger("lmsgate.api.heartbeat")

APPLIED = (b"preference-applied", b"heartbeat")
HEARTBEAT = b"\n"


def prefers_heartbeat(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether any ``Prefer`` header names the ``heartbeat`` preference (case-insensitive)."""
    for name, value in headers:
        if name != b"prefer":
            continue
        for preference in value.decode("latin-1").split(","):
            token = preference.split(";", 1)[0].split("=", 1)[0].strip().lower()
            if token == "heartbeat":
                return True
    return False


def documented_status(scope: Scope) -> int | None:
    """The success status of the operation the request was routed to; None if it matched none.

    The router records the route it dispatched to in ``scope["route"]``, in the same scope
    dict this middleware holds, as soon as the request is routed.
    """
    route = scope.get("route")
    if not isinstance(route, APIRoute) or scope.get("method") not in route.methods:
        return None
    return route.status_code or 200


class Heartbeat:
    """ASGI middleware; see the module docstring for what it promises."""

    def __init__(self, app: ASGIApp, *, after: float = 5.0, interval: float = 5.0) -> None:
        self.app = app
        self.after = after
        self.interval = interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not prefers_heartbeat(scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        await _Exchange(self, scope, receive, send).run()


class _Exchange:
    """One request with heartbeats allowed. All writes to ``send`` happen under ``lock``."""

    def __init__(self, owner: Heartbeat, scope: Scope, receive: Receive, send: Send) -> None:
        self.owner = owner
        self.scope = scope
        self.receive = receive
        self.send = send
        self.lock = anyio.Lock()
        self.committed: int | None = None
        """The status sent early, once heartbeats started."""
        self.app_started = False
        """The app's own status line went out (no heartbeat was needed)."""
        self.body_started = False
        self.body_done = False

    async def run(self) -> None:
        failure: BaseException | None = None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._beat)
            try:
                await self.owner.app(self.scope, self.receive, self._send_from_app)
            except Exception as exc:  # re-raised or answered below, outside the task group
                failure = exc
            tasks.cancel_scope.cancel()
        if failure is None:
            return
        if self.committed is None:
            raise failure
        log.error("request failed after its status %s was sent with heartbeats", self.committed,
                  exc_info=failure)
        if not self.body_done:
            async with self.lock:
                await self.send({"type": "http.response.body", "more_body": False,
                                 "body": orjson.dumps(error_body(500, "Internal server error"))})

    async def _send_from_app(self, message: Message) -> None:
        async with self.lock:
            if message["type"] == "http.response.start":
                if self.committed is None:
                    self.app_started = True
                    await self.send({**message, "headers": [*message.get("headers", []), APPLIED]})
                elif message["status"] != self.committed:
                    log.warning("%s %s answered %s after heartbeats committed to %s",
                                self.scope.get("method"), self.scope.get("path"), message["status"],
                                self.committed)
                return
            if message["type"] == "http.response.body":
                self.body_started = True
                self.body_done = not message.get("more_body", False)
            await self.send(message)

    async def _beat(self) -> None:
        await anyio.sleep(self.owner.after)
        async with self.lock:
            if self.app_started:
                return
            status = documented_status(self.scope)
            if status is None:
                return
            self.committed = status
            await self.send({
                "type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store"), APPLIED],
            })
        while True:
            async with self.lock:
                if self.body_started:
                    return
                await self.send({"type": "http.response.body", "body": HEARTBEAT, "more_body": True})
            await anyio.sleep(self.owner.interval)
