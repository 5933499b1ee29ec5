"""Scale-out delivery on PostgreSQL: procrastinate jobs, run by ``lmsgate worker`` processes.

procrastinate (a job queue on PostgreSQL) distributes the work; lmsgate adds no poller of its
own. Two tasks:

``lmsgate.deliver_account(account_id)``
    Drains one account (:class:`~lmsgate.delivery.drain.Drainer`). Every job of an account
    carries the lock ``lmsgate-account:<id>``, and procrastinate never runs two jobs with one
    lock at once, on any worker: so an account is drained by one worker at a time, which is
    what makes its concurrency limit, rate limit and write order hold across workers. The API
    wakes an account when it accepts a delivery, with the queueing lock
    ``lmsgate-wake:<id>`` (at most one such job waits per account; a wake that finds one
    waiting is already served by it). When the drain wants to run again later (a retry is
    due, a pause ends) it defers a scheduled job. Wakes have priority 1 and scheduled jobs 0,
    so a job scheduled for later never holds up a wake waiting on the same lock. A job drains
    for up to :data:`JOB_BUDGET` seconds (as long as work keeps coming), then wakes the account
    again behind the other accounts' jobs. procrastinate announces new jobs but not freed locks
    or jobs coming due, so idle workers also poll every :data:`POLL_SECONDS`.

``lmsgate.sweep`` (periodic, every 10 s, one run cluster-wide)
    Gives back the jobs of workers that stopped sending heartbeats (``kill -9``, a lost
    machine) so another worker resumes their accounts (a job that cannot go back to the queue,
    because a wake of its account already waits there, is closed instead: that frees the
    account's lock for the waiting wake); wakes every account with due work (a
    wake lost because an API process died between storing a delivery and deferring its job);
    deletes expired idempotency keys.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Coroutine, Iterable
from datetime import timedelta
from typing import Any

import anyio.to_thread
from procrastinate import App, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued, UniqueViolation
from procrastinate.jobs import Status
from sqlalchemy.engine import make_url

from lmsgate.delivery.drain import Drainer, utcnow
from lmsgate.delivery.schema import JOB_SEARCH_PATH
from lmsgate.store.deliveries import DeliveryStore

log = logging.getLogger("lmsgate.delivery")

QUEUE = "lmsgate-deliveries"
DELIVER = "lmsgate.deliver_account"
SWEEP = "lmsgate.sweep"
WAKE_PRIORITY, LATER_PRIORITY = 1, 0
SWEEP_CRON = "* * * * * */10"
"""Every 10 s. procrastinate's cron (croniter) puts the seconds *last*: "*/10 * * * * *" would
be every second of every tenth minute, and a dead worker's accounts would wait up to 9 minutes."""
JOB_BUDGET = 5.0
"""Seconds one job drains an account before it makes way for other accounts."""
POLL_SECONDS = 0.5
"""How often an idle worker looks for jobs nobody announced: a wake that waited for the lock of
a job that has just finished (procrastinate announces new jobs, not freed locks), a retry that
has come due."""


def account_lock(account_id: str) -> str:
    return f"lmsgate-account:{account_id}"


