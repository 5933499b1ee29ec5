"""Completions: ``/unified/lms/users/{id}/completions`` and ``/unified/lms/completions``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request

from lmsgate.api import responses
from lmsgate.api.deps import Call, lms_call
from lmsgate.api.writes import write
from lmsgate.api.routing import ERROR_RESPONSES, document, get_op, list_op
from lmsgate.schema import (
    CompletionResult,
    CompletionsPaginated,
    CreateResult,
    DeleteResult,
    LmsCreateCompletionRequestDto,
)

router = APIRouter(prefix="/unified/lms", tags=["Completions"], responses=ERROR_RESPONSES)
UserId = Path(description="The learner's id.")


@router.post(
    "/users/{id}/completions", status_code=201, response_model=CreateResult,
    operation_id=document("lms_create_user_completion", "write"), summary="Record a completion",
    description="Records that a learner completed a learning object. Posting the same learner, "
    "learning object and completed_at again returns the first record's id and stores nothing new.",
)
async def create_user_completion(
    request: Request, body: LmsCreateCompletionRequestDto, id: str = UserId, call: Call = Depends(lms_call)
):
    return await write(request, call, "create_user_completion", id, body=body, render=responses.created)


@router.get(
    "/users/{id}/completions", response_model=CompletionsPaginated,
    operation_id=document("lms_list_user_completions", "list"), summary="List a learner's completions",
)
async def list_user_completions(request: Request, id: str = UserId, call: Call = Depends(lms_call)):
    return await list_op(request, call, "list_user_completions", id)


@router.get(
    "/users/{id}/completions/{subResourceId}", response_model=CompletionResult,
    operation_id=document("lms_get_user_completion", "get"), summary="Get one of a learner's completions",
)
async def get_user_completion(id: str = UserId, subResourceId: str = Path(), call: Call = Depends(lms_call)):
    return await get_op(call, "get_user_completion", id, subResourceId)


@router.delete(
    "/users/{id}/completions/{subResourceId}", response_model=DeleteResult,
    operation_id=document("lms_delete_user_completion", "write"), summary="Delete a completion",
    responses={204: {"description": "Deleted; no body."}},
)
async def delete_user_completion(request: Request, id: str = UserId, subResourceId: str = Path(),
                                 call: Call = Depends(lms_call)):
    return await write(request, call, "delete_user_completion", id, subResourceId,
                       render=lambda _: responses.status_only(200, "Record deleted successfully."))


@router.get(
    "/completions", response_model=CompletionsPaginated,
    operation_id=document("lms_list_completions", "list"), summary="List completions",
)
async def list_completions(request: Request, call: Call = Depends(lms_call)):
    return await list_op(request, call, "list_completions")


@router.get(
    "/completions/{id}", response_model=CompletionResult,
    operation_id=document("lms_get_completion", "get"), summary="Get a completion",
)
async def get_completion(id: str = Path(), call: Call = Depends(lms_call)):
    return await get_op(call, "get_completion", id)
