"""Courses: ``/unified/lms/courses``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request

from lmsgate.api import responses
from lmsgate.api.deps import Call, lms_call
from lmsgate.api.writes import write
from lmsgate.api.routing import ERROR_RESPONSES, document, get_op, list_op
from lmsgate.schema import CoursePaginated, CourseResult, LmsUpsertCourseRequestDto, UpsertResult

router = APIRouter(prefix="/unified/lms", tags=["Courses"], responses=ERROR_RESPONSES)

_COURSE_FILTERS = {
    "external_reference": {"type": "string", "nullable": True,
                           "description": "Only the course with this external reference."},
    "active": {"oneOf": [{"type": "boolean", "const": True}, {"type": "string", "const": "true"}],
               "nullable": True, "description": "Only active courses."},
}


@router.get(
    "/courses", response_model=CoursePaginated,
    operation_id=document("lms_list_courses", "list", filters=_COURSE_FILTERS), summary="List courses",
)
async def list_courses(request: Request, call: Call = Depends(lms_call)):
    return await list_op(request, call, "list_courses", filter_names=("external_reference", "active"))


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
async def upsert_course(request: Request, body: LmsUpsertCourseRequestDto, call: Call = Depends(lms_call)):
    return await write(request, call, "upsert_course", body=body, render=responses.upserted)
