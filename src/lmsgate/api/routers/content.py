"""Content: ``/unified/lms/content``, the learning objects you push into the LMS."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Path, Request
from pydantic import ValidationError

from lmsgate.api import responses
from lmsgate.api.deps import Call, lms_call
from lmsgate.api.writes import write
from lmsgate.schema.messages import describe_validation_errors
from lmsgate.api.routing import ERROR_RESPONSES, document, get_op, list_op
from lmsgate.errors import BadRequest, LmsGateError
from lmsgate.schema import (
    BatchResultApiModel,
    ContentPaginated,
    ContentResult,
    LmsCreateContentRequestDto,
    LmsUpsertContentRequestDto,
    UpdateResult,
    UpsertResult,
)
from lmsgate.schema.content import MAX_BATCH_ITEMS

router = APIRouter(prefix="/unified/lms", tags=["Content"], responses=ERROR_RESPONSES)

_ACTIVE_FILTER = {"active": {"oneOf": [{"type": "boolean", "const": True}, {"type": "string", "const": "true"}],
                             "nullable": True, "description": "Only active content."}}


@router.put(
    "/content", status_code=201, response_model=UpsertResult,
    operation_id=document("lms_upsert_content", "write"), summary="Create or replace content",
    description="Creates content, or replaces the content with the same external_reference.",
)
async def upsert_content(request: Request, body: LmsUpsertContentRequestDto, call: Call = Depends(lms_call)):
    return await write(request, call, "upsert_content", body=body, render=responses.upserted)


@router.post(
    "/content/batch", status_code=202, response_model=BatchResultApiModel,
    operation_id=document("lms_batch_upsert_content", "write"), summary="Create or replace many contents",
    description=f"Upserts up to {MAX_BATCH_ITEMS} items. Valid items are stored even when others are not; "
    "errors[i] lists the problems of item i and is empty when it was stored.",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/LmsBatchUpsertContentRequestDto"}}}}},
)
async def batch_upsert_content(request: Request, call: Call = Depends(lms_call)):
    try:
        payload: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body: malformed JSON ({exc})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise BadRequest("body.items: required, and must be an array of content")
    raw_items = payload["items"]
    if not 1 <= len(raw_items) <= MAX_BATCH_ITEMS:
        raise BadRequest(f"body.items: must hold 1 to {MAX_BATCH_ITEMS} items, got {len(raw_items)}")
    errors: list[list[str]] = []
    valid: list[LmsUpsertContentRequestDto] = []
    for item in raw_items:
        try:
            valid.append(LmsUpsertContentRequestDto.model_validate(item))
            errors.append([])
        except ValidationError as exc:
            errors.append(describe_validation_errors(list(exc.errors())).split("; "))
    if len({v.external_reference for v in valid}) != len(valid):
        seen: set[str] = set()
        for i, item in enumerate(raw_items):
            ref = item.get("external_reference") if isinstance(item, dict) and not errors[i] else None
            if ref in seen:
                errors[i].append(f"external_reference: {ref!r} appears earlier in this batch")
            elif ref is not None:
                seen.add(ref)
        valid = [
            LmsUpsertContentRequestDto.model_validate(raw_items[i])
            for i in range(len(raw_items)) if not errors[i]
        ]
    results = await call.container.service.batch_upsert_content(call.ctx, valid)
    stored_at = [i for i in range(len(raw_items)) if not errors[i]]
    for i, result in zip(stored_at, results):
        if isinstance(result, LmsGateError):  # the store refused this item alone
            errors[i].append(result.message)
    failed = sum(1 for e in errors if e)
    message = "Batch operation accepted" if not failed else f"Batch accepted; {failed} item(s) rejected"
    return responses.JSONResponse(
        {"statusCode": 202, "message": message, "timestamp": responses.now_iso(), "errors": errors},
        status_code=202,
    )


@router.get(
    "/content", response_model=ContentPaginated,
    operation_id=document("lms_list_content", "list", filters=_ACTIVE_FILTER), summary="List content",
)
async def list_content(request: Request, call: Call = Depends(lms_call)):
    return await list_op(request, call, "list_content", filter_names=("active",))


@router.get(
    "/content/{id}", response_model=ContentResult,
    operation_id=document("lms_get_content", "get"), summary="Get content",
)
async def get_content(id: str = Path(), call: Call = Depends(lms_call)):
    return await get_op(call, "get_content", id)


@router.patch(
    "/content/{id}", status_code=201, response_model=UpdateResult,
    operation_id=document("lms_update_content", "write"), summary="Change some fields of content",
    description="Kept for SDK 4.28.0's updateContent. Only the fields sent change.",
)
async def update_content(request: Request, body: LmsCreateContentRequestDto, id: str = Path(),
                         call: Call = Depends(lms_call)):
    return await write(request, call, "update_content", id, body=body,
                       render=lambda _: responses.status_only(201, "Record updated successfully."))
