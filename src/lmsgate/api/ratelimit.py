"""Rate limits, answered like StackOne: 429, ``Retry-After`` and the error body.

Two limits, both token buckets (a bucket holds a minute's allowance, each request takes one
token, and tokens come back steadily, so a client may burst up to the whole minute's
allowance and then runs at the steady rate; a refused request takes no token, and
``Retry-After`` is the whole number of seconds until the next token, at least 1):

* **Per API key**: StackOne allows 1000 requests per minute to each API key; lmsgate does the
  same by default (``LMSGATE_RATE_LIMIT_PER_MINUTE``; 0 turns it off). Requests are counted by
  the Basic username they present, before the key is checked, so a flood with a valid key is
  stopped without authenticating every request. Requests without credentials, or with
  credentials that cannot be decoded, are not counted here: they are refused with 401.
* **Failed authentication per client address** (``LMSGATE_AUTH_FAILURES_PER_MINUTE``, 30 by
  default; 0 turns it off): every 401 answered to a request that presented credentials takes a
  token from its address's bucket. An address with no token left gets 429 for *every* request
  until its bucket refills, so guessing keys from one address runs at most that fast.

Buckets are named by the key's SHA-256 (never the key) or by the address. Where they live
(``LMSGATE_RATE_LIMIT_STORE``):

* ``database`` (the default on PostgreSQL): the ``rate_limit_buckets`` table
  (:mod:`lmsgate.store.rate_limits`), so every API process on that database shares one
  allowance per key and per address;
* ``memory`` (the default on SQLite, the single-process embedded mode): this process only.
  Several processes on ``memory`` each allow the full rate.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable
from typing import Protocol

import anyio.to_thread
import orjson
from sqlalchemy import Engine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmsgate.api.deps import basic_username
from lmsgate.api.responses import error_body
from lmsgate.errors import Unauthorized

_MAX_BUCKETS = 10_000
"""Above this many tracked keys, buckets that have refilled completely are dropped."""


class Buckets(Protocol):
    blocking: bool

    def take(self, key: str) -> float: ...

    def peek(self, key: str) -> float: ...


class TokenBuckets:
    """``per_minute`` tokens per key, refilled continuously, in this process. Not thread-safe:
    one event loop."""

    blocking = False

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        """Tokens regained per second."""
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """key → (tokens left, monotonic time of that count)."""

    def _refilled(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - then) * self.rate)

    def take(self, key: str) -> float:
        """Take a token for ``key``. Returns 0 when allowed, else the seconds until one is free."""
        now = self._clock()
        tokens = self._refilled(key, now)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > _MAX_BUCKETS:
                self._prune(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def peek(self, key: str) -> float:
        """Seconds until ``key`` has a token (0 if it has one now); takes nothing."""
        tokens = self._refilled(key, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        full_after = self.capacity / self.rate
        for key in [k for k, (_, then) in self._buckets.items() if now - then >= full_after]:
            del self._buckets[key]


class RecentlyClear:
    """Shared buckets, with the answer "this bucket is full" remembered for ``ttl`` seconds.

    The failed-authentication limit looks at the caller's address on every request, but an
    address almost never has failures. In front of database buckets this keeps that look-up
    off the hot path: an address found with a full bucket is not looked up again for ``ttl``
    seconds, unless it fails to authenticate here meanwhile (which takes a token and forgets
    the answer). Failures counted by *other* API processes are therefore seen up to ``ttl``
    seconds late.
    """

    blocking = True

    def __init__(self, inner: Buckets, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.ttl = ttl
        self._clock = clock
        self._clear: dict[str, float] = {}

    def recent_peek(self, key: str) -> float | None:
        """0 when ``key`` was found full less than ``ttl`` seconds ago; None when unknown."""
        at = self._clear.get(key)
        return 0.0 if at is not None and self._clock() - at < self.ttl else None

    def peek(self, key: str) -> float:
        wait = self.inner.peek(key)
        if wait:
            self._clear.pop(key, None)
        else:
            if len(self._clear) > _MAX_BUCKETS:
                self._clear.clear()
            self._clear[key] = self._clock()
        return wait

    def take(self, key: str) -> float:
        self._clear.pop(key, None)
        return self.inner.take(key)


def make_buckets(store: str, engine: Engine, per_minute: int, namespace: str) -> Buckets:
    """Buckets allowing ``per_minute`` per name, in memory or in the database (see the module
    docstring); ``store`` is ``memory``, ``database`` or ``auto`` (database on PostgreSQL)."""
    if store == "auto":
        store = "database" if engine.dialect.name == "postgresql" else "memory"
    if store == "memory":
        return TokenBuckets(per_minute)
    from lmsgate.store.rate_limits import SqlTokenBuckets

    buckets = SqlTokenBuckets(engine, capacity=per_minute, per_second=per_minute / 60.0, namespace=namespace)
    return RecentlyClear(buckets) if namespace == "address" else buckets


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return value.decode("latin-1")
    return None


@functools.lru_cache(maxsize=1024)
def _bucket_name(key: str) -> str:
    """A key's bucket is named by its SHA-256, never by the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


