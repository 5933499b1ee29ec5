"""The embedded delivery runner: deliveries on SQLite, inside the ``lmsgate serve`` process.

There is one process, so this runner is the only drainer: it runs at most one drain per account
at a time (and ``max_accounts`` drains at once), started when the API accepts a delivery
(:meth:`EmbeddedRunner.wake`) and again when the drain asks for it (the next retry is due, or
an account's pause ends), with a timer on the event loop. On start, and every
``sweep_seconds`` (2 s) after, it wakes every account with due work it was not told of (a
retry written to the database by another process, say); every ``housekeeping_seconds`` it
purges expired idempotency keys. Scale-out on PostgreSQL uses the job engine instead
(:mod:`lmsgate.delivery.jobs`).

Only one process may drain a database: a second drainer would put the first one's deliveries
in flight back to pending (it takes them for a crashed worker's) and send them again, and
each account's limits would count twice. So a runner given a ``lock_path`` (the SQLite file's
``…-delivery.lock``) drains only while it holds that file's lock. Another ``lmsgate serve`` on
the same file still accepts writes, and leaves their sending to the holder, whose sweep finds
them; it tries for the lock at every sweep, and takes over when the holder stops. The
operating system frees the lock when its process ends, even by ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import anyio.to_thread
from filelock import FileLock, Timeout

from lmsgate.delivery.drain import Drainer, utcnow
from lmsgate.store.deliveries import DeliveryStore

log = logging.getLogger("lmsgate.delivery")


class EmbeddedRunner:
    def __init__(self, drainer: Drainer, store: DeliveryStore, *, max_accounts: int = 16,
                 sweep_seconds: float = 2.0, housekeeping_seconds: float = 30.0,
                 housekeeping: Callable[[], object] | None = None, lock_path: Path | None = None) -> None:
        self.drainer = drainer
        self.store = store
        self.max_accounts = max_accounts
        self.sweep_seconds = sweep_seconds
        """How often the database is searched for due work this process was not told of (a
        retry written by ``lmsgate deliveries retry`` on the database, say): one read."""
        self.housekeeping_seconds = housekeeping_seconds
        self.housekeeping = housekeeping
        self._housekept = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._slots: asyncio.Semaphore | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._lock = FileLock(lock_path, thread_local=False) if lock_path is not None else None
        self._lock_path = lock_path

    @property
    def draining(self) -> bool:
        """Whether this runner sends deliveries: it holds the database's drain lock (or needs none)."""
        return self._lock is None or self._lock.is_locked

    def _take_lock(self) -> bool:
        """Take the drain lock if it is free; True when this runner holds it."""
        if self._lock is None or self._lock.is_locked:
            return True
        try:
            self._lock.acquire(blocking=False)
        except Timeout:
            return False
        return True

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.max_accounts)
        self._take_lock()  # now, so that the first writes' wakes are not dropped
        self._sweeper = self._loop.create_task(self._sweep_forever(), name="lmsgate delivery sweep")

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = [t for t in (self._sweeper, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()
        self._loop = None
        if self._lock is not None and self._lock.is_locked:
            self._lock.release()

    async def wake(self, account_ids: Iterable[str]) -> None:
        """Drain these accounts soon. May be called from any event loop or thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            same = asyncio.get_running_loop() is loop
        except RuntimeError:
            same = False
        for account_id in account_ids:
            if same:
                self._wake(account_id, 0.0)
            else:
                loop.call_soon_threadsafe(self._wake, account_id, 0.0)

    def _wake(self, account_id: str, delay: float) -> None:
        loop = self._loop
        if loop is None:
            return  # not started (or stopped): the sweep at the next start finds the work
        if not self.draining:
            return  # another process drains this database: its sweep finds the work
        if account_id in self._running:
            if delay <= 0:
                self._again.add(account_id)
            else:
                self._later(account_id, delay)
            return
        if delay > 0:
            self._later(account_id, delay)
            return
        timer = self._timers.pop(account_id, None)
        if timer is not None:
            timer.cancel()
        # In a context of its own: woken by a request, the drain would otherwise run in that
        # request's (its request id on every log line, its provider calls in that request's log).
        self._running[account_id] = loop.create_task(self._drain(account_id), name=f"drain {account_id}",
                                                     context=contextvars.Context())

    def _later(self, account_id: str, delay: float) -> None:
        assert self._loop is not None
        due = self._loop.time() + delay
        current = self._timers.get(account_id)
        if current is not None:
            if current.when() <= due:
                return
            current.cancel()
        self._timers[account_id] = self._loop.call_at(due, self._fire, account_id, context=contextvars.Context())

    def _fire(self, account_id: str) -> None:
        self._timers.pop(account_id, None)
        self._wake(account_id, 0.0)

    async def _drain(self, account_id: str) -> None:
        assert self._slots is not None
        again: float | None = None
        try:
            async with self._slots:
                again = await self.drainer.drain(account_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("draining the deliveries of account %s failed; trying again in 5 s", account_id)
            again = 5.0
        finally:
            self._running.pop(account_id, None)
        if account_id in self._again:
            self._again.discard(account_id)
            again = 0.0
        if again is not None:
            self._wake(account_id, again)

    async def _sweep_forever(self) -> None:
        waiting = False
        while True:
            if not self._take_lock():
                if not waiting:
                    waiting = True
                    log.warning("another lmsgate process is sending the deliveries of this database (it holds %s); "
                                "this one accepts writes and leaves their sending to it, and takes over "
                                "if it stops", self._lock_path)
                await asyncio.sleep(self.sweep_seconds)
                continue
            if waiting:
                waiting = False
                log.warning("this process now sends the deliveries of this database")
            try:
                accounts = await anyio.to_thread.run_sync(self.store.accounts_with_work, utcnow())
                for account_id in accounts:
                    if account_id not in self._running and account_id not in self._timers:
                        self._wake(account_id, 0.0)
                now = time.monotonic()
                if self.housekeeping is not None and now - self._housekept >= self.housekeeping_seconds:
                    self._housekept = now
                    await anyio.to_thread.run_sync(self.housekeeping)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the delivery sweep failed; trying again later")
            await asyncio.sleep(self.sweep_seconds)
