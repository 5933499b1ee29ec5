"""Where imported completions go: lmsgate's own store, or a remote lmsgate over HTTP.

Both take a batch of ``(user_id, body)`` and answer, per item, True (stored now), False
(it was there already), None (sent; the target cannot tell which) or the reason the item was
refused. Failures that concern the whole import (the database or server unreachable, a bad
API key, a disabled account) are raised, so the import stops and can be resumed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import anyio
from sqlalchemy import Engine, event

from lmsgate.client import (
    APIStatusError,
    AsyncClient,
    BadRequestError,
    ConflictError,
    LmsClientError,
    UnprocessableEntityError,
)
from lmsgate.connectors.base import CallContext, WriteResult
from lmsgate.errors import LmsGateError
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.service.lms import LmsService

__all__ = ["Item", "Outcome", "RemoteSink", "Sink", "StoreSink", "first_error", "tune_for_bulk"]

ROW_STATUSES = frozenset({413, 414})
"""Statuses a remote server gives one row that is too big (its body, or its user id, which is in
the URL): that row is refused and reported, the import goes on."""
SQLITE_CACHE_KIB = 16_384
"""SQLite page cache of an import's connections (its default is 2 MiB)."""
SQLITE_CHECKPOINT_PAGES = 16_384
"""Pages in the WAL before SQLite copies them into the database file (its default is 1,000)."""

Item = tuple[str, LmsCreateCompletionRequestDto]
Outcome = bool | None | str


class Sink(Protocol):
    tells_repeats: bool
    """Whether outcomes say which items were stored before (True/False rather than None)."""
    reads_beside: bool
    """Whether the next batch should be read in a thread of its own while this sink writes.
    Worth it when writing mostly waits (on PostgreSQL, on HTTP). Not on SQLite: its driver
    lets the GIL go and takes it back for every row, and a reading thread that never lets go
    of the GIL for long makes each of those take-backs wait; measured, the import got slower."""

    rows_per_write: int
    """When rows are built by worker processes: how many to write at once (batches are
    joined up to this many). Fewer, bigger transactions cost the database less."""

    async def write(self, items: Sequence[Item]) -> list[Outcome]: ...

    def row_builder(self) -> Callable[[Sequence[Item]], Any] | None:
        """A picklable callable that turns items into rows for :meth:`write_built`, run by
        the import's worker processes; None when this sink takes items only."""
        ...

    async def write_built(self, rows: Sequence[Any]) -> list[Outcome]:
        """Write what :meth:`row_builder` made; an outcome per row, as :meth:`write` gives."""
        ...


class StoreSink:
    """Straight into lmsgate's store, through the same service layer as the API, one
    transaction per batch (for the embedded LMS; other providers get one call per item)."""

    tells_repeats = True

    def __init__(self, service: LmsService, ctx: CallContext, *, reads_beside: bool = True,
                 rows_per_write: int = 5000) -> None:
        self._service = service
        self._ctx = ctx
        self.reads_beside = reads_beside
        self.rows_per_write = rows_per_write

    async def write(self, items: Sequence[Item]) -> list[Outcome]:
        return self._outcomes(await self._service.create_completions(self._ctx, items))

    def row_builder(self) -> Callable[[Sequence[Item]], Any] | None:
        return self._service.completion_row_builder(self._ctx)

    async def write_built(self, rows: Sequence[Any]) -> list[Outcome]:
        return self._outcomes(await self._service.create_bound_completions(self._ctx, rows))

    @staticmethod
    def _outcomes(results: Sequence[WriteResult | LmsGateError]) -> list[Outcome]:
        return [r.message if isinstance(r, LmsGateError) else r.created for r in results]


def tune_for_bulk(engine: Engine) -> None:
    """Give the import's SQLite connections a 16 MiB page cache instead of 2 MiB.

    Each completion goes into five B-trees (the table, its primary key, the unique dedupe key
    and two indexes); the learners' index takes its inserts all over. With the default cache
    those pages are read back from the OS for almost every row: a bare ``executemany`` of
    200,000 prepared rows ran at 24,000 rows/s with 2 MiB and 52,000 with 64 MiB (when the
    dedupe key was a plain hash). Since the keys lead with the time, a bigger cache buys little:
    importing 1,000,000 rows, 64 MiB gave 35,123 rows/s against 33,663 for 32 MiB, and 16 MiB
    36,974 against 34,379 for 32 MiB in another pair of runs, all within the noise; each halving
    saved 15 to 30 MB, which keeps the import under its 300 MB.
    Durability is unchanged: ``synchronous=FULL`` in WAL mode, so a batch is on disk when its
    commit returns, before the import's checkpoint names it done.

    For the command-line import's own engine: the pool is emptied so that every connection
    opens with the setting. An in-memory database (one connection, kept) is left alone.
    """
    if engine.dialect.name != "sqlite" or (engine.url.database or ":memory:") == ":memory:":
        return

    @event.listens_for(engine, "connect")
    def _cache(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")

    engine.dispose()


class RemoteSink:
    """To a running lmsgate (or any StackOne-compatible server): one ``POST …/completions``
    per item, ``concurrency`` at a time, through the Python client (with its retries)."""

    tells_repeats = False
    reads_beside = True
    rows_per_write = 1

    def row_builder(self) -> None:
        return None  # a remote server takes completions one request at a time

    async def write_built(self, rows: Sequence[Any]) -> list[Outcome]:
        raise NotImplementedError("a remote sink has no row builder")

    def __init__(self, client: AsyncClient, concurrency: int = 8) -> None:
        self._client = client
        self._limiter = anyio.CapacityLimiter(concurrency)

    async def write(self, items: Sequence[Item]) -> list[Outcome]:
        out: list[Outcome] = [None] * len(items)

        async def one(i: int, user_id: str, body: LmsCreateCompletionRequestDto) -> None:
            async with self._limiter:
                try:
                    await self._client.lms.create_user_completion(user_id, body)
                except (BadRequestError, UnprocessableEntityError, ConflictError) as exc:
                    out[i] = exc.message  # this item's own fault: report it, go on
                except APIStatusError as exc:
                    if exc.status_code not in ROW_STATUSES:
                        raise
                    out[i] = f"{exc.status_code}: {exc.message}"  # too big a row (its user id is in the path)

        try:
            async with anyio.create_task_group() as tg:
                for i, (user_id, body) in enumerate(items):
                    tg.start_soon(one, i, user_id, body)
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        return out


def first_error(group: BaseExceptionGroup) -> BaseException:
    """The one exception of a task group's failure to raise on: an interruption first, then
    a client error, else the first exception."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = list(exc.exceptions)
        else:
            leaves.append(exc)
    for kind in (KeyboardInterrupt, LmsClientError):
        found = next((e for e in leaves if isinstance(e, kind)), None)
        if found is not None:
            return found
    return leaves[0]
