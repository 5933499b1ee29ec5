"""Learners: ``/unified/lms/users``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request

from lmsgate.api import responses
from lmsgate.api.deps import Call, lms_call
from lmsgate.api.writes import write
from lmsgate.api.routing import ERROR_RESPONSES, document, get_op, list_op
from lmsgate.schema import LmsUpsertUserRequestDto, UpsertResult, UserResult, UsersPaginated

router = APIRouter(prefix="/unified/lms", tags=["Users"], responses=ERROR_RESPONSES)

_USER_FILTERS = {
    "email": {"type": "string", "nullable": True, "description": "Only the learner with this email."},
    "external_reference": {"type": "string", "nullable": True,
                           "description": "Only the learner with this external reference."},
}


@router.get(
    "/users", response_model=UsersPaginated,
    operation_id=document("lms_list_users", "list", filters=_USER_FILTERS), summary="List learners",
)
async def list_users(request: Request, call: Call = Depends(lms_call)):
    return await list_op(request, call, "list_users", filter_names=("email", "external_reference"))


@router.get(
    "/users/{id}", response_model=UserResult,
    operation_id=document("lms_get_user", "get"), summary="Get a learner",
)
async def get_user(id: str = Path(), call: Call = Depends(lms_call)):
    return await get_op(call, "get_user", id)


@router.put(
    "/users/{id}", status_code=201, response_model=UpsertResult,
    operation_id=document("lmsgate_upsert_user", "write"), summary="Create or replace a learner (lmsgate)",
    description="lmsgate extension, for the embedded local LMS. Other providers answer 501.",
    openapi_extra={"x-lmsgate-extension": True},
)
async def upsert_user(request: Request, body: LmsUpsertUserRequestDto, id: str = Path(),
                      call: Call = Depends(lms_call)):
    return await write(request, call, "upsert_user", id, body=body, render=responses.upserted)
