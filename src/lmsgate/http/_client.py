"""The one way lmsgate talks to providers.

:class:`OutboundHttp` is built once per process (``bootstrap``) and holds what outlives a
request: the settings, the TLS context, the per-account rate-limit buckets and the OAuth token
cache, and the connection pools: one ``httpx.AsyncClient`` per account, provider origin and
event loop, so that calls reuse keep-alive connections (:meth:`OutboundHttp.aclose` closes
them at shutdown). A connector asks it for a :class:`ProviderSession` per unified request; the
session owns that request's deadline and retry budget and runs every call through the same
steps:

1. wait for the account's rate-limit token;
2. add auth (Basic, a header, or an OAuth bearer token, fetched or refreshed as needed);
3. resolve the host and refuse private addresses (the SSRF guard), then connect to the
   checked address;
4. send with connect/read timeouts bounded by what is left of the lifetime;
5. record the call in the ``raw`` log and the log, secrets masked;
6. retry, or turn the answer into lmsgate's errors (see :func:`ProviderSession.request`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import anyio
import httpx
import orjson

from lmsgate.errors import BadRequest, Conflict, LmsGateError, NotFound, ProviderFailure
from lmsgate.http._auth import (
    BasicCredentials,
    Credentials,
    HeaderCredentials,
    NoCredentials,
    OAuth2Credentials,
    TokenCache,
)
from lmsgate.http._ratelimit import AccountBuckets
from lmsgate.http._redact import Redactor, mask_in_context
from lmsgate.http._retry import IDEMPOTENT_METHODS, RetryPolicy, parse_retry_after
from lmsgate.http._ssrf import AddressGuard, BlockedAddress

__all__ = ["HttpSettings", "OutboundHttp", "ProviderResponse", "ProviderSession", "RateSpec"]

log = logging.getLogger("lmsgate.http")

MAX_BODY_BYTES = 16 * 1024 * 1024
RAW_TEXT_LIMIT = 2000
POOL_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=256, keepalive_expiry=30.0)
"""Per account and provider origin. The real bounds on calls in flight are the accounts'
delivery limits and the API's own concurrency; this only caps what a runaway could open."""
IDLE_CLIENT_SECONDS = 60.0
_REACH_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Nothing reached the provider: always safe to retry."""
_BROKEN_ERRORS = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadTimeout,
                  httpx.WriteTimeout)
"""The request may have reached the provider: retried only when idempotent."""


@dataclass(frozen=True, slots=True)
class HttpSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    guard: AddressGuard = field(default_factory=AddressGuard)
    user_agent: str = "lmsgate"


@dataclass(frozen=True, slots=True)
class RateSpec:
    per_second: float
    burst: float


@dataclass(slots=True)
class ProviderResponse:
    status: int
    url: str
    headers: httpx.Headers
    content: bytes
    _session: ProviderSession = field(repr=False)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; 502 with the (masked) body in ``provider_errors`` when it is not."""
        try:
            return orjson.loads(self.content)
        except orjson.JSONDecodeError:
            kind = self.headers.get("content-type", "no content type")
            raise ProviderFailure(
                f"The {self._session.provider} provider answered {self.status} with a body that is not "
                f"JSON ({kind}); lmsgate cannot read it",
                status=502, provider_errors=[self._session.error_entry(self)],
            ) from None


@dataclass(slots=True)
class _Pooled:
    client: httpx.AsyncClient
    in_flight: int = 0
    used: float = 0.0


