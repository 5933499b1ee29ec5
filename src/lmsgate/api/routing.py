"""Shared route plumbing: list/get helpers and the OpenAPI description of query parameters.

FastAPI cannot express StackOne's ``filter[...]``/``proxy[...]`` deepObject parameters, so
routes read them from the query string themselves (``lmsgate.api.params``) and declare them
here for the OpenAPI document instead.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import Request
from starlette.datastructures import QueryParams
from starlette.responses import Response

from lmsgate.api import responses
from lmsgate.api.deps import Call
from lmsgate.api.params import page_request
from lmsgate.schema import ERROR_MODELS

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": model.__name__,
             "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
    for status, model in ERROR_MODELS.items()
}
"""Every route's error answers, for the OpenAPI document. Given as references rather than
models: FastAPI would build a validator for every model of every route at import, for
answers it never validates (a quarter of the startup time); ``api.openapi`` adds the schemas."""

ACCOUNT_HEADER = {
    "name": "x-account-id", "in": "header", "required": True,
    "description": "Id of the linked account to act on.", "schema": {"type": "string"},
}
PREFER_HEADER = {
    "name": "Prefer", "in": "header", "required": False,
    "description": "RFC 7240 preferences, such as `heartbeat`.",
    "schema": {"type": "string"},
}
RAW = {"name": "raw", "in": "query", "required": False,
       "description": "Also return the provider calls made (the `raw` array).",
       "schema": {"type": "boolean", "nullable": True}}
PROXY = {"name": "proxy", "in": "query", "required": False, "style": "deepObject", "explode": True,
         "description": "Extra query parameters passed through to the provider, as proxy[name]=value.",
         "schema": {"type": "object", "additionalProperties": True, "nullable": True}}
FIELDS = {"name": "fields", "in": "query", "required": False,
          "description": "Comma-separated fields to return; all fields when empty.",
          "schema": {"type": "string", "nullable": True}}
PAGE = {"name": "page", "in": "query", "required": False, "deprecated": True,
        "description": "Deprecated page number; prefer `next`.", "schema": {"type": "string", "nullable": True}}
PAGE_SIZE = {"name": "page_size", "in": "query", "required": False,
             "description": "Items per page: 25 when absent, at most 1000.",
             "schema": {"type": "string", "nullable": True}}
NEXT = {"name": "next", "in": "query", "required": False,
        "description": "The opaque cursor from the previous page's `next`.",
        "schema": {"type": "string", "nullable": True}}
UPDATED_AFTER = {"name": "updated_after", "in": "query", "required": False, "deprecated": True,
                 "description": "Deprecated flat form of filter[updated_after].",
                 "schema": {"type": "string", "format": "date-time", "nullable": True}}
_UPDATED_AFTER_PROP = {"type": "string", "format": "date-time", "nullable": True,
                       "description": "Only records updated after this instant."}


def filter_param(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {"updated_after": _UPDATED_AFTER_PROP, **(extra or {})}
    return {"name": "filter", "in": "query", "required": False, "style": "deepObject", "explode": True,
            "description": "Filters, as filter[name]=value.",
            "schema": {"type": "object", "nullable": True, "properties": props}}


OPERATION_PARAMETERS: dict[str, list[dict[str, Any]]] = {}
"""operationId → the header and query parameters to document for it."""


def document(operation_id: str, kind: str, *, filters: dict[str, Any] | None = None,
             extra: list[dict[str, Any]] | None = None) -> str:
    """Record the parameters of an operation of ``kind`` "list", "get" or "write"."""
    params = [ACCOUNT_HEADER]
    if kind == "list":
        params += [RAW, PROXY, FIELDS, filter_param(filters), PAGE, PAGE_SIZE, NEXT, UPDATED_AFTER]
    elif kind == "get":
        params += [RAW, PROXY, FIELDS]
    params += extra or []
    params.append(PREFER_HEADER)
    OPERATION_PARAMETERS[operation_id] = params
    return operation_id


async def list_op(request: Request, call: Call, operation: str, *args: Any,
                  filter_names: tuple[str, ...] = (),
                  enums: dict[str, tuple[str, ...]] | None = None) -> Response:
    return await list_page(request.query_params, call, operation, *args, filter_names=filter_names, enums=enums)


async def list_page(query: QueryParams, call: Call, operation: str, *args: Any,
                    filter_names: tuple[str, ...] = (),
                    enums: dict[str, tuple[str, ...]] | None = None) -> Response:
    """One page of a list operation, from the query string's paging parameters and cursor."""
    page, cursor = page_request(query, filter_names=filter_names, enums=enums)
    scope = ":".join([operation, *map(str, args)])
    codec = call.container.cursors
    account = call.ctx.account.id
    if cursor:
        page = replace(page, after_id=codec.decode(cursor, account, scope), offset=None)
    result = await call.container.service.call(call.ctx, operation, *args, page)
    next_cursor = codec.encode(account, scope, result.next_last_id) if result.next_last_id else None
    return responses.page(call.ctx, result, next_cursor, call.fields)


async def get_op(call: Call, operation: str, *args: Any) -> responses.JSONResponse:
    item = await call.container.service.call(call.ctx, operation, *args)
    return responses.one(call.ctx, item, call.fields)
