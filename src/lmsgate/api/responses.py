"""Rendering StackOne-shaped bodies: envelopes, sparse fieldsets and the ``raw`` log."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import Response

from lmsgate.connectors.base import CallContext, ListResult, Wire, WriteResult
from lmsgate.schema.types import format_datetime


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def dumps(content: Any) -> bytes:
    """A JSON body: orjson, or the standard library for what orjson refuses."""
    try:
        return orjson.dumps(content, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # integers beyond 64 bits, which JSON allows and orjson refuses
        return json.dumps(content, default=_default, separators=(",", ":")).encode()


_now_text: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """The current time to the millisecond, as the envelopes' ``timestamp``. Every answer has
    one, and many share a millisecond under load: its text is made once per millisecond."""
    global _now_text
    ms = time.time_ns() // 1_000_000
    last = _now_text
    if last[0] == ms:
        return last[1]
    seconds, fraction = divmod(ms, 1000)
    text = f"{datetime.fromtimestamp(seconds, timezone.utc).isoformat()[:19]}.{fraction:03d}Z"
    _now_text = (ms, text)
    return text


def select_fields(item: Wire, fields: list[str] | None) -> Wire:
    if not fields:
        return item
    return {k: v for k, v in item.items() if k in fields}


def _with_raw(body: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    if ctx.want_raw:
        body["raw"] = ctx.raw
    return body


def one(ctx: CallContext, item: Wire, fields: list[str] | None) -> JSONResponse:
    return JSONResponse(_with_raw({"data": select_fields(item, fields)}, ctx))


def page(ctx: CallContext, result: ListResult, next_cursor: str | None, fields: list[str] | None) -> Response:
    if result.rendered is not None and not fields and not ctx.want_raw:
        # Items the database serialised already: join them, without parsing them again.
        body = b"".join((b'{"next":', orjson.dumps(next_cursor), b',"data":[',
                         ",".join(result.rendered).encode(), b"]}"))
        return Response(body, media_type="application/json")
    data: dict[str, Any] = {"next": next_cursor, "data": [select_fields(i, fields) for i in result.wire()]}
    return JSONResponse(_with_raw(data, ctx))


def created(result: WriteResult, message: str = "Record created successfully.") -> JSONResponse:
    return JSONResponse(
        {"statusCode": 201, "message": message, "timestamp": now_iso(),
         "data": {"id": result.id, "remote_id": result.remote_id}},
        status_code=201,
    )


def upserted(result: WriteResult) -> JSONResponse:
    message = "Record created successfully." if result.created else "Record updated successfully."
    return JSONResponse(
        {"statusCode": 201, "message": message, "timestamp": now_iso(),
         "data": {"id": result.id, "remote_id": result.remote_id,
                  "external_reference": result.external_reference}},
        status_code=201,
    )


def status_only(status: int, message: str) -> JSONResponse:
    return JSONResponse({"statusCode": status, "message": message, "timestamp": now_iso()}, status_code=status)


def error_body(status: int, message: str, provider_errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"statusCode": status, "message": message, "timestamp": now_iso()}
    if status == 400:
        body["data"] = {"statusCode": status, "message": message}
    if provider_errors:
        body["provider_errors"] = provider_errors
    return body
