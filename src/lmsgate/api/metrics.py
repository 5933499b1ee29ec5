"""Prometheus metrics, served at ``GET /metrics`` in the text exposition format.

Each app has its own registry, and each API process its own counts: let Prometheus scrape
every process (they add up with ``sum``). Labels never name a project, an account, a learner
or an id, only the operation (the route's ``operationId``), the method, the status and the
provider, so the metrics leak nothing across tenants and stay small.

* ``lmsgate_http_requests_total{operation,method,status}``: request rate by ``rate()``;
* ``lmsgate_http_request_duration_seconds{operation}``: latency histogram per operation;
* ``lmsgate_provider_calls_total{provider,outcome}``: every call made to a provider, with its
  outcome: the HTTP status class (``2xx``…``5xx``) or the error that stopped it
  (``ConnectError``, ``ReadTimeout``…); ``lmsgate_provider_call_duration_seconds{provider}``;
* ``lmsgate_rate_limited_total{reason}``: 429s from ``api_key`` or ``auth_failures``;
* ``lmsgate_request_logs_pending``: request-log rows waiting to be written;
* ``lmsgate_delivery_queue_depth``: deliveries waiting to be delivered or being delivered
  (``Prefer: respond-async`` writes, all projects together; read from the database at each
  scrape, so every process reports the same number: use ``max``, not ``sum``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("lmsgate_http_requests", "API requests answered.",
                                ("operation", "method", "status"), registry=r)
        self.latency = Histogram("lmsgate_http_request_duration_seconds",
                                 "Time from receiving a request to the end of its answer.",
                                 ("operation",), buckets=_LATENCY_BUCKETS, registry=r)
        self.provider_calls = Counter("lmsgate_provider_calls", "Calls made to providers, by outcome.",
                                      ("provider", "outcome"), registry=r)
        self.provider_latency = Histogram("lmsgate_provider_call_duration_seconds",
                                          "Duration of one call to a provider (one attempt).",
                                          ("provider",), buckets=_LATENCY_BUCKETS, registry=r)
        self.rate_limited = Counter("lmsgate_rate_limited", "Requests refused with 429 by lmsgate's limits.",
                                    ("reason",), registry=r)
        self.request_logs_pending = Gauge("lmsgate_request_logs_pending",
                                          "Request-log rows waiting to be written.", registry=r)
        self.delivery_queue_depth = Gauge(
            "lmsgate_delivery_queue_depth",
            "Deliveries pending or being delivered, all projects (the same in every process).", registry=r)
        self.delivery_queue_depth.set(0)
        # The labelled series of each (operation, method, status): finding one by its labels
        # takes a lock and builds a key, which every request would otherwise pay twice.
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def track_delivery_queue(self, depth: Callable[[], int]) -> None:
        """Read the delivery queue's depth at each scrape (blocking: render in a thread)."""
        self.delivery_queue_depth.set_function(lambda: float(depth()))

    def track_pending(self, pending: Callable[[], int]) -> None:
        self.request_logs_pending.set_function(lambda: float(pending()))

    def observe_request(self, operation: str, method: str, status: int, seconds: float) -> None:
        key = (operation, method, status)
        series = self._request_series.get(key)
        if series is None:
            # bounded: operations and methods are the routes', statuses are the HTTP codes
            series = self._request_series[key] = (self.requests.labels(operation, method, str(status)),
                                                  self.latency.labels(operation))
        series[0].inc()
        series[1].observe(seconds)

    def observe_provider_call(self, provider: str, outcome: str, seconds: float) -> None:
        self.provider_calls.labels(provider, outcome).inc()
        self.provider_latency.labels(provider).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