class OutboundHttp:
    def __init__(self, settings: HttpSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.buckets = AccountBuckets(clock)
        self.tokens = TokenCache(clock)
        self._ssl: ssl.SSLContext | None = None
        self._clients: dict[tuple[asyncio.AbstractEventLoop, str, str, str], _Pooled] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    def session(self, *, account_id: str, provider: str, base_url: str | None,
                credentials: Credentials | None = None, rate: RateSpec | None = None,
                default_headers: Mapping[str, str] | None = None) -> ProviderSession:
        return ProviderSession(self, account_id=account_id, provider=provider, base_url=base_url,
                               credentials=credentials or NoCredentials(), rate=rate,
                               default_headers=dict(default_headers or {}))

    @asynccontextmanager
    async def client(self, account_id: str, scheme: str, netloc: str) -> AsyncIterator[httpx.AsyncClient]:
        """The pooled client for one account's calls to one provider origin, on the running loop.

        Per account and origin, not one for all: calls go to the address the SSRF guard checked,
        and httpx pools connections by that address, so two host names on one address would
        otherwise share a TLS connection verified for one of them only; and httpx checks every
        connection of a pool on every request, so many small pools cost less than one big one.
        Per event loop: a connection belongs to the loop that opened it. A client nobody used
        for :data:`IDLE_CLIENT_SECONDS` is closed when a new one is made.
        """
        loop = asyncio.get_running_loop()
        key = (loop, account_id, scheme, netloc)
        pooled = self._clients.get(key)
        if pooled is None:
            self._prune(loop)
            pooled = self._clients[key] = _Pooled(httpx.AsyncClient(
                verify=self.ssl_context, follow_redirects=False, trust_env=False, limits=POOL_LIMITS),
                used=self.clock())
        pooled.in_flight += 1
        try:
            yield pooled.client
        finally:
            pooled.in_flight -= 1
            pooled.used = self.clock()

    def _prune(self, loop: asyncio.AbstractEventLoop) -> None:
        now = self.clock()
        for key, pooled in list(self._clients.items()):
            if key[0].is_closed():
                del self._clients[key]  # its loop is gone, and its sockets with it
            elif key[0] is loop and not pooled.in_flight and now - pooled.used > IDLE_CLIENT_SECONDS:
                del self._clients[key]
                task = loop.create_task(pooled.client.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close the pooled connections opened on the running event loop (at shutdown)."""
        loop = asyncio.get_running_loop()
        for key in [k for k in self._clients if k[0] is loop]:
            await self._clients.pop(key).client.aclose()
        await asyncio.gather(*(t for t in self._closing if t.get_loop() is loop), return_exceptions=True)

    async def check_url(self, url: str) -> None:
        """Raise :class:`BlockedAddress` when the guard refuses ``url``'s host."""
        parts = urlsplit(url)
        await self.settings.guard.resolve(parts.hostname or "", parts.port or _default_port(parts.scheme))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


class _Attempt:
    """The outcome of one send: a response, or the exception that stopped it."""

    __slots__ = ("error", "response")

    def __init__(self, response: ProviderResponse | None = None, error: Exception | None = None) -> None:
        self.response, self.error = response, error


def _masked_text(redactor: Redactor, resp: ProviderResponse) -> str:
    """A provider's text body as shown: masked, then cut to ``RAW_TEXT_LIMIT`` (cut first, a
    secret across the cut would no longer match). Only its start is masked: a body may be
    16 MiB, and masking it all (by name, a pair at a time) held the event loop for seconds."""
    return redactor.unparsed(resp.content[: 4 * RAW_TEXT_LIMIT].decode("utf-8", "replace"))[:RAW_TEXT_LIMIT]


class ProviderSession:
    """The provider calls of one unified request: one deadline, one retry budget."""

    def __init__(self, outbound: OutboundHttp, *, account_id: str, provider: str, base_url: str | None,
                 credentials: Credentials, rate: RateSpec | None, default_headers: dict[str, str]) -> None:
        self.outbound = outbound
        self.account_id = account_id
        self.provider = provider
        self.base_url = base_url
        self.credentials = credentials
        self.rate = rate
        self.default_headers = default_headers
        self.redactor = Redactor(credentials.secrets())
        if isinstance(credentials, BasicCredentials):
            self.redactor.add_basic_pair(credentials.username, credentials.password)
        self.retries_used = 0
        self.attempts = 0
        self._deadline: float | None = None
        self._started: float | None = None

    # ------------------------------------------------------------ budget

    def begin(self) -> None:
        """Start a fresh budget (lifetime and retries) for the next unified operation.

        A session normally serves one API request; a connector that runs several operations on
        one session (a bulk import calls ``create_user_completion`` per item) gives each its own.
        """
        self.retries_used = 0
        self.attempts = 0
        self._deadline = None
        self._started = None

    @property
    def policy(self) -> RetryPolicy:
        return self.outbound.settings.retry

    def _now(self) -> float:
        return self.outbound.clock()

    def _remaining(self) -> float:
        if self._deadline is None:
            self._started = self._now()
            self._deadline = self._started + self.policy.lifetime
        return self._deadline - self._now()

    def _elapsed(self) -> float:
        return 0.0 if self._started is None else self._now() - self._started

    def _timed_out(self, why: str, last: ProviderResponse | None = None,
                   error: Exception | None = None) -> LmsGateError:
        errors = [self.error_entry(last)] if last is not None else None
        detail = f"; last answer: {last.status}" if last is not None else (
            f"; last error: {type(error).__name__}" if error is not None else "")
        headers = {}
        if last is not None and last.headers.get("retry-after"):
            headers["Retry-After"] = last.headers["retry-after"]
        exc = ProviderFailure(
            f"The {self.provider} provider did not answer usefully within lmsgate's limits ({why}: "
            f"{self.attempts} attempts, {self.retries_used} retries, {self._elapsed():.1f} s of "
            f"{self.policy.lifetime:g} s{detail})",
            status=408, provider_errors=errors,
        )
        exc.headers.update(headers)
        return exc

    async def _wait_before_retry(self, wait: float, last: ProviderResponse | None,
                                 error: Exception | None) -> None:
        if self.retries_used >= self.policy.max_retries:
            raise self._timed_out(f"retry limit of {self.policy.max_retries} reached", last, error)
        if wait >= self._remaining():
            raise self._timed_out(f"the next retry would be due in {wait:.1f} s, past the request lifetime",
                                  last, error)
        self.retries_used += 1
        what = f"answered {last.status}" if last is not None else f"failed ({type(error).__name__})"
        log.warning("%s provider %s for account %s; retry %d in %.2f s", self.provider, what,
                    self.account_id, self.retries_used, wait)
        await anyio.sleep(wait)

    async def _take_rate_token(self) -> None:
        if self.rate is None:
            return
        wait, bucket = self.outbound.buckets.reserve(self.account_id, self.rate.per_second, self.rate.burst)
        if wait <= 0:
            return
        if wait >= self._remaining():
            self.outbound.buckets.give_back(bucket)
            raise self._timed_out(f"the account's client-side rate limit ({self.rate.per_second:g}/s) "
                                  f"needs {wait:.1f} s more")
        log.info("%s rate limit for account %s: waiting %.2f s", self.provider, self.account_id, wait)
        await anyio.sleep(wait)

    # ------------------------------------------------------------ URLs and masking

    def absolute(self, url: str) -> str:
        """Resolve ``url`` against the base URL. Absolute URLs must stay on the base's origin."""
        if self.base_url is None:
            return url
        base = self.base_url if self.base_url.endswith("/") else self.base_url + "/"
        full = urljoin(base, url)
        b, f = urlsplit(base), urlsplit(full)
        if (b.scheme, b.netloc) != (f.scheme, f.netloc):
            raise ProviderFailure(
                f"The {self.provider} provider pointed lmsgate at another host ({self.redactor.url(full)}); "
                "lmsgate only calls the linked account's own URL", status=502)
        return full

    def error_entry(self, resp: ProviderResponse) -> dict[str, Any]:
        """One ``provider_errors`` item: status, url, raw body and headers, secrets masked."""
        try:
            parsed = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            raw: dict[str, Any] = self.redactor.data(parsed)
        elif parsed is not None:
            raw = {"body": self.redactor.data(parsed)}
        else:
            # masked (by value, and by name: "password=…" in a text error), then cut
            raw = {"body": _masked_text(self.redactor, resp)} if resp.content else {}
        return {"status": resp.status, "url": self.redactor.url(resp.url), "raw": raw,
                "headers": self.redactor.headers(resp.headers.multi_items())}

    def _raw_response(self, resp: ProviderResponse) -> Any:
        try:
            return self.redactor.data(orjson.loads(resp.content)) if resp.content else None
        except orjson.JSONDecodeError:
            return _masked_text(self.redactor, resp)

    # ------------------------------------------------------------ auth

    async def _auth_headers(self, ctx: Any) -> dict[str, str]:
        creds = self.credentials
        if isinstance(creds, BasicCredentials):
            return {"Authorization": creds.header()}
        if isinstance(creds, HeaderCredentials):
            return {creds.name: creds.value}
        if isinstance(creds, OAuth2Credentials):
            return {"Authorization": "Bearer " + await self._token(ctx, creds)}
        return {}

    async def _token(self, ctx: Any, creds: OAuth2Credentials) -> str:
        key = creds.cache_key(self.account_id)
        cached = self.outbound.tokens.get(key)
        if cached:
            self.redactor.add(cached)
            return cached
        form = {"grant_type": "client_credentials"}
        if creds.scope:
            form["scope"] = creds.scope
        resp = await self._call(ctx, "POST", creds.token_url, form=form, idempotent=True,
                                headers={"Authorization": creds.basic_header(), "Accept": "application/json"},
                                authenticate=False, same_origin=False)
        body = resp.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        kind = str(body.get("token_type", "bearer")).lower() if isinstance(body, dict) else ""
        if not isinstance(token, str) or not token or kind != "bearer":
            raise ProviderFailure(
                f"The {self.provider} token endpoint answered without a bearer access_token",
                status=502, provider_errors=[self.error_entry(resp)])
        expires_in = body.get("expires_in")
        self.redactor.add(token)
        lifetime = None
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
            lifetime = float(expires_in)
        elif isinstance(expires_in, str) and expires_in.strip().isascii() and expires_in.strip().isdigit():
            lifetime = float(expires_in)  # some token endpoints send it as a string
        self.outbound.tokens.put(key, token, lifetime)
        return token

    # ------------------------------------------------------------ sending

    async def request(self, ctx: Any, method: str, url: str, *, params: Mapping[str, str] | None = None,
                      json: Any = None, headers: Mapping[str, str] | None = None,
                      idempotent: bool | None = None) -> ProviderResponse:
        """Call the provider and return its 2xx answer.

        Raises, all with masked ``provider_errors``:

        * 408 when the retry limit or the request lifetime runs out (429, 503, failed
          connections; also 5xx and broken connections for idempotent requests);
        * 400 when the provider judged the request invalid (400, 413, 422);
        * 404 and 409 as the provider answered them;
        * 502 for anything else: refused credentials, a redirect, another 4xx or 5xx, a body
          over 16 MiB, an unreachable or SSRF-refused host.
        """
        return await self._call(ctx, method, url, params=params, json=json, headers=headers,
                                idempotent=idempotent, authenticate=True, same_origin=True)

    async def _call(self, ctx: Any, method: str, url: str, *, params: Mapping[str, str] | None = None,
                    json: Any = None, form: Mapping[str, str] | None = None,
                    headers: Mapping[str, str] | None = None, idempotent: bool | None,
                    authenticate: bool, same_origin: bool) -> ProviderResponse:
        mask_in_context(self.redactor)  # this task's log lines, from here on (httpx's own included)
        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        full = self.absolute(url) if same_origin else url
        if params:
            full = str(httpx.URL(full).copy_merge_params(dict(params)))
        refreshed = False
        while True:
            self._remaining()
            await self._take_rate_token()
            all_headers = {"User-Agent": self.outbound.settings.user_agent, **self.default_headers,
                           **(headers or {})}
            if authenticate:
                all_headers.update(await self._auth_headers(ctx))
            attempt = await self._send(ctx, method, full, json=json, form=form, headers=all_headers)
            resp = attempt.response
            if resp is None:
                error = attempt.error
                assert error is not None
                if isinstance(error, LmsGateError):
                    raise error
                if isinstance(error, _REACH_ERRORS) or (idempotent and isinstance(error, _BROKEN_ERRORS)):
                    await self._wait_before_retry(self.policy.backoff(self.retries_used), None, error)
                    continue
                raise ProviderFailure(
                    f"The {self.provider} provider could not be reached ({type(error).__name__}: "
                    f"{self.redactor.text(str(error))[:200]})", status=502) from None
            if (resp.status == 401 and authenticate and isinstance(self.credentials, OAuth2Credentials)
                    and not refreshed):
                refreshed = True
                self.outbound.tokens.invalidate(self.credentials.cache_key(self.account_id))
                log.info("%s provider refused the bearer token for account %s; fetching a new one",
                         self.provider, self.account_id)
                continue
            if 200 <= resp.status < 300:
                return resp
            if self.policy.retryable_status(resp.status, idempotent):
                after = parse_retry_after(resp.headers.get("retry-after"))
                wait = after if after is not None else self.policy.backoff(self.retries_used)
                await self._wait_before_retry(wait, resp, None)
                continue
            raise self._error_for(resp)

    async def _send(self, ctx: Any, method: str, url: str, *, json: Any, form: Mapping[str, str] | None,
                    headers: dict[str, str]) -> _Attempt:
        settings = self.outbound.settings
        parts = urlsplit(url)
        host = parts.hostname or ""
        remaining = self._remaining()
        if remaining <= 0:
            return _Attempt(error=self._timed_out("the request lifetime ran out"))
        try:
            with anyio.fail_after(remaining):
                ip = await settings.guard.resolve(host, parts.port or _default_port(parts.scheme))
        except BlockedAddress as exc:
            return _Attempt(error=ProviderFailure(
                f"The {self.provider} provider URL is refused: {self.redactor.text(str(exc))}", status=502))
        except TimeoutError:
            return _Attempt(error=self._timed_out("resolving the provider's host used up the lifetime"))
        netloc_ip = f"[{ip}]" if ":" in ip else ip
        if parts.port:
            netloc_ip += f":{parts.port}"
        pinned = urlunsplit((parts.scheme, netloc_ip, parts.path, parts.query, parts.fragment))
        headers = {**headers, "Host": parts.netloc.rsplit("@", 1)[-1]}
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        timeout = httpx.Timeout(connect=min(settings.connect_timeout, remaining),
                                read=min(settings.read_timeout, remaining),
                                write=min(settings.read_timeout, remaining), pool=min(5.0, remaining))
        shown = self.redactor.url(url)
        self.attempts += 1
        started = self._now()
        request_body = json if json is not None else (dict(form) if form else None)
        try:
            with anyio.fail_after(remaining):
                async with self.outbound.client(self.account_id, parts.scheme, headers["Host"]) as client:
                    request = client.build_request(method, pinned, json=json, data=form, headers=headers,
                                                   extensions=extensions, timeout=timeout)
                    response = await client.send(request, stream=True)
                    try:
                        content = await _read_limited(response)
                    finally:
                        await response.aclose()
        except TimeoutError:
            ctx.log_raw(method, shown, body=lambda: self.redactor.data(request_body),
                        response={"error": "the request lifetime ran out"})
            return _Attempt(error=self._timed_out("the request lifetime ran out during a call"))
        except _BodyTooLarge:
            return _Attempt(error=ProviderFailure(
                f"The {self.provider} provider's answer is larger than {MAX_BODY_BYTES} bytes", status=502))
        except httpx.HTTPError as exc:
            ms = (self._now() - started) * 1000
            log.info("%s %s → %s after %.0f ms (attempt %d)", method, shown, type(exc).__name__, ms,
                     self.attempts)
            ctx.log_raw(method, shown, body=lambda: self.redactor.data(request_body),
                        response={"error": type(exc).__name__})
            return _Attempt(error=exc)
        resp = ProviderResponse(status=response.status_code, url=url, headers=response.headers,
                                content=content, _session=self)
        ms = (self._now() - started) * 1000
        log.info("%s %s → %d in %.0f ms (attempt %d)", method, shown, resp.status, ms, self.attempts)
        ctx.log_raw(method, shown, body=lambda: self.redactor.data(request_body),
                    response=lambda: self._raw_response(resp))
        return _Attempt(response=resp)

    def _error_for(self, resp: ProviderResponse) -> LmsGateError:
        errors = [self.error_entry(resp)]
        status, name = resp.status, self.provider
        if status in (400, 413, 422):
            return BadRequest(f"The {name} provider refused the request as invalid ({status}); "
                              "see provider_errors", provider_errors=errors)
        if status == 404:
            return NotFound(f"The {name} provider has no such record (404)", provider_errors=errors)
        if status == 409:
            return Conflict(f"The {name} provider reports a conflict (409); see provider_errors",
                            provider_errors=errors)
        if status in (401, 403):
            return ProviderFailure(
                f"The {name} provider refused the linked account's credentials ({status}); update them "
                "with PATCH /accounts/{id}", status=502, provider_errors=errors)
        if 300 <= status < 400:
            return ProviderFailure(f"The {name} provider answered with a redirect ({status}), which lmsgate "
                                   "does not follow; check the account's URL",
                                   status=502, provider_errors=errors)
        return ProviderFailure(f"The {name} provider answered {status}; see provider_errors",
                               status=502, provider_errors=errors)


class _BodyTooLarge(Exception):
    pass


async def _read_limited(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
