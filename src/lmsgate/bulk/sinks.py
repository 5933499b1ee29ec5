"""Where imported completions go: lmsgate's own store, or a remote lmsgate over HTTP.

Both take a batch of ``(user_id, body)`` and answer, per item, True (stored now), False
(it was there already), None (sent; the target cannot tell which) or the reason the item was
refused. Failures that concern the whole import (the database or server unreachable, a bad
API key, a disabled account) are raised, so the import stops and can be resumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import anyio

from lmsgate.client import (
    AsyncClient,
    BadRequestError,
    ConflictError,
    LmsClientError,
    UnprocessableEntityError,
)
from lmsgate.connectors.base import CallContext
from lmsgate.errors import LmsGateError
from lmsgate.schema import LmsCreateCompletionRequestDto
from lmsgate.service.lms import LmsService

__all__ = ["Item", "Outcome", "RemoteSink", "Sink", "StoreSink", "first_error"]

Item = tuple[str, LmsCreateCompletionRequestDto]
Outcome = bool | None | str


class Sink(Protocol):
    tells_repeats: bool
    """Whether outcomes say which items were stored before (True/False rather than None)."""

    async def write(self, items: Sequence[Item]) -> list[Outcome]: ...


class StoreSink:
    """Straight into lmsgate's store, through the same service layer as the API, one
    transaction per batch (for the embedded LMS; other providers get one call per item)."""

    tells_repeats = True

    def __init__(self, service: LmsService, ctx: CallContext) -> None:
        self._service = service
        self._ctx = ctx

    async def write(self, items: Sequence[Item]) -> list[Outcome]:
        results = await self._service.create_completions(self._ctx, items)
        return [r.message if isinstance(r, LmsGateError) else r.created for r in results]


class RemoteSink:
    """To a running lmsgate (or any StackOne-compatible server): one ``POST …/completions``
    per item, ``concurrency`` at a time, through the Python client (with its retries)."""

    tells_repeats = False

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
