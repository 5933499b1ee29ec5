"""Categories and skills: ``/unified/lms/categories`` and ``/unified/lms/skills``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request

from lmsgate.api.deps import Call, lms_call
from lmsgate.api.routing import ERROR_RESPONSES, document, get_op, list_op
from lmsgate.schema import CategoriesPaginated, CategoryResult, SkillResult, SkillsPaginated

router = APIRouter(prefix="/unified/lms", responses=ERROR_RESPONSES)


@router.get(
    "/categories", response_model=CategoriesPaginated, tags=["Categories"],
    operation_id=document("lms_list_categories", "list"), summary="List categories",
)
async def list_categories(request: Request, call: Call = Depends(lms_call)):
    return await list_op(request, call, "list_categories")


@router.get(
    "/categories/{id}", response_model=CategoryResult, tags=["Categories"],
    operation_id=document("lms_get_category", "get"), summary="Get a category",
)
async def get_category(id: str = Path(), call: Call = Depends(lms_call)):
    return await get_op(call, "get_category", id)


@router.get(
    "/skills", response_model=SkillsPaginated, tags=["Skills"],
    operation_id=document("lms_list_skills", "list"), summary="List skills",
)
async def list_skills(request: Request, call: Call = Depends(lms_call)):
    return await list_op(request, call, "list_skills")


@router.get(
    "/skills/{id}", response_model=SkillResult, tags=["Skills"],
    operation_id=document("lms_get_skill", "get"), summary="Get a skill",
)
async def get_skill(id: str = Path(), call: Call = Depends(lms_call)):
    return await get_op(call, "get_skill", id)
