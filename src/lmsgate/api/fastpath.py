"""The hot path: ``POST /unified/lms/users/{id}/completions`` without the framework around it.

Completions are most of lmsgate's traffic, so this one operation has its own lane. The app
(:class:`lmsgate.api.app.LmsGateApp`) hands every request to :meth:`CompletionFastLane.claims`
first; a request it claims is served here, ahead of FastAPI and its middleware stack, and
every other request takes the normal route. The lane does what that stack would have done for
this request, through the same parts:

* the request id, metrics, access log and request log of :class:`~lmsgate.api.observe.Observe`;
* the rate limits of :class:`~lmsgate.api.ratelimit.RateLimit`, with the same buckets;
* the same authentication and account resolution (``api.deps``), the same model
  (``LmsCreateCompletionRequestDto``, validated by pydantic-core straight from the JSON bytes),
  the same service call and the same response and error bodies.

It only claims what it is sure about. Anything else goes the normal way untouched: another
path or method, a query string (``raw=true`` needs the raw log), a ``Prefer`` other than
``respond-async`` (``heartbeat`` needs the routed request), an ``Idempotency-Key``, a body
that is not plain ``application/json`` or has no ``Content-Length``, and anything over the
size limits (the middleware refuses it in the usual words). ``tests/integration`` runs the
same completion tests through both lanes.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from lmsgate.api.deps import basic_username
from lmsgate.api.errors import describe_validation_errors
from lmsgate.api.limits import RequestHeadLimits
from lmsgate.api.observe import Observe, _current, note_caller
from lmsgate.api.prefer import RESPOND_ASYNC, preferences
from lmsgate.api.ratelimit import RateLimit
from lmsgate.api.responses import dumps, error_body, now_iso
from lmsgate.api.writes import accepted_body, accepted_headers
from lmsgate.bootstrap import Container
from lmsgate.connectors.base import CallContext
from lmsgate.errors import BadRequest, LmsGateError
from lmsgate.logs import request_id_var
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.service.deliveries import Deferred

log = logging.getLogger("lmsgate.api.fastpath")

_PREFIX, _SUFFIX = "/unified/lms/users/", "/completions"
_PATH = re.compile(r"^/unified/lms/users/[^/]+/completions$")
_VALIDATE = LmsCreateCompletionRequestDto.model_validate_json
_PASS_HEADERS = {b"idempotency-key"}
_JSON = [(b"content-type", b"application/json")]


class CompletionFastLane:
    def __init__(self, container: Container, *, observe: Observe, rate_limit: RateLimit | None,
                 route: Any) -> None:
        self.container = container
        self.observe = observe
        self.rate_limit = rate_limit
        self.route = route
        settings = container.settings
        self.max_body = settings.max_body_bytes
        self.head_limits = RequestHeadLimits(None, max_url_bytes=settings.max_url_bytes,  # type: ignore[arg-type]
                                             max_header_bytes=settings.max_header_bytes,
                                             max_header_count=settings.max_header_count)

    def claims(self, scope: Scope) -> bool:
        """Whether this lane serves the request (see the module docstring); reads only the head."""
        if scope["method"] != "POST" or scope.get("query_string") or _PATH.match(scope["path"]) is None:
            return False
        if self.head_limits.refusal(scope) is not None:
            return False  # the middleware refuses it, in its own words
        length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                if value.split(b";")[0].strip().lower() != b"application/json":
                    return False
            elif name == b"content-length":
                length = value
            elif name == b"prefer":
                if preferences([value.decode("latin-1")]) != {RESPOND_ASYNC}:
                    return False
            elif name in _PASS_HEADERS:
                return False
        if length is None or not length.isdigit():
            return False
        return int(length) <= self.max_body

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        observe = self.observe
        record, authorization = observe.start(scope)
        token, rid_token = _current.set(record), request_id_var.set(record.request_id)
        scope["route"] = self.route
        address = record.client or "unknown"
        request_body = b""
        extra: list[tuple[bytes, bytes]] = []
        try:
            refusal = None
            if self.rate_limit is not None:
                refusal = await self.rate_limit.refusal(authorization, address)
            if refusal is not None:
                reason, retry_after, message = refusal
                self.rate_limit.refused(reason)  # type: ignore[union-attr]
                status, body = 429, error_body(429, message)
                extra = [(b"retry-after", str(retry_after).encode())]
            else:
                request_body = await _read_body(receive)
                try:
                    status, body, extra = await self._handle(record.path, scope["headers"], request_body)
                except LmsGateError as exc:
                    status, body = exc.status, error_body(exc.status, exc.message, exc.provider_errors)
                    extra = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
                except Exception:  # same contract as the app's catch-all handler
                    log.exception("unhandled error on the completion fast lane")
                    status, body, extra = 500, error_body(500, "Internal server error"), []
                if self.rate_limit is not None:
                    await self.rate_limit.answered(authorization, address, status)
            payload = dumps(body)
            await send({"type": "http.response.start", "status": status,
                        "headers": [*_JSON, (b"content-length", str(len(payload)).encode()), *extra,
                                    (b"x-request-id", record.request_id.encode())]})
            await send({"type": "http.response.body", "body": payload})
            limit = observe.body_bytes
            observe.finish(scope, record, status, time.perf_counter() - record.started, authorization,
                           request_body, payload,
                           {"request": len(request_body) > limit, "response": len(payload) > limit})
        finally:
            _current.reset(token)
            request_id_var.reset(rid_token)

    async def _handle(self, path: str, raw_headers: list[tuple[bytes, bytes]], payload: bytes,
                      ) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
        c = self.container
        authorization = account_id = None
        respond_async = False
        for name, value in raw_headers:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"x-account-id" and account_id is None:
                account_id = value.decode("latin-1")
            elif name == b"prefer":
                respond_async = True  # claims() let only respond-async through
        project = c.resolver.project_for_key(basic_username(authorization))
        note_caller(project)
        account = c.resolver.account(project, account_id)
        note_caller(project, account)
        user_id = path[len(_PREFIX):-len(_SUFFIX)]  # ASGI's ``path`` is already percent-decoded
        if "\x00" in user_id:
            raise BadRequest("id: NUL characters are not allowed")
        try:
            dto = _VALIDATE(payload)
        except ValidationError as exc:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            raise BadRequest(describe_validation_errors(errors)) from None
        # submit, not create_completion: the account's fallback_to_async applies here too
        result = await c.service.submit(CallContext(account=account, respond_async=respond_async),
                                        "create_user_completion", (user_id,), dto,
                                        path=f"/unified/lms/users/{user_id}/completions")
        if isinstance(result, Deferred):
            return 202, accepted_body(result), [(k.lower().encode(), v.encode("latin-1"))
                                                 for k, v in accepted_headers(result).items()]
        return 201, {"statusCode": 201, "message": "Record created successfully.", "timestamp": now_iso(),
                     "data": {"id": result.id, "remote_id": result.remote_id}}, []


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while message.get("more_body", False):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)
