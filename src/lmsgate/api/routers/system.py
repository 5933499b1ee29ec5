"""Operational endpoints outside the LMS API: ``/health`` and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import hmac

import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.responses import Response

from lmsgate.api.deps import container
from lmsgate.errors import Unauthorized

router = APIRouter()


@router.get("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format. Open unless ``LMSGATE_METRICS_TOKEN`` is set, then it needs
    ``Authorization: Bearer <token>``. The metrics name no tenant (see ``lmsgate.api.metrics``)."""
    token = container(request).settings.metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "")
        expected = "Bearer " + token.get_secret_value()
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Unauthorized("Unauthorized: /metrics needs Authorization: Bearer <LMSGATE_METRICS_TOKEN>")
    m = request.app.state.metrics
    body = await anyio.to_thread.run_sync(m.render)  # some gauges read the database
    return Response(body, media_type=m.content_type)
