"""What a process runs for background delivery, chosen by its database.

* **SQLite (embedded mode):** :class:`~lmsgate.delivery.embedded.EmbeddedRunner` in the
  ``lmsgate serve`` process; it is the only drainer, so it always runs there.
* **PostgreSQL (scale-out):** procrastinate (:class:`~lmsgate.delivery.jobs.JobEngine`). Every
  API process defers wake jobs; ``lmsgate worker`` processes run them, and ``lmsgate serve``
  runs a worker of its own too unless ``LMSGATE_DELIVERY_IN_PROCESS_WORKER=false``.

Deliveries are sent through a container of their own, whose outbound policy makes one
provider call per attempt (no retries inside an attempt, ``delivery_attempt_seconds`` at
most): retrying is the delivery's business, with its backoff, pause and limits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime

from lmsgate.bootstrap import Container, bootstrap
from lmsgate.delivery.drain import Drainer
from lmsgate.delivery.embedded import EmbeddedRunner
from lmsgate.settings import Settings
from lmsgate.store.db import lock_file_beside
from lmsgate.store.deliveries import DeliveryStore
from lmsgate.store.idempotency import IdempotencyStore

log = logging.getLogger("lmsgate.delivery")


def delivery_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={
        "outbound_max_retries": 0,
        "outbound_request_lifetime_seconds": settings.delivery_attempt_seconds,
    })


def delivery_container(container: Container) -> Container:
    """A container whose connectors make one provider call per attempt (see module docstring).

    An in-memory SQLite database cannot be opened twice; there the API's own container is used.
    """
    url = container.engine.url
    if url.get_backend_name() == "sqlite" and (url.database or ":memory:") == ":memory:":
        return container
    return bootstrap(delivery_settings(container.settings), migrate=False)


def housekeeping(store: IdempotencyStore) -> None:
    purged = store.purge(datetime.now(UTC))
    if purged:
        log.info("deleted %d expired idempotency keys", purged)


class DeliveryRuntime:
    """Start and stop background delivery for one process; sets ``container.deliveries.waker``."""

    def __init__(self, container: Container, *, deliver: bool = True) -> None:
        self.container = container
        self.deliver = deliver
        self.is_postgres = container.engine.dialect.name == "postgresql"
        self.runner: EmbeddedRunner | None = None
        self.jobs = None
        self._worker: asyncio.Task[None] | None = None
        self._delivery: Container | None = None

    def _drainer(self) -> Drainer:
        self._delivery = delivery_container(self.container)
        d = self._delivery
        return Drainer(store=DeliveryStore(d.engine), tenancy=d.tenancy, registry=d.registry, settings=d.settings)

    async def start(self) -> None:
        c = self.container
        if c.deliveries.waker is not None:
            # Another app on this same container (tests build two) already delivers for it:
            # one drainer per database keeps an account's limits and order.
            self._owner = False
            return
        self._owner = True
        keys = IdempotencyStore(c.engine)
        if not self.is_postgres:
            if not self.deliver:
                log.warning("on SQLite the API process is the only delivery worker; delivering anyway")
            self.runner = EmbeddedRunner(self._drainer(), DeliveryStore(c.engine),
                                         max_accounts=c.settings.worker_concurrency,
                                         housekeeping=lambda: housekeeping(keys),
                                         lock_path=lock_file_beside(c.engine, "delivery"))
            await self.runner.start()
            c.deliveries.waker = self.runner.wake
            return
        from lmsgate.delivery.jobs import JobEngine

        self.jobs = JobEngine(c.settings.database_url, drainer=self._drainer() if self.deliver else None,
                              store=DeliveryStore(c.engine), housekeeping=lambda: housekeeping(keys),
                              stalled_after=c.settings.worker_stalled_after_seconds)
        await self.jobs.open()
        c.deliveries.waker = self.jobs.wake
        if self.deliver:
            self._worker = asyncio.get_running_loop().create_task(self.jobs.run_worker(
                concurrency=c.settings.worker_concurrency, heartbeat=c.settings.worker_heartbeat_seconds,
                name=worker_name("serve")))

    async def stop(self) -> None:
        if not getattr(self, "_owner", False):
            return
        self.container.deliveries.waker = None
        if self.runner is not None:
            await self.runner.stop()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        if self.jobs is not None:
            await self.jobs.close()
        if self._delivery is not None and self._delivery is not self.container:
            await self._delivery.outbound.aclose()
            self._delivery.engine.dispose()


def worker_name(kind: str) -> str:
    return f"lmsgate-{kind}@{socket.gethostname()}:{os.getpid()}"


async def run_worker(settings: Settings) -> None:
    """``lmsgate worker``: deliver until stopped by SIGINT or SIGTERM (PostgreSQL only)."""
    from lmsgate.delivery.jobs import JobEngine

    container = bootstrap(delivery_settings(settings))  # migrates: a worker may start first
    keys = IdempotencyStore(container.engine)
    drainer = Drainer(store=DeliveryStore(container.engine), tenancy=container.tenancy,
                      registry=container.registry, settings=container.settings)
    jobs = JobEngine(settings.database_url, drainer=drainer, store=DeliveryStore(container.engine),
                     housekeeping=lambda: housekeeping(keys), stalled_after=settings.worker_stalled_after_seconds,
                     pool_size=max(4, settings.worker_concurrency // 2))
    await jobs.open()
    try:
        await jobs.run_worker(concurrency=settings.worker_concurrency, heartbeat=settings.worker_heartbeat_seconds,
                              name=worker_name("worker"), install_signal_handlers=True)
    finally:
        await jobs.close()
        await container.outbound.aclose()
        container.engine.dispose()
