"""The hot path: ``POST /unified/lms/users/{id}/completions`` without the framework around it.

Completions are most of lmsgate's traffic, so this one route is served by a small ASGI
handler in front of FastAPI. It does exactly what the FastAPI route does, through the same
parts: the same authentication and account resolution (``api.deps``), the same model
(``LmsCreateCompletionRequestDto``, validated by pydantic-core straight from the JSON bytes),
the same service call and the same response and error bodies. What it skips is the routing,
dependency injection and response machinery of the framework.

A request it is not sure about is passed to FastAPI untouched: any other path or method, a
query string (``raw=true`` needs the raw log), a ``Prefer`` header other than
``respond-async`` (``heartbeat`` needs the routed request), an ``Idempotency-Key`` header,
or a body that is not plain ``application/json``. ``tests/integration`` runs the same
completion tests through both paths.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from lmsgate.api.deps import basic_username
from lmsgate.api.errors import describe_validation_errors
from lmsgate.api.limits import BodyTooLarge
from lmsgate.api.observe import note_caller
from lmsgate.api.prefer import RESPOND_ASYNC, preferences
from lmsgate.api.responses import error_body, now_iso
from lmsgate.api.writes import accepted_body, accepted_headers
from lmsgate.bootstrap import Container
from lmsgate.connectors.base import CallContext
from lmsgate.errors import BadRequest, LmsGateError
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.service.deliveries import Deferred

log = logging.getLogger("lmsgate.api.fastpath")

_PATH = re.compile(r"^/unified/lms/users/([^/]+)/completions$")
_VALIDATE = LmsCreateCompletionRequestDto.model_validate_json
_PASS_HEADERS = {b"idempotency-key"}
_JSON = [(b"content-type", b"application/json")]


class CompletionFastPath:
    def __init__(self, app: ASGIApp, container: Container) -> None:
        self.app = app
        self.container = container

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        match = _PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        prefer: list[str] = []
        for name, value in scope["headers"]:
            if name in _PASS_HEADERS:
                await self.app(scope, receive, send)
                return
            if name == b"prefer":
                prefer.append(value.decode("latin-1"))
            headers[name] = value
        respond_async = False
        if prefer:  # only respond-async is served here; heartbeat needs the routed request
            if preferences(prefer) != {RESPOND_ASYNC}:
                await self.app(scope, receive, send)
                return
            respond_async = True
        content_type = headers.get(b"content-type", b"")
        if content_type.split(b";")[0].strip().lower() != b"application/json":
            await self.app(scope, receive, send)
            return
        try:
            status, body, extra_headers = await self._handle(match.group(1), headers, receive, respond_async)
        except LmsGateError as exc:
            status, body = exc.status, error_body(exc.status, exc.message, exc.provider_errors)
            extra = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
            await _respond(send, status, body, extra)
            return
        except BodyTooLarge:
            raise  # BodySizeLimit, around us, answers it
        except Exception:  # same contract as the app's catch-all handler
            log.exception("unhandled error on the completion fast path")
            status, body, extra_headers = 500, error_body(500, "Internal server error"), []
        await _respond(send, status, body, extra_headers)

    async def _handle(self, raw_user_id: str, headers: dict[bytes, bytes],
                      receive: Receive, respond_async: bool = False
                      ) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
        c = self.container
        project = c.resolver.project_for_key(basic_username(_header(headers, b"authorization")))
        note_caller(project)
        account = c.resolver.account(project, _header(headers, b"x-account-id"))
        note_caller(project, account)
        user_id = raw_user_id  # ASGI's ``path`` is already percent-decoded
        if "\x00" in user_id:
            raise BadRequest("id: NUL characters are not allowed")
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            dto = _VALIDATE(b"".join(chunks))
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


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


async def _respond(send: Send, status: int, body: dict[str, Any],
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON, (b"content-length", str(len(payload)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": payload})
