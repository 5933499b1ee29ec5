"""The completions export: every completion of an account (or of one learner), as CSV or
JSON Lines, page by page, from lmsgate's store or from a remote server.

The CSV columns are those ``lmsgate completions import`` reads, plus read-only ones it
ignores (``id``, ``created_at``, …), so an export can be imported elsewhere as it is. A JSON
Lines export holds each completion as the API returns it, without its deprecated fields,
plus ``user_id``; it imports as it is too.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, TextIO

from lmsgate.bulk.sources import Format
from lmsgate.client import AsyncClient
from lmsgate.connectors.base import CallContext, ListResult
from lmsgate.jsontext import dumps as json_dumps
from lmsgate.schema import Completion
from lmsgate.service.lms import LmsService
from lmsgate.settings import MAX_PAGE_SIZE
from lmsgate.store.pagination import PageRequest

__all__ = ["CSV_COLUMNS", "export_completions", "remote_pages", "store_pages"]

CSV_COLUMNS = (
    "id", "user_id", "learning_object_external_reference", "learning_object_id", "learning_object_type.value",
    "completed_at", "time_spent", "result.value", "result.source_value", "score.percentage", "score.raw_value",
    "created_at", "updated_at",
)
_DEPRECATED = frozenset(name for name, info in Completion.model_fields.items() if info.deprecated)

Page = list[dict[str, Any]]


async def store_pages(service: LmsService, ctx: CallContext, *, user_id: str | None,
                      updated_after: datetime | None) -> AsyncIterator[Page]:
    """Pages straight from the service layer, as the API would list them."""
    page = PageRequest(page_size=MAX_PAGE_SIZE, updated_after=updated_after)
    while True:
        if user_id is None:
            result: ListResult = await service.call(ctx, "list_completions", page)
        else:
            result = await service.call(ctx, "list_user_completions", user_id, page)
        yield result.wire()
        if result.next_last_id is None:
            return
        page = replace(page, after_id=result.next_last_id)


async def remote_pages(client: AsyncClient, *, user_id: str | None,
                       updated_after: datetime | None) -> AsyncIterator[Page]:
    """Pages from a server through the Python client, following ``next``."""
    cursor: str | None = None
    while True:
        fetch: Callable[..., Awaitable[Any]] = (
            client.lms.list_completions if user_id is None
            else lambda **kw: client.lms.list_user_completions(user_id, **kw)
        )
        page = await fetch(page_size=MAX_PAGE_SIZE, next=cursor, updated_after=updated_after)
        yield [c.model_dump(mode="json") for c in page.data]
        cursor = page.next
        if not cursor:
            return


def _flat(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in CSV_COLUMNS:
        outer, _, inner = column.partition(".")
        value = item.get(outer)
        if inner:
            value = value.get(inner) if isinstance(value, dict) else None
        if isinstance(value, (dict, list, bool)):  # result.source_value: as JSON, not as Python writes it
            value = json_dumps(value)
        out[column] = "" if value is None else value
    return out


async def export_completions(pages: AsyncIterator[Page], out: TextIO, fmt: Format,
                             progress: Callable[[int], None] | None = None) -> int:
    """Write every completion of ``pages`` to ``out``; returns how many."""
    count = 0
    writer = None
    if fmt is Format.CSV:
        writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
    async for items in pages:
        for item in items:
            completion = Completion.model_validate(item).model_dump(mode="json", exclude=_DEPRECATED)
            if writer is not None:
                writer.writerow(_flat(completion))
            else:
                out.write(json_dumps({k: v for k, v in completion.items() if v is not None}))
                out.write("\n")
            count += 1
        if progress is not None:
            progress(count)
    return count
