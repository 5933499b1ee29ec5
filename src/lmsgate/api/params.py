"""Query parameters shared by list and get operations, parsed the way the official SDK sends them.

The SDK sends ``filter`` as ``filter[updated_after]=…`` for some operations and flattened as
``updated_after=…`` for others (SDK reference, section 3.4); both are accepted everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.datastructures import QueryParams

from lmsgate.errors import BadRequest
from lmsgate.schema.types import parse_datetime
from lmsgate.settings import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from lmsgate.store.pagination import PageRequest


@dataclass(slots=True)
class CommonParams:
    raw: bool = False
    fields: list[str] | None = None
    proxy: dict[str, Any] = field(default_factory=dict)


def _whole(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` accepts '²', which ``int`` then refuses (a 500 found by fuzzing)."""
    return text.isascii() and text.isdigit()


MAX_OFFSET = 2**62
"""The most rows a ``page`` may skip: SQLite and PostgreSQL count them in 64 bits (with room
for the page itself)."""


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _bool(name: str, value: str | None) -> bool:
    if value is None or value == "":
        return False
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(f"{name}: must be true or false, got {value!r}")


def _deep(params: QueryParams, name: str) -> dict[str, str]:
    prefix = f"{name}["
    out = {}
    for key, value in params.multi_items():
        if key.startswith(prefix) and key.endswith("]"):
            out[key[len(prefix):-1]] = value
    return out


def common_params(params: QueryParams) -> CommonParams:
    fields = params.get("fields")
    return CommonParams(
        raw=_bool("raw", params.get("raw")),
        fields=[f.strip() for f in fields.split(",") if f.strip()] if fields else None,
        proxy=_deep(params, "proxy"),
    )


def _updated_after(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def page_request(params: QueryParams, *, filter_names: tuple[str, ...] = (),
                 enums: dict[str, tuple[str, ...]] | None = None) -> tuple[PageRequest, str | None]:
    """Parse paging and filters. Returns the request and the raw ``next`` cursor (if any)."""
    size_text = params.get("page_size")
    page_size = DEFAULT_PAGE_SIZE
    if size_text:
        if not _whole(size_text) or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
            raise BadRequest(f"page_size: must be a whole number from 1 to {MAX_PAGE_SIZE}, got {size_text!r}")
        page_size = int(size_text)
    offset = None
    page_text = params.get("page")
    if page_text:
        last = MAX_OFFSET // page_size + 1  # the database counts rows skipped in 64 bits
        if not _whole(page_text) or not 1 <= int(page_text) <= last:
            raise BadRequest(f"page: must be a whole number from 1 to {last} (with page_size {page_size}), "
                             f"got {_cut(page_text)!r}")
        offset = (int(page_text) - 1) * page_size
    deep = _deep(params, "filter")
    updated = _updated_after(deep.get("updated_after"), "filter[updated_after]") or _updated_after(
        params.get("updated_after"), "updated_after"
    )
    filters: dict[str, Any] = {}
    for name in filter_names:
        value = deep.get(name) or params.get(name)
        if value:
            allowed = (enums or {}).get(name)
            if allowed and value not in allowed:
                raise BadRequest(f"filter[{name}]: must be one of {', '.join(allowed)}, got {value!r}")
            filters[name] = value
    if "active" in filters:
        filters["active"] = _bool("filter[active]", filters["active"])
    return (
        PageRequest(page_size=page_size, offset=offset, updated_after=updated, filters=filters),
        params.get("next") or None,
    )
