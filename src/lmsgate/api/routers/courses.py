"""Courses: ``/unified/lms/courses``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request

from lmsgate.api import responses
from lmsgate.api.deps import Call, lms_call
from lmsgate.api.routing import ERROR_RESPONSES, document, get_op, list_op
from lmsgate.schema import CoursePaginated, CourseResult, LmsUpsertCourseRequestDto, UpsertResult

router = APIRouter(prefix="/unified/lms", tags=["Courses"], responses=ERROR_RESPONSES)


@router.get(
    "/courses", response_model=CoursePaginated,
    operation_id=document("lms_list_courses", "list"), summary="List courses",
)
async def list_courses(request: Request, call: Call = Depends(lms_call)):
    return await list_op(request, call, "list_courses")


@router.get(
    "/courses/{id}", response_model=CourseResult,
    operation_id=document("lms_get_course", "get"), summary="Get a course",
)
async def get_course(id: str = Path(), call: Call = Depends(lms_call)):
    return await get_op(call, "get_course", id)


@router.put(
    "/courses", status_code=201, response_model=UpsertResult,
    operation_id=document("lmsgate_upsert_course", "write"), summary="Create or replace a course (lmsgate)",
    description="lmsgate extension, for the embedded local LMS: creates a course, or replaces the course "
    "with the same external_reference. Other providers answer 501.",
    openapi_extra={"x-lmsgate-extension": True},
)
async def upsert_course(body: LmsUpsertCourseRequestDto, call: Call = Depends(lms_call)):
    result = await call.container.service.call(call.ctx, "upsert_course", body)
    return responses.upserted(result)