async def _call(buckets: Buckets, method: str, key: str) -> float:
    fn = getattr(buckets, method)
    if buckets.blocking:
        return await anyio.to_thread.run_sync(fn, key)
    return fn(key)


class RateLimit:
    """ASGI middleware: refuse requests over either limit with 429 before the app runs.

    ``keys``/``addresses`` are the buckets of each limit, or None when that limit is off.
    """

    def __init__(self, app: ASGIApp, *, per_minute: int, keys: Buckets | None = None,
                 addresses: Buckets | None = None, failures_per_minute: int = 0,
                 on_refusal: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.per_minute = per_minute
        self.keys = keys if keys is not None or not per_minute else TokenBuckets(per_minute)
        self.addresses = addresses
        self.failures_per_minute = failures_per_minute
        self.on_refusal = on_refusal
        """Told ``api_key`` or ``auth_failures`` at each refusal (metrics)."""

    async def refusal(self, header: str | None, address: str) -> tuple[str, int, str] | None:
        """Take this request's token; ``(reason, retry_after, message)`` when it is over a limit."""
        if self.addresses is not None:
            recent = getattr(self.addresses, "recent_peek", None)
            wait = recent(address) if recent is not None else None
            if wait is None:
                wait = await _call(self.addresses, "peek", address)
            if wait:
                retry_after = max(1, math.ceil(wait))
                return "auth_failures", retry_after, (
                    f"Too many requests: this address failed to authenticate more than "
                    f"{self.failures_per_minute} times a minute; retry after {retry_after} s")
        if self.keys is None:
            return None
        try:
            key = basic_username(header)
        except Unauthorized:
            key = None
        if key:
            wait = await _call(self.keys, "take", _bucket_name(key))
            if wait:
                retry_after = max(1, math.ceil(wait))
                return "api_key", retry_after, (
                    f"Too many requests: this API key may make {self.per_minute} requests per minute; "
                    f"retry after {retry_after} s")
        return None

    async def answered(self, header: str | None, address: str, status: int) -> None:
        """Count a failed authentication (a 401 to a request that presented credentials)."""
        if status == 401 and header and self.addresses is not None:
            await _call(self.addresses, "take", address)

    def refused(self, reason: str) -> None:
        if self.on_refusal is not None:
            self.on_refusal(reason)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = _authorization(scope)
        address = (scope.get("client") or ("unknown",))[0]
        refusal = await self.refusal(header, address)
        if refusal is not None:
            await self._refuse(send, *refusal)
            return
        if self.addresses is None or not header:
            await self.app(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        await self.answered(header, address, status)

    async def _refuse(self, send: Send, reason: str, retry_after: int, message: str) -> None:
        self.refused(reason)
        body = orjson.dumps(error_body(429, message))
        await send({
            "type": "http.response.start", "status": 429,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(retry_after).encode())],
        })
        await send({"type": "http.response.body", "body": body})
