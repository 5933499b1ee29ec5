"""The hot path: completions without the framework around them.

Completions are most of lmsgate's traffic, so their write and their two lists have their own
lane: ``POST /unified/lms/users/{id}/completions``, ``GET /unified/lms/completions`` and
``GET /unified/lms/users/{id}/completions``. The app (:class:`lmsgate.api.app.LmsGateApp`)
hands every request to :meth:`CompletionFastLane.claims` first; a request it claims is served
here, ahead of FastAPI and its middleware stack, and every other request takes the normal
route. The lane does what that stack would have done for
this request, through the same parts:

* the request id, metrics, access log and request log of :class:`~lmsgate.api.observe.Observe`;
* the rate limits of :class:`~lmsgate.api.ratelimit.RateLimit`, with the same buckets;
* the same authentication and account resolution (``api.deps``), the same model
  (``LmsCreateCompletionRequestDto``, validated by pydantic-core straight from the JSON bytes),
  the same service call and the same response and error bodies.

It only claims what it is sure about. Anything else goes the normal way untouched: another
path or method, a ``Prefer`` on a list or one other than ``respond-async`` on a write
(``heartbeat`` needs the routed request), a query string on a write, an ``Idempotency-Key``,
a write body that is not plain ``application/json`` or has no ``Content-Length``, a list
request with a body, and anything over the size limits (the middleware refuses it in the
usual words). A list's query string is read by the same ``api.params`` functions as the
routes'. ``tests/integration`` runs the same completion tests through both lanes.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import QueryParams
from starlette.types import Receive, Scope, Send

from lmsgate.api.deps import basic_username, make_call
from lmsgate.schema.messages import describe_validation_errors
from lmsgate.api.limits import RequestHeadLimits
from lmsgate.api.observe import Observe, _current, note_caller
from lmsgate.api.paths import as_sent, restore
from lmsgate.api.prefer import RESPOND_ASYNC, preferences
from lmsgate.api.ratelimit import RateLimit
from lmsgate.api.responses import dumps, error_body, now_iso
from lmsgate.api.routing import list_page
from lmsgate.api.writes import accepted_body, accepted_headers
from lmsgate.bootstrap import Container
from lmsgate.connectors.base import CallContext
from lmsgate.errors import BadRequest, LmsGateError
from lmsgate.logs import request_id_var
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.schema.common import NUL_FREE, shallow_text, too_deep_message
from lmsgate.service.deliveries import Deferred

log = logging.getLogger("lmsgate.api.fastpath")

_PREFIX, _SUFFIX = "/unified/lms/users/", "/completions"
_PATH = re.compile(r"^/unified/lms/users/[^/]+/completions$")
_LIST = re.compile(r"^/unified/lms/(?:users/([^/]+)/)?completions$")
_LIST_REFUSED_HEADERS = {b"prefer", b"content-length", b"transfer-encoding"}
OPERATIONS = ("lms_create_user_completion", "lms_list_completions", "lms_list_user_completions")
"""The operations the lane serves, by OpenAPI operation id."""
_VALIDATE = LmsCreateCompletionRequestDto.model_validate_json
_PASS_HEADERS = {b"idempotency-key"}
_JSON = [(b"content-type", b"application/json")]


class CompletionFastLane:
    def __init__(self, container: Container, *, observe: Observe, rate_limit: RateLimit | None,
                 routes: dict[str, Any]) -> None:
        self.container = container
        self.observe = observe
        self.rate_limit = rate_limit
        self.routes = routes
        settings = container.settings
        self.max_body = settings.max_body_bytes
        self.head_limits = RequestHeadLimits(None, max_url_bytes=settings.max_url_bytes,  # type: ignore[arg-type]
                                             max_header_bytes=settings.max_header_bytes,
                                             max_header_count=settings.max_header_count)

    def claims(self, scope: Scope) -> bool:
        """Whether this lane serves the request (see the module docstring); reads only the head."""
        if scope["method"] == "GET":
            return (_LIST.match(scope["path"]) is not None and self.head_limits.refusal(scope) is None
                    and not any(name in _LIST_REFUSED_HEADERS for name, _ in scope["headers"]))
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
        listing = scope["method"] == "GET"
        user_list = listing and scope["path"] != "/unified/lms/completions"
        scope["route"] = self.routes[OPERATIONS[(2 if user_list else 1) if listing else 0]]
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
                try:
                    if listing:
                        status, body, extra = await self._list(scope["path"], scope["headers"], scope["query_string"])
                    else:
                        request_body = await _read_body(receive)
                        status, body, extra = await self._handle(scope["path"], scope["headers"], request_body)
                except LmsGateError as exc:
                    status, body = exc.status, error_body(exc.status, exc.message, exc.provider_errors)
                    extra = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
                except Exception:  # same contract as the app's catch-all handler
                    log.exception("unhandled error on the completion fast lane")
                    status, body, extra = 500, error_body(500, "Internal server error"), []
                if self.rate_limit is not None:
                    await self.rate_limit.answered(authorization, address, status)
            payload = body if isinstance(body, bytes) else dumps(body)
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

    async def _list(self, path: str, raw_headers: list[tuple[bytes, bytes]], query_string: bytes,
                    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        authorization, account_id, _ = _caller(raw_headers)
        user_id = _LIST.match(path).group(1)  # type: ignore[union-attr]  # claims() matched it
        user_id = None if user_id is None else restore(user_id)
        query = QueryParams(query_string)  # as starlette's Request reads it
        call = make_call(self.container, authorization, account_id, {"id": user_id} if user_id else {}, query)
        if user_id is None:
            response = await list_page(query, call, "list_completions")
        else:
            response = await list_page(query, call, "list_user_completions", user_id)
        return response.status_code, bytes(response.body), []

    async def _handle(self, path: str, raw_headers: list[tuple[bytes, bytes]], payload: bytes,
                      ) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
        c = self.container
        authorization, account_id, respond_async = _caller(raw_headers)
        project = c.resolver.project_for_key(basic_username(authorization))
        note_caller(project)
        account = c.resolver.account(project, account_id)
        note_caller(project, account)
        user_id = restore(path[len(_PREFIX):-len(_SUFFIX)])  # ``path`` is percent-decoded already
        if "\x00" in user_id:
            raise BadRequest("id: NUL characters are not allowed")
        try:
            # JSON can carry NUL only as \u0000, and nest only as deep as it has brackets:
            # without either, the model's walks looking for them are skipped
            checked = b"\\u0000" not in payload and shallow_text(payload)
            dto = _VALIDATE(payload, context=NUL_FREE if checked else None)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" and "recursion limit" in str(e.get("ctx", {}).get("error", ""))
                   for e in exc.errors()):  # too deep for the parser itself: the other lane's words
                raise BadRequest(too_deep_message(None)) from None
            errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            raise BadRequest(describe_validation_errors(errors)) from None
        # submit, not create_completion: the account's fallback_to_async applies here too
        result = await c.service.submit(CallContext(account=account, respond_async=respond_async),
                                        "create_user_completion", (user_id,), dto,
                                        path=as_sent(path))
        if isinstance(result, Deferred):
            return 202, accepted_body(result), [(k.lower().encode(), v.encode("latin-1"))
                                                 for k, v in accepted_headers(result).items()]
        return 201, {"statusCode": 201, "message": "Record created successfully.", "timestamp": now_iso(),
                     "data": {"id": result.id, "remote_id": result.remote_id}}, []


def _caller(raw_headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None, bool]:
    """The first ``Authorization`` and ``x-account-id``, and whether a ``Prefer`` came (on a
    write, claims() let only respond-async through)."""
    authorization = account_id = None
    prefer = False
    for name, value in raw_headers:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"x-account-id" and account_id is None:
            account_id = value.decode("latin-1")
        elif name == b"prefer":
            prefer = True
    return authorization, account_id, prefer


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
