"""Deliveries (lmsgate's own API): follow, list and retry writes delivered in the background,
and the per-account delivery settings (``/accounts/{id}/delivery``).

Every route authenticates the API key and sees only the key's project: another project's
delivery or account answers 404 exactly like a missing one. No ``x-account-id`` header needed;
``account_id`` filters lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request

from lmsgate.api import responses
from lmsgate.api.deps import container, project_id
from lmsgate.api.routing import ERROR_RESPONSES
from lmsgate.errors import BadRequest
from lmsgate.schema.deliveries import (
    DeliveriesPaginated,
    DeliveryResult,
    DeliverySettingsPatch,
    DeliverySettingsResult,
    RetryDeliveries,
    RetryDeliveriesResult,
)
from lmsgate.schema.types import parse_datetime
from lmsgate.settings import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from lmsgate.store.deliveries import STATUSES, DeliveryFilter

router = APIRouter(tags=["Deliveries"], responses=ERROR_RESPONSES)
DeliveryId = Path(description="The delivery's id (from the Location of the 202 answer).")
_EXT = {"x-lmsgate-extension": True}
_QUERY = {"x-lmsgate-extension": True, "parameters": [
    {"name": "status", "in": "query", "required": False, "schema": {"type": "string", "enum": list(STATUSES)},
     "description": "Only deliveries in this status (dead: the dead-letter list)."},
    {"name": "account_id", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Only this linked account's deliveries."},
    {"name": "created_after", "in": "query", "required": False, "schema": {"type": "string", "format": "date-time"},
     "description": "Only deliveries accepted after this instant."},
    {"name": "created_before", "in": "query", "required": False,
     "schema": {"type": "string", "format": "date-time"}, "description": "Only deliveries accepted before this instant."},
    {"name": "updated_after", "in": "query", "required": False, "schema": {"type": "string", "format": "date-time"},
     "description": "Only deliveries changed after this instant."},
    {"name": "page_size", "in": "query", "required": False, "schema": {"type": "string"},
     "description": f"Items per page: {DEFAULT_PAGE_SIZE} when absent, at most {MAX_PAGE_SIZE}."},
    {"name": "next", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "The opaque cursor from the previous page's `next`."},
]}
_KNOWN_QUERY = {p["name"] for p in _QUERY["parameters"]}


def _when(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


@router.get(
    "/deliveries", response_model=DeliveriesPaginated, operation_id="lmsgate_list_deliveries",
    summary="List deliveries (lmsgate)",
    description="Writes accepted for background delivery, oldest first, paged with `next`. "
    "`status=dead` is the dead-letter list.", openapi_extra=_QUERY,
)
async def list_deliveries(request: Request, project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    q = request.query_params
    for name in q:
        if name not in _KNOWN_QUERY:
            raise BadRequest(f"{name}: not a parameter of GET /deliveries; known: {', '.join(sorted(_KNOWN_QUERY))}")
    status = q.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadRequest(f"status: must be one of {', '.join(STATUSES)}, got {status!r}")
    size_text = q.get("page_size")
    if size_text is None or size_text == "":
        page_size = DEFAULT_PAGE_SIZE
    elif size_text.isascii() and size_text.isdigit() and 1 <= int(size_text) <= MAX_PAGE_SIZE:
        page_size = int(size_text)
    else:
        raise BadRequest(f"page_size: must be a whole number from 1 to {MAX_PAGE_SIZE}, got {size_text!r}")
    where = DeliveryFilter(status=status, account_id=q.get("account_id") or None,
                           created_after=_when("created_after", q.get("created_after")),
                           created_before=_when("created_before", q.get("created_before")),
                           updated_after=_when("updated_after", q.get("updated_after")))
    after = None
    if q.get("next"):
        last = c.cursors.decode(q["next"], project, "deliveries")
        if not (last.isascii() and last.isdigit()):
            raise BadRequest("next: not a valid cursor for this list; start again without next")
        after = int(last)
    items, last_seq = await anyio.to_thread.run_sync(lambda: c.deliveries.list(project, where, after, page_size))
    cursor = c.cursors.encode(project, "deliveries", str(last_seq)) if last_seq is not None else None
    return responses.JSONResponse({"next": cursor, "data": items})


@router.post(
    "/deliveries/retry", response_model=RetryDeliveriesResult, operation_id="lmsgate_retry_deliveries",
    summary="Send many deliveries again (lmsgate)",
    description="Queues every matching delivery again at once with a fresh attempt budget: the dead ones "
    "by default (the whole dead-letter list, or an account's, or a time window's).", openapi_extra=_EXT,
)
async def retry_deliveries(body: RetryDeliveries, request: Request,
                           project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    where = DeliveryFilter(status=body.status, account_id=body.account_id, created_after=body.created_after,
                           created_before=body.created_before)
    count = await c.deliveries.retry_many(project, where)
    return responses.JSONResponse({"statusCode": 200, "message": f"{count} deliveries queued again",
                                   "timestamp": responses.now_iso(), "data": {"retried": count}})


@router.get(
    "/deliveries/{id}", response_model=DeliveryResult, operation_id="lmsgate_get_delivery",
    summary="Get a delivery and its attempts (lmsgate)", openapi_extra=_EXT,
)
async def get_delivery(request: Request, id: str = DeliveryId,
                       project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    item = await anyio.to_thread.run_sync(c.deliveries.get, project, id)
    return responses.JSONResponse({"data": item})


@router.post(
    "/deliveries/{id}/retry", response_model=DeliveryResult, operation_id="lmsgate_retry_delivery",
    summary="Send a delivery again (lmsgate)",
    description="A dead delivery is queued again with a fresh attempt budget; a pending one is tried at once. "
    "409 for one already delivered or being delivered.", openapi_extra=_EXT,
)
async def retry_delivery(request: Request, id: str = DeliveryId,
                         project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    return responses.JSONResponse({"data": await c.deliveries.retry(project, id)})


def _settings_body(values: dict[str, Any]) -> dict[str, Any]:
    return {"data": values}


@router.get(
    "/accounts/{id}/delivery", response_model=DeliverySettingsResult,
    operation_id="lmsgate_get_delivery_settings", summary="Get an account's delivery settings (lmsgate)",
    openapi_extra=_EXT,
)
async def get_delivery_settings(request: Request, id: str = Path(description="The linked account's id."),
                                project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    account = c.accounts.get(project, id)
    values = await anyio.to_thread.run_sync(c.deliveries.effective_settings, account.id)
    return responses.JSONResponse(_settings_body(values))


@router.patch(
    "/accounts/{id}/delivery", response_model=DeliverySettingsResult,
    operation_id="lmsgate_update_delivery_settings", summary="Change an account's delivery settings (lmsgate)",
    description="Only the fields sent change; a field sent as null goes back to the default. "
    "`fallback_to_async: true` keeps writes the provider fails on (408, 502) as deliveries, answered 202.",
    openapi_extra=_EXT,
)
async def update_delivery_settings(body: DeliverySettingsPatch, request: Request,
                                   id: str = Path(description="The linked account's id."),
                                   project: str = Depends(project_id)) -> responses.JSONResponse:
    c = container(request)
    account = c.accounts.get(project, id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    values = await anyio.to_thread.run_sync(c.deliveries.update_settings, account.id, changes)
    return responses.JSONResponse(_settings_body(values))
