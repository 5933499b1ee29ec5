"""``Idempotency-Key`` (IETF httpapi draft "The Idempotency-Key HTTP Header Field").

Any ``POST``, ``PUT``, ``PATCH`` or ``DELETE`` may carry an ``Idempotency-Key``. lmsgate keeps
the first answer to a key and replays it to every retry, so a client that lost an answer can
send the same request again without writing twice:

* The key is scoped to the project of the API key, and bound to a fingerprint of the request:
  the ``x-account-id``, the method, the path with its query, and the body (JSON bodies compared
  by content, so key order and spacing do not matter).
* A retry with the same key and fingerprint gets the first answer back: the same status, body
  and ``Location``/``Preference-Applied`` headers, plus ``Idempotent-Replayed: true``.
* The same key with another fingerprint answers **422**; a retry while the first request is
  still running answers **409** with ``Retry-After: 1``.
* Keys are forgotten ``LMSGATE_IDEMPOTENCY_KEY_TTL_SECONDS`` after first use (24 h by default);
  a key whose request never answered (its process died) is free again after
  ``LMSGATE_IDEMPOTENCY_LOCK_SECONDS``.
* Answers that say "try again" are not kept, so the retry really runs again: 408, 412, 425,
  429 and every 5xx. Every other answer (2xx, and 4xx that would only repeat themselves) is.
* The value is an RFC 8941 string (``"…"``, as the draft says); a bare token is accepted too.
  1 to 255 printable ASCII characters.

This is a middleware, so the FastAPI routes and the completion fast path honour it alike (the
fast path hands requests with the header to FastAPI). It sits inside the rate limit and the
body size limit, and inside the heartbeat, so it stores real answers only.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmsgate.api.deps import basic_username
from lmsgate.api.responses import error_body
from lmsgate.errors import BadRequest, LmsGateError
from lmsgate.service.accounts import AccountResolver
from lmsgate.settings import Settings
from lmsgate.store.idempotency import Began, IdempotencyStore, InFlight, Mismatch, Stored

log = logging.getLogger("lmsgate.api.idempotency")

HEADER = b"idempotency-key"
METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEPT_HEADERS = frozenset({b"content-type", b"location", b"preference-applied"})
NOT_KEPT = frozenset({408, 412, 425, 429})
MAX_KEY = 255


def parse_key(raw: bytes) -> str:
    """The key from the header value; :class:`BadRequest` naming the header when it is unusable."""
    try:
        value = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise BadRequest("Idempotency-Key: must be printable ASCII") from None
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner, out, escaped = value[1:-1], [], False
        for ch in inner:
            if escaped:
                if ch not in '"\\':
                    raise BadRequest("Idempotency-Key: a quoted string may only escape \" and \\")
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                raise BadRequest("Idempotency-Key: an unescaped quote inside the quoted string")
            else:
                out.append(ch)
        if escaped:
            raise BadRequest("Idempotency-Key: the quoted string ends in a lone backslash")
        value = "".join(out)
    elif '"' in value or "\\" in value:
        raise BadRequest("Idempotency-Key: quote the key as a string (\"…\") to use quotes or backslashes")
    if not 1 <= len(value) <= MAX_KEY:
        raise BadRequest(f"Idempotency-Key: must be 1 to {MAX_KEY} characters, got {len(value)}")
    if any(not 0x20 <= ord(ch) <= 0x7E for ch in value):
        raise BadRequest("Idempotency-Key: must be printable ASCII")
    return value


def _same_numbers(value: Any) -> Any:
    """JSON with each number in one form: 50, 50.0 and 5e1 are the same number (and store the
    same record), so a float with no fraction becomes an int (within 2^53, where that is exact)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dict):
        return {k: _same_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_same_numbers(v) for v in value]
    return value


def fingerprint(account: str | None, method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes two requests the same: account, method, path, query, and the body as JSON
    compared by content (key order, spacing and the spelling of numbers aside). The standard
    library reads it: it keeps integers beyond 64 bits exact, where orjson reads them as
    floats, and two different such numbers would pass for one."""
    try:
        canonical = json.dumps(_same_numbers(json.loads(body)), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode("utf-8", "surrogatepass") if body else b""
    except (ValueError, RecursionError):  # not JSON (or too deep to read): the bytes as they are
        canonical = body
    digest = hashlib.sha256()
    for part in ((account or "").encode(), method.encode(), path.encode(), query, canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class Idempotency:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, *, store: IdempotencyStore, resolver: AccountResolver,
                 settings: Settings) -> None:
        self.app = app
        self.store = store
        self.resolver = resolver
        self.ttl = settings.idempotency_key_ttl_seconds
        self.lock = settings.idempotency_lock_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        raw_keys = [v for k, v in headers if k == HEADER]
        if not raw_keys:
            await self.app(scope, receive, send)
            return
        try:
            if len(raw_keys) > 1:
                raise BadRequest("Idempotency-Key: send the header once")
            key = parse_key(raw_keys[0])
            auth = next((v.decode("latin-1") for k, v in headers if k == b"authorization"), None)
            project = self.resolver.project_for_key(basic_username(auth))
        except BadRequest as exc:
            await _answer(send, exc.status, error_body(exc.status, exc.message))
            return
        except LmsGateError:
            await self.app(scope, receive, send)  # not authenticated: the app answers 401, nothing is kept
            return

        body = await _read_body(receive)
        account = next((v.decode("latin-1") for k, v in headers if k == b"x-account-id"), None)
        fp = fingerprint(account, scope["method"], scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
                         scope.get("query_string", b""), body)
        now = datetime.now(UTC)
        decision = await anyio.to_thread.run_sync(
            lambda: self.store.begin(project, key, fp, account, now, self.ttl, self.lock))
        if isinstance(decision, Stored):
            replay = [(n.encode(), v.encode("latin-1")) for n, v in decision.headers]
            await _raw_answer(send, decision.status, decision.body, [*replay, (b"idempotent-replayed", b"true")])
            return
        if isinstance(decision, Mismatch):
            await _answer(send, 422, error_body(
                422, "Idempotency-Key: this key was already used for a different request (another account, "
                "method, path or body); use a new key for a new request"))
            return
        if isinstance(decision, InFlight):
            await _answer(send, 409, error_body(
                409, "Idempotency-Key: the first request with this key is still being processed; retry later"),
                [(b"retry-after", b"1")])
            return
        assert isinstance(decision, Began)
        await self._run(scope, body, send, project, key)

    async def _run(self, scope: Scope, body: bytes, send: Send, project: str, key: str) -> None:
        status: int | None = None
        kept: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        complete = False
        sent = False

        async def replay_receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        settled = False

        async def settle() -> None:
            """Record the answer (or free the key) *before* the client can see it, so a retry
            that follows the answer finds the key finished, never still in flight."""
            nonlocal settled
            settled = True
            if status is not None and complete and status < 500 and status not in NOT_KEPT:
                data = b"".join(chunks)
                await anyio.to_thread.run_sync(lambda: self.store.finish(project, key, status, kept, data))
            else:
                await anyio.to_thread.run_sync(self.store.release, project, key)

        async def capture(message: Message) -> None:
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                kept[:] = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in message.get("headers", [])
                           if n.lower() in KEPT_HEADERS]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)
                if complete and not settled:
                    await settle()
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            if not settled:
                await anyio.to_thread.run_sync(self.store.release, project, key)
            raise
        if not settled:
            await settle()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _answer(send: Send, status: int, body: dict[str, Any],
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await _raw_answer(send, status, orjson.dumps(body), [(b"content-type", b"application/json"), *(extra or [])])


async def _raw_answer(send: Send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
