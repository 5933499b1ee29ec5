"""Answering writes: the synchronous answer, or 202 for a write kept as a delivery.

Routes hand every write to :meth:`LmsService.submit <lmsgate.service.lms.LmsService.submit>`
through :func:`write`. When the service kept the write as a delivery (``Prefer:
respond-async``, or the account's ``fallback_to_async`` while the provider is down) the answer
is ``202 Accepted`` with ``Location: /deliveries/{id}``, where the delivery can be followed,
and ``Preference-Applied: respond-async`` when the caller asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from lmsgate.api import responses
from lmsgate.api.deps import Call
from lmsgate.api.paths import as_sent
from lmsgate.service.deliveries import Deferred, delivery_view

ACCEPTED_DESCRIPTION = (
    "Accepted for background delivery (with `Prefer: respond-async`, or when the provider is down and "
    "the account has `fallback_to_async`); follow `Location` (`GET /deliveries/{id}`)."
)


def accepted_body(deferred: Deferred) -> dict[str, Any]:
    why = ("Accepted: the write will be delivered in the background" if deferred.requested else
           "Accepted: the provider is unavailable, so the write was kept and will be delivered when it answers")
    return {"statusCode": 202, "message": f"{why}; follow Location", "timestamp": responses.now_iso(),
            "data": delivery_view(deferred.delivery)}


def accepted_headers(deferred: Deferred) -> dict[str, str]:
    headers = {"Location": f"/deliveries/{deferred.delivery['id']}"}
    if deferred.requested:
        headers["Preference-Applied"] = "respond-async"
    return headers


def accepted(deferred: Deferred) -> responses.JSONResponse:
    return responses.JSONResponse(accepted_body(deferred), status_code=202, headers=accepted_headers(deferred))


async def write(request: Request, call: Call, operation: str, *args: str, body: BaseModel | None = None,
                render: Callable[[Any], Response]) -> Response:
    """Submit the write; render its result with ``render``, or answer 202 for a delivery."""
    result = await call.container.service.submit(call.ctx, operation, tuple(args), body,
                                                path=as_sent(request.url.path))
    if isinstance(result, Deferred):
        return accepted(result)
    return render(result)
