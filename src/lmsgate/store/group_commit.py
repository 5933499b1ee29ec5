"""Group commit: many concurrent writes, one transaction, one fsync.

With ``synchronous=FULL`` (SQLite) or a default PostgreSQL, every commit waits for the disk.
Committing each request on its own caps throughput at the disk's flush rate. Here, requests
that arrive while a commit is in flight queue up and are written together in the next
transaction. Each caller is answered only after *its* transaction has committed, so an
acknowledged write is always durable, and at low load a lone request is written at once.

If a batch fails as a whole, its items are retried one by one so that one bad item cannot
fail its neighbours.

``max_in_flight`` transactions may be open at once. SQLite has one writer, so one is right
there. PostgreSQL takes concurrent writers, but more than one in flight splits the waiting
writes into smaller batches, each paying its own round trips and commit: the local store
measured better with one on both (see ``LocalConnector``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio.to_thread

log = logging.getLogger("lmsgate.store")

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitter(Generic[T, R]):
    """``write_batch`` writes a batch in a worker thread. ``write_elsewhere``, when given, is
    tried first, on the event loop: it writes the batch somewhere else (another process) and
    returns its results, or None to leave the batch to ``write_batch``."""

    def __init__(self, write_batch: Callable[[list[T]], list[R]], *, max_batch: int = 1000,
                 max_in_flight: int = 1,
                 write_elsewhere: Callable[[list[T]], Awaitable[list[R] | None]] | None = None) -> None:
        self._write_batch = write_batch
        self._write_elsewhere = write_elsewhere
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flushing = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests, a restarted server): start afresh
            self._loop, self._pending, self._flushing = loop, [], 0
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._flushing < self._max_in_flight:
            self._flushing += 1
            # in a context of its own: it writes for every request waiting, not the first one's
            loop.create_task(self._flush(), context=contextvars.Context())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                items = [item for item, _ in batch]
                results = await self._elsewhere(items)
                if results is None:
                    try:
                        results = await anyio.to_thread.run_sync(self._write_batch, items)
                    except Exception:
                        await self._one_by_one(batch)
                        continue
                for (_, future), result in zip(batch, results):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._flushing -= 1

    async def _elsewhere(self, items: list[T]) -> list[R] | None:
        """The batch written by ``write_elsewhere``, or None to write it here (not given, it
        declined, it failed, or it answered for another number of items)."""
        if self._write_elsewhere is None:
            return None
        try:
            results = await self._write_elsewhere(items)
        except Exception:  # written here instead: a request must never wait for nothing
            log.exception("writing a batch elsewhere failed; writing it here")
            return None
        return results if results is not None and len(results) == len(items) else None

    async def _one_by_one(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        for item, future in batch:
            try:
                [result] = await anyio.to_thread.run_sync(self._write_batch, [item])
            except Exception as exc:  # the caller's request fails with this error
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
