"""One place that turns every failure into StackOne's error body.

* :class:`~lmsgate.errors.LmsGateError` → its own status and message.
* Request validation (malformed JSON, wrong types, bad dates or durations) → 400, naming
  the field, e.g. ``body.time_spent: 'PT1X' is not an ISO 8601 duration``.
* Unknown routes → 404, wrong method → 405 rendered as 404's shape with status 405.
* Anything unexpected → 500 with a generic message; the detail goes to the log only.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from lmsgate.api.responses import JSONResponse, error_body
from lmsgate.errors import LmsGateError
from lmsgate.schema.common import too_deep_message
from lmsgate.schema.messages import describe_validation_errors

log = logging.getLogger("lmsgate.api")


def _why_unparsed(exc: Exception) -> str | None:
    """What was wrong with a body FastAPI could not parse, in the completion fast lane's words
    (FastAPI says only "There was an error parsing the body"; its cause is chained)."""
    cause = exc.__cause__
    if isinstance(cause, RecursionError):
        return too_deep_message(None)
    if isinstance(cause, UnicodeDecodeError):
        return f"body: malformed JSON (not UTF-8: {cause.reason} at byte {cause.start})"
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(LmsGateError)
    async def _ours(_request: Request, exc: LmsGateError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.status, exc.message, exc.provider_errors), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(400, describe_validation_errors(list(exc.errors()))), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Error"
        headers = exc.headers
        if exc.status_code == 404:
            message = "Not found: no such endpoint"
        elif exc.status_code == 400 and message == "There was an error parsing the body":
            message = _why_unparsed(exc) or message
        elif exc.status_code == 405:
            # Starlette names the methods of the first route on the path only; each method of
            # a path is a route of its own here, so gather them all (RFC 9110: Allow lists every one).
            allowed = [m for m in ("DELETE", "GET", "PATCH", "POST", "PUT")
                       if any(route.matches({**request.scope, "method": m})[0] == Match.FULL
                              for route in request.app.router.routes)]
            if allowed:
                headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body(500, "Internal server error"), status_code=500)