def libpq_url(database_url: str) -> str:
    """The URL psycopg itself understands (no SQLAlchemy driver suffix)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class JobEngine:
    """procrastinate wired to lmsgate: defers wakes (API processes) and runs tasks (workers)."""

    def __init__(self, database_url: str, *, drainer: Drainer | None = None, store: DeliveryStore,
                 housekeeping: Any = None, stalled_after: float = 30.0, pool_size: int = 4) -> None:
        self.drainer = drainer
        self.store = store
        self.housekeeping = housekeeping
        self.stalled_after = stalled_after
        self.app = App(connector=PsycopgConnector(conninfo=libpq_url(database_url),
                                                  kwargs={"options": JOB_SEARCH_PATH},
                                                  min_size=1, max_size=pool_size))
        self._pending: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._register()

    # ------------------------------------------------------------ tasks

    def _register(self) -> None:
        app = self.app

        @app.task(name=DELIVER, queue=QUEUE)
        async def deliver_account(account_id: str) -> None:
            if self.drainer is None:
                raise RuntimeError("this process does not deliver (it has no drainer)")
            deadline = time.monotonic() + JOB_BUDGET
            while True:
                again = await self.drainer.drain(account_id, budget=max(0.0, deadline - time.monotonic()))
                if again is None:
                    return
                if again > 0:
                    await self._later(account_id, again)
                    return
                if time.monotonic() >= deadline:  # let other accounts have the worker, then go on
                    await self.wake([account_id], now=True)
                    return
                # More arrived as the drain finished. Go on while this job holds the account's
                # lock: a wake deferred meanwhile waits for the lock, and a worker only looks
                # for it again at its next fetch (a new job, or the poll).

        @app.periodic(cron=SWEEP_CRON)
        @app.task(name=SWEEP, queue=QUEUE, queueing_lock=SWEEP)
        async def sweep(timestamp: int) -> None:
            await self.sweep()

        self.deliver_task = deliver_account

    async def sweep(self) -> None:
        manager = self.app.job_manager
        for job in await manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=self.stalled_after):
            assert job.id is not None
            try:
                if job.task_name != DELIVER:  # a sweep: the next one does its work
                    await manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=False)
                    continue
                log.warning("job %s (%s) belonged to a worker that stopped; handing it to another", job.id,
                            job.task_kwargs)
                try:
                    await manager.retry_job(job)
                except UniqueViolation:
                    # Back in the queue it would be a second waiting job with its queueing lock
                    # (a wake of the account already waits; procrastinate reports that as a
                    # unique violation here, not as AlreadyEnqueued). Close it instead, which
                    # frees the account's lock, and let the waiting job drain the account.
                    await manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=False)
            except Exception:
                log.exception("could not hand job %s of a stopped worker on; the next sweep tries again", job.id)
        accounts = await anyio.to_thread.run_sync(self.store.accounts_with_work, utcnow())
        await self.wake(accounts, now=True)
        if self.housekeeping is not None:
            await anyio.to_thread.run_sync(self.housekeeping)

    async def _later(self, account_id: str, seconds: float) -> None:
        try:
            await self.deliver_task.configure(
                lock=account_lock(account_id), queueing_lock=f"lmsgate-later:{account_id}",
                priority=LATER_PRIORITY, schedule_at=utcnow() + timedelta(seconds=seconds),
            ).defer_async(account_id=account_id)
        except AlreadyEnqueued:
            pass  # one is scheduled already; the sweep covers a wake it would make late

    # ------------------------------------------------------------ waking accounts (API side)

    async def wake(self, account_ids: Iterable[str], *, now: bool = False) -> None:
        """Make sure a job will drain each account. Wakes arriving together are sent together.

        May be called from another event loop than the one the engine was opened in (its
        connection pool belongs to that one): the wake is then handed over to it. Once the
        engine is closing it does nothing: the sweep of a running worker wakes accounts with
        due work."""
        if self._closing:
            return
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            ids = list(account_ids)
            await self._on_engine_loop(self.wake(ids, now=now))
            return
        if now:
            for account_id in set(account_ids):
                await self._defer_wake(account_id)
            return
        self._pending.update(account_ids)
        if self._flusher is None or self._flusher.done():
            # not in the context of the request that woke it (its request id on these logs)
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), context=contextvars.Context())

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, set()
            for account_id in batch:
                try:
                    await self._defer_wake(account_id)
                except Exception:
                    log.exception("could not wake the deliveries of account %s; the sweep will", account_id)

    async def _defer_wake(self, account_id: str) -> None:
        try:
            await self.deliver_task.configure(
                lock=account_lock(account_id), queueing_lock=f"lmsgate-wake:{account_id}",
                priority=WAKE_PRIORITY,
            ).defer_async(account_id=account_id)
        except AlreadyEnqueued:
            pass  # a wake is already waiting; it will see this delivery too

    # ------------------------------------------------------------ lifecycle

    async def _on_engine_loop(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` on the engine's event loop, from another one, and wait for it."""
        assert self._loop is not None
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:  # that loop is closed: nothing of the engine is left to use
            coro.close()
            return
        await asyncio.wrap_future(future)

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = False
        await self.app.open_async()

    async def close(self) -> None:
        """Send the wakes still pending, then close the connection pool.

        Everything the engine holds (the pool, the flusher task) belongs to the loop it was
        opened in; closed from another loop (an app shut down by a test client's portal, say),
        the work is handed over to that loop, never awaited across loops."""
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            await self._on_engine_loop(self.close())
            return
        self._closing = True
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await self.app.close_async()

    async def run_worker(self, *, concurrency: int, heartbeat: float, name: str | None = None,
                         install_signal_handlers: bool = False) -> None:
        """Run procrastinate's worker until cancelled (or stopped by a signal)."""
        await self.app.run_worker_async(
            queues=[QUEUE], concurrency=concurrency, name=name, delete_jobs="successful",
            update_heartbeat_interval=heartbeat, stalled_worker_timeout=self.stalled_after,
            install_signal_handlers=install_signal_handlers, fetch_job_polling_interval=POLL_SECONDS,
        )
