"""Assignments: ``/unified/lms/users/{id}/assignments`` and ``/unified/lms/assignments``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request

from lmsgate.api import responses
from lmsgate.api.deps import Call, lms_call
from lmsgate.api.writes import write
from lmsgate.api.routing import ERROR_RESPONSES, document, get_op, list_op
from lmsgate.schema import AssignmentResult, AssignmentsPaginated, CreateResult, LmsCreateAssignmentRequestDto

router = APIRouter(prefix="/unified/lms", tags=["Assignments"], responses=ERROR_RESPONSES)

STATUSES = ("pending", "in_progress", "completed", "unmapped_value")
_STATUS_FILTER = {"status": {"type": "string", "enum": [*STATUSES, None], "nullable": True,
                             "description": "Only assignments in this status."}}
_USER_PARAMS = [
    {"name": "user_id", "in": "query", "required": False, "description": "Only this learner's assignments.",
     "schema": {"type": "string", "nullable": True}},
    {"name": "remote_user_id", "in": "query", "required": False,
     "description": "Only assignments of the learner with this provider id.",
     "schema": {"type": "string", "nullable": True}},
]
_FILTERS = ("status", "user_id", "remote_user_id")


@router.post(
    "/users/{id}/assignments", status_code=201, response_model=CreateResult,
    operation_id=document("lms_create_user_assignment", "write"), summary="Assign a learning object",
)
async def create_user_assignment(
    request: Request, body: LmsCreateAssignmentRequestDto, id: str = Path(), call: Call = Depends(lms_call)
):
    return await write(request, call, "create_user_assignment", id, body=body, render=responses.created)


@router.get(
    "/users/{id}/assignments", response_model=AssignmentsPaginated,
    operation_id=document("lms_list_user_assignments", "list", filters=_STATUS_FILTER, extra=_USER_PARAMS),
    summary="List a learner's assignments",
)
async def list_user_assignments(request: Request, id: str = Path(), call: Call = Depends(lms_call)):
    return await list_op(request, call, "list_user_assignments", id,
                         filter_names=_FILTERS, enums={"status": STATUSES})


@router.get(
    "/users/{id}/assignments/{subResourceId}", response_model=AssignmentResult,
    operation_id=document("lms_get_user_assignment", "get"), summary="Get one of a learner's assignments",
)
async def get_user_assignment(id: str = Path(), subResourceId: str = Path(), call: Call = Depends(lms_call)):
    return await get_op(call, "get_user_assignment", id, subResourceId)


@router.get(
    "/assignments", response_model=AssignmentsPaginated,
    operation_id=document("lms_list_assignments", "list", filters=_STATUS_FILTER, extra=_USER_PARAMS),
    summary="List assignments",
)
async def list_assignments(request: Request, call: Call = Depends(lms_call)):
    return await list_op(request, call, "list_assignments", filter_names=_FILTERS, enums={"status": STATUSES})


@router.get(
    "/assignments/{id}", response_model=AssignmentResult,
    operation_id=document("lms_get_assignment", "get"), summary="Get an assignment",
)
async def get_assignment(id: str = Path(), call: Call = Depends(lms_call)):
    return await get_op(call, "get_assignment", id)
