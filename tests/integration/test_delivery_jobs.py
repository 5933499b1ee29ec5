"""The job engine on PostgreSQL (``lmsgate.delivery.jobs``): what its sweep does for a worker
that died (``kill -9``) while draining an account."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import psycopg
import pytest

from conftest import _pg_database
from lmsgate.delivery.jobs import QUEUE, SWEEP, JobEngine, account_lock, libpq_url
from lmsgate.store.db import create_db_engine, upgrade
from lmsgate.store.deliveries import DeliveryStore


@pytest.fixture
def pg_url() -> str:
    for url in _pg_database():
        engine = create_db_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


def _jobs(url: str) -> list[tuple[int, str, str | None, str | None]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute("SELECT id, status, lock, queueing_lock FROM procrastinate.procrastinate_jobs "
                            "ORDER BY id").fetchall()


def test_sweep_frees_a_dead_workers_account_while_a_wake_waits(pg_url: str) -> None:
    """The dead worker's job cannot go back to the queue (a wake of the same account is
    waiting, and only one may wait): the sweep must still free the account's lock."""

    async def scenario() -> None:
        engine = create_db_engine(pg_url)
        jobs = JobEngine(pg_url, store=DeliveryStore(engine), stalled_after=1.0)
        await jobs.open()
        try:
            manager = jobs.app.job_manager
            await jobs.wake(["acc-1"], now=True)
            dead = await manager.register_worker()
            running = await manager.fetch_job(queues=[QUEUE], worker_id=dead)  # the worker drains...
            assert running is not None and running.lock == account_lock("acc-1")
            await jobs.wake(["acc-1"], now=True)  # ...a completion arrives: its wake waits for the lock
            with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:  # ...and the worker dies
                conn.execute("UPDATE procrastinate.procrastinate_workers SET last_heartbeat = now() - "
                             "interval '1 hour' WHERE id = %s", (dead,))
            await jobs.sweep()
            alive = await manager.register_worker()
            resumed = await manager.fetch_job(queues=[QUEUE], worker_id=alive)
            assert resumed is not None and resumed.lock == account_lock("acc-1"), _jobs(pg_url)
        finally:
            await jobs.close()
            engine.dispose()

    asyncio.run(scenario())
    statuses = {status for _, status, _, _ in _jobs(pg_url)}
    assert statuses <= {"doing", "failed", "todo"}


def test_the_sweep_runs_every_ten_seconds() -> None:
    """procrastinate's cron has the seconds last; the other way round the sweep ran only in
    every tenth minute, so a dead worker's accounts could stay blocked for minutes."""
    jobs = JobEngine("postgresql://nowhere/none", store=None)  # type: ignore[arg-type] - never connects
    [sweep] = [p for p in jobs.app.periodic_registry.periodic_tasks.values() if p.task.name == SWEEP]
    it = sweep.croniter
    it.set_current(datetime(2026, 1, 1, 12, 3, 1, tzinfo=UTC))
    times = [it.get_next(datetime) for _ in range(4)]
    assert [t.strftime("%H:%M:%S") for t in times] == ["12:03:10", "12:03:20", "12:03:30", "12:03:40"]


def test_wakes_and_close_from_another_event_loop(pg_url: str) -> None:
    """A test client's app (or any caller) may run on another loop than the engine's: its
    wakes and the engine's shutdown are handed over to the engine's loop, never awaited
    across loops ("Future attached to a different loop")."""
    engine_loop = asyncio.new_event_loop()
    thread = threading.Thread(target=engine_loop.run_forever, daemon=True)
    thread.start()
    db = create_db_engine(pg_url)
    try:
        jobs = JobEngine(pg_url, store=DeliveryStore(db))
        asyncio.run_coroutine_threadsafe(jobs.open(), engine_loop).result(10)

        async def elsewhere() -> None:
            await jobs.wake(["acc-2"])  # batched: sent by a task on the engine's loop
            await jobs.close()
            await jobs.wake(["acc-3"])  # closed: left to the sweep

        asyncio.run(elsewhere())
        assert [lock for _, _, lock, _ in _jobs(pg_url)] == [account_lock("acc-2")]
    finally:
        engine_loop.call_soon_threadsafe(engine_loop.stop)
        thread.join(5)
        engine_loop.close()
        db.dispose()
