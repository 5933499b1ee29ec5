"""ASGI middleware that refuses request bodies over the configured size, before parsing."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmsgate.api.responses import error_body


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        body = orjson.dumps(error_body(400, f"body: larger than the {self.max_bytes}-byte limit"))
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._reject(send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send)


class RequestHeadLimits:
    """Refuse over-long URLs (414), oversized or too many headers (431), and paths whose
    percent-encoded bytes are not UTF-8 (400), before any parsing.

    Each limit answers in StackOne's error shape and names what was too large. The HTTP
    server's own parser stops heads larger than its buffer earlier, with a bare 400; lmsgate's
    defaults sit below that (see ``docs/security.md``).
    """

    def __init__(self, app: ASGIApp, *, max_url_bytes: int, max_header_bytes: int, max_header_count: int) -> None:
        self.app = app
        self.max_url_bytes = max_url_bytes
        self.max_header_bytes = max_header_bytes
        self.max_header_count = max_header_count

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """``(status, message)`` when the request's head is over a limit, else None."""
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        url_bytes = len(raw_path) + len(scope.get("query_string", b""))
        if url_bytes > self.max_url_bytes:
            return 414, (f"url: the path and query string are {url_bytes} bytes long; "
                         f"the limit is {self.max_url_bytes}")
        if "\ufffd" in scope["path"] and not _utf8(raw_path):
            # The server decodes bytes that are not UTF-8 to U+FFFD: %FF and %FE would both
            # become the id "\ufffd", and two learners one.
            return 400, "path: percent-encoded bytes that are not UTF-8; encode ids as UTF-8"
        headers = scope.get("headers", [])
        if len(headers) > self.max_header_count:
            return 431, f"headers: {len(headers)} headers sent; the limit is {self.max_header_count}"
        size = sum(len(name) + len(value) for name, value in headers)
        if size > self.max_header_bytes:
            largest = max(headers, key=lambda h: len(h[0]) + len(h[1]))[0].decode("latin-1")
            return 431, (f"headers: {size} bytes of headers sent (the largest is {largest}); "
                         f"the limit is {self.max_header_bytes}")
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        await self.app(scope, receive, send)


def _utf8(raw_path: bytes) -> bool:
    try:
        unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def _refuse(send: Send, status: int, message: str) -> None:
    body = orjson.dumps(error_body(status, message))
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
