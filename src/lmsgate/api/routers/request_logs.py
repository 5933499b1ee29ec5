"""Request logs: ``GET /requests/logs`` and ``GET /requests/logs/{id}``, as StackOne has them.

A project's API key reads that project's logs only; another project's log id answers 404
exactly like a missing one. Filters follow StackOne's ``filter[...]`` names (sent either as
``filter[account_ids]=…`` or flattened, ``account_ids=…``, as the SDK does); lists are
comma-separated. Newest first unless ``order_direction=asc``.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request

from lmsgate.api import responses
from lmsgate.api.deps import container, project_id
from lmsgate.api.params import _bool, _deep, _updated_after, _whole
from lmsgate.api.routing import ERROR_RESPONSES, OPERATION_PARAMETERS
from lmsgate.errors import BadRequest, NotFound
from lmsgate.schema.request_logs import RequestLogResult, RequestLogsPaginated
from lmsgate.settings import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from lmsgate.store.request_logs import LogQuery

router = APIRouter(tags=["Request Logs"], responses=ERROR_RESPONSES)

_LIST_FILTERS = ("account_ids", "request_ids", "http_methods", "providers", "resources", "actions",
                 "status_codes", "success", "start_date", "end_date", "order_by", "order_direction")
_SCOPE = "request_logs"

_nullable_string = {"type": "string", "nullable": True}
OPERATION_PARAMETERS["lmsgate_list_request_logs"] = [
    {"name": "filter", "in": "query", "required": False, "style": "deepObject", "explode": True,
     "description": "Filters, as filter[name]=value (comma-separated lists).",
     "schema": {"type": "object", "nullable": True, "properties": {
         "account_ids": _nullable_string, "request_ids": _nullable_string, "http_methods": _nullable_string,
         "providers": _nullable_string, "resources": _nullable_string, "actions": _nullable_string,
         "status_codes": {**_nullable_string, "pattern": "^[1-5][0-9]{2}(,[1-5][0-9]{2})*$"},
         "success": {"type": "boolean", "nullable": True},
         "start_date": {**_nullable_string, "format": "date-time"},
         "end_date": {**_nullable_string, "format": "date-time"},
         "order_by": {"type": "string", "enum": ["eventDatetime", None], "nullable": True},
         "order_direction": {"type": "string", "enum": ["asc", "desc", None], "nullable": True}}}},
    {"name": "include", "in": "query", "required": False,
     "description": "`step_logs` adds the provider calls to each log.",
     "schema": {"type": "string", "enum": ["step_logs", None], "nullable": True}},
    {"name": "order_by", "in": "query", "required": False, "description": "Only `eventDatetime`.",
     "schema": {"type": "string", "enum": ["eventDatetime", None], "nullable": True}},
    {"name": "order_direction", "in": "query", "required": False, "description": "`desc` by default.",
     "schema": {"type": "string", "enum": ["asc", "desc", None], "nullable": True}},
    {"name": "page_size", "in": "query", "required": False,
     "description": f"Items per page: {DEFAULT_PAGE_SIZE} when absent, at most {MAX_PAGE_SIZE}.",
     "schema": {"type": "string", "nullable": True}},
    {"name": "next", "in": "query", "required": False, "description": "The cursor from the previous page.",
     "schema": {"type": "string", "nullable": True}},
]
OPERATION_PARAMETERS["lmsgate_get_request_log"] = [
    {"name": "include", "in": "query", "required": False, "description": "Accepted for StackOne's SDK; "
     "a single log always has its provider calls.",
     "schema": {"type": "string", "enum": ["step_logs", None], "nullable": True}},
]


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _query(request: Request, project: str) -> tuple[LogQuery, bool]:
    params = request.query_params
    deep = _deep(params, "filter")

    def get(name: str) -> str | None:
        return deep.get(name) or params.get(name) or None

    size_text = params.get("page_size")
    page_size = DEFAULT_PAGE_SIZE
    if size_text:
        if not _whole(size_text) or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
            raise BadRequest(f"page_size: must be a whole number from 1 to {MAX_PAGE_SIZE}, got {size_text!r}")
        page_size = int(size_text)
    order_by = get("order_by")
    if order_by not in (None, "eventDatetime"):
        raise BadRequest(f"order_by: only eventDatetime is supported, got {order_by!r}")
    direction = get("order_direction") or "desc"
    if direction not in ("asc", "desc"):
        raise BadRequest(f"order_direction: must be asc or desc, got {direction!r}")
    statuses = []
    for text in _list(get("status_codes")):
        if not (_whole(text) and len(text) == 3):
            raise BadRequest(f"filter[status_codes]: must be HTTP status codes like 200,404, got {text!r}")
        statuses.append(int(text))
    include = params.get("include")
    if include not in (None, "", "step_logs"):
        raise BadRequest(f"include: only step_logs is supported, got {include!r}")
    success_text = get("success")
    before = None
    cursor = params.get("next")
    if cursor:
        before = container(request).cursors.decode(cursor, project, f"{_SCOPE}:{direction}")
    query = LogQuery(
        page_size=page_size, before_id=before, ascending=direction == "asc",
        account_ids=_list(get("account_ids")), request_ids=_list(get("request_ids")),
        methods=[m.upper() for m in _list(get("http_methods"))], providers=_list(get("providers")),
        resources=_list(get("resources")), actions=_list(get("actions")), statuses=statuses,
        success=None if success_text is None else _bool("filter[success]", success_text),
        start=_updated_after(get("start_date"), "filter[start_date]"),
        end=_updated_after(get("end_date"), "filter[end_date]"),
    )
    return query, include == "step_logs"


def _wire(row: Any, *, full: bool, steps: bool) -> dict[str, Any]:
    detail = row.detail or {}
    step_logs = [{**s, "request_id": row.request_id, "account_id": row.linked_account_id,
                  "project_id": row.project_id} for s in detail.get("steps", [])]
    out: dict[str, Any] = {
        "request_id": row.request_id, "event_datetime": responses.format_datetime(row.started_at),
        "start_time": responses.format_datetime(row.started_at), "end_time": detail.get("end_time"),
        "duration": row.duration_ms, "project_id": row.project_id, "account_id": row.linked_account_id,
        "provider": row.provider, "service": detail.get("service"), "resource": row.resource,
        "sub_resource": detail.get("sub_resource"), "child_resource": None, "action": row.operation,
        "http_method": row.method, "path": row.path, "url": detail.get("request", {}).get("url"),
        "status": row.status, "success": row.status < 400, "is_worker": False, "source_type": "API",
        "source_ip": row.source_ip, "source_id": None, "source_value": None,
        "step_requests": step_logs if (steps or full) else None,
    }
    if full:
        request = detail.get("request") or {}
        url = request.get("url") or row.path
        path, _, query = url.partition("?")
        out["request"] = {
            "id": row.request_id, "method": row.method,
            "url": {"url": url, "hostname": None, "path": path,
                    "query_params": dict(pair.split("=", 1) if "=" in pair else (pair, "")
                                         for pair in query.split("&") if pair) or None},
            "headers": request.get("headers"), "body": request.get("body"),
        }
        out["response"] = detail.get("response")
    return out


@router.get(
    "/requests/logs", response_model=RequestLogsPaginated, operation_id="lmsgate_list_request_logs",
    summary="List request logs",
    description="The project's API calls, newest first: who called what, on which linked account, the "
    "status, the duration and (with include=step_logs) the provider calls made. Secrets are masked.",
)
async def list_logs(request: Request, project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    query, steps = _query(request, project)
    writer = request.app.state.request_log_writer
    if writer is not None:
        await anyio.to_thread.run_sync(writer.flush)
    rows, more = await anyio.to_thread.run_sync(c.request_logs.list, project, query)
    direction = "asc" if query.ascending else "desc"
    next_cursor = c.cursors.encode(project, f"{_SCOPE}:{direction}", rows[-1].id) if more and rows else None
    return responses.JSONResponse({"next": next_cursor, "data": [_wire(r, full=False, steps=steps) for r in rows]})


@router.get(
    "/requests/logs/{id}", response_model=RequestLogResult, operation_id="lmsgate_get_request_log",
    summary="Get a request log",
    description="One API call with its request and response (bodies cut at the configured size, secrets "
    "masked) and the provider calls made.",
)
async def get_log(request: Request, id: str = Path(description="The request id (x-request-id) of the call."),
                  project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    writer = request.app.state.request_log_writer
    if writer is not None:
        await anyio.to_thread.run_sync(writer.flush)
    row = await anyio.to_thread.run_sync(c.request_logs.get, project, id)
    if row is None:
        raise NotFound(f"id: request log {id} not found")
    return responses.JSONResponse({"data": _wire(row, full=True, steps=True)})
