"""The ASGI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.types import Receive, Scope, Send

from lmsgate import __version__
from lmsgate.api import errors, openapi
from lmsgate.api.fastpath import OPERATIONS as LANE_OPERATIONS, CompletionFastLane
from lmsgate.api.heartbeat import Heartbeat
from lmsgate.api.idempotency import Idempotency
from lmsgate.api.limits import BodySizeLimit, RequestHeadLimits
from lmsgate.api.metrics import Metrics
from lmsgate.api.observe import Observe, RequestLogWriter, install_provider_tap
from lmsgate.api.paths import protect_encoded_slashes, restore_slashes_in_parameters
from lmsgate.api.ratelimit import RateLimit, make_buckets
from lmsgate.api.request_log_process import LogSettings, RequestLogProcess, runs_apart
from lmsgate.api.routers import (
    accounts,
    assignments,
    completions,
    content,
    courses,
    deliveries,
    request_logs,
    system,
    taxonomy,
    users,
)
from lmsgate.bootstrap import Container, bootstrap


@asynccontextmanager
async def delivery_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Background delivery runs as long as the app serves (``lmsgate.delivery.runtime``), and so
    do the page readers and the commit process (``lmsgate.store.page_readers``,
    ``lmsgate.store.commit_process``)."""
    from lmsgate.delivery.runtime import DeliveryRuntime

    container: Container = app.state.container
    runtime = DeliveryRuntime(container, deliver=container.settings.delivery_in_process_worker)
    await runtime.start()
    helpers = [h for h in (container.page_readers, container.commit_process) if h is not None]
    for helper in helpers:
        helper.serve()  # list pages and posted completions of this event loop go to processes
    try:
        yield
    finally:
        for helper in helpers:  # first: a failure below must not leave them running
            helper.close()
        await runtime.stop()
        await container.outbound.aclose()  # the pooled provider connections of this event loop


class LmsGateApp(FastAPI):
    """FastAPI, with the completion fast lane (``lmsgate.api.fastpath``) ahead of it."""

    fast_lane: CompletionFastLane | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            protect_encoded_slashes(scope)  # an id may hold %2F (api/paths.py)
        lane = self.fast_lane
        if lane is not None and scope["type"] == "http" and lane.claims(scope):
            scope["app"] = self
            await lane.serve(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(container: Container | None = None, *, fast_path: bool = True) -> LmsGateApp:
    """Build the app. ``fast_path=False`` serves completions through FastAPI only (for tests
    that prove both lanes behave the same)."""
    container = container or bootstrap()
    app = LmsGateApp(
        title="lmsgate", version=__version__, docs_url="/docs", redoc_url=None,
        openapi_url="/openapi.json", lifespan=delivery_lifespan,
    )
    app.state.container = container
    for module in (completions, assignments, content, courses, users, taxonomy, accounts, request_logs, system,
                   deliveries):
        app.include_router(module.router)
    restore_slashes_in_parameters(app.routes)
    errors.install(app)
    openapi.install(app)

    # Starlette runs the middleware added last first: observation (request id, metrics, logs),
    # the heartbeat, the URL and header limits, the rate limits, the body size limit, then
    # Idempotency-Key (api/idempotency.py). Observation sits outside everything so that every
    # answer, refusals included, carries its x-request-id and is counted; the heartbeat sits
    # outside the refusals so even a refusal says Preference-Applied. The completion fast lane
    # (api/fastpath.py) runs ahead of all of them, doing their work itself with the same parts.
    settings = container.settings
    metrics = Metrics()
    app.state.metrics = metrics
    install_provider_tap(metrics)
    metrics.track_delivery_queue(container.deliveries.store.queue_depth)
    writer = None
    if settings.request_logs:
        process = RequestLogProcess(LogSettings.of(settings)) if runs_apart(settings) else None
        writer = RequestLogWriter(container.request_logs, retention_days=settings.request_log_retention_days,
                                  body_bytes=settings.request_log_body_bytes,
                                  read_body_bytes=settings.request_log_read_body_bytes, process=process)
        metrics.track_pending(lambda: writer.pending)
    app.state.request_log_writer = writer
    app.add_middleware(Idempotency, store=container.idempotency, resolver=container.resolver, settings=settings)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    rate_limit = None
    if settings.rate_limit_per_minute or settings.auth_failures_per_minute:
        per_key, per_address = settings.rate_limit_per_minute, settings.auth_failures_per_minute
        limits: dict[str, Any] = {
            "per_minute": per_key, "failures_per_minute": per_address,
            "keys": make_buckets(settings.rate_limit_store, container.engine, per_key, "key") if per_key else None,
            "addresses": make_buckets(settings.rate_limit_store, container.engine, per_address, "address")
            if per_address else None,
            "on_refusal": lambda reason: metrics.rate_limited.labels(reason).inc(),
        }
        app.add_middleware(RateLimit, **limits)
        rate_limit = RateLimit(None, **limits)  # type: ignore[arg-type]  # the lane's, on the same buckets
    app.add_middleware(RequestHeadLimits, max_url_bytes=settings.max_url_bytes,
                       max_header_bytes=settings.max_header_bytes, max_header_count=settings.max_header_count)
    app.add_middleware(Heartbeat, after=settings.heartbeat_after_seconds,
                       interval=settings.heartbeat_interval_seconds)
    app.add_middleware(Observe, routes=app.routes, metrics=metrics, writer=writer)
    if fast_path:
        routes = {c.route.operation_id: c.route for c in iter_route_contexts(app.routes)
                  if getattr(c.route, "operation_id", None) in LANE_OPERATIONS}
        app.fast_lane = CompletionFastLane(
            container, observe=Observe(None, routes=app.routes, metrics=metrics, writer=writer),  # type: ignore[arg-type]
            rate_limit=rate_limit, routes=routes)
    return app
