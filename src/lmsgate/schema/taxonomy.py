"""Categories and skills: the taxonomy learning objects are filed under."""

from __future__ import annotations

from pydantic import model_validator

from lmsgate.schema.common import (
    BoolLike,
    CategoryLevelEnumModel,
    FreeForm,
    LanguageEnum,
    RawResponse,
    RequestModel,
    ResponseModel,
    SkillLevelEnum,
)


class _Leveled(RequestModel):
    """``level`` is the deprecated name of ``hierarchy``: still taken, and kept as the
    hierarchy when none is given (it was stored as ``level`` alone)."""

    @model_validator(mode="after")
    def _map_level(self) -> _Leveled:
        level = self.__dict__.get("level")
        if level is not None and self.__dict__.get("hierarchy") is None:
            self.hierarchy = level  # type: ignore[attr-defined]
        return self


class CreateCategoriesApiModel(_Leveled):
    """A category attached to content on upsert. Matched by ``id``, else by ``name``."""

    id: str | None = None
    name: str | None = None
    hierarchy: CategoryLevelEnumModel | None = None
    level: CategoryLevelEnumModel | None = None
    language: LanguageEnum | None = None
    unified_custom_fields: FreeForm | None = None


class CreateSkillsApiModel(_Leveled):
    """A skill attached to content on upsert. Matched by ``id``, else by ``name``."""

    id: str | None = None
    name: str | None = None
    hierarchy: SkillLevelEnum | None = None
    level: SkillLevelEnum | None = None
    language: LanguageEnum | None = None


class Category(ResponseModel):
    id: str | None = None
    remote_id: str | None = None
    name: str | None = None
    active: BoolLike = None
    hierarchy: CategoryLevelEnumModel | None = None
    level: CategoryLevelEnumModel | None = None
    language: LanguageEnum | None = None
    unified_custom_fields: FreeForm | None = None


class Skills(ResponseModel):
    id: str | None = None
    remote_id: str | None = None
    name: str | None = None
    active: BoolLike = None
    hierarchy: SkillLevelEnum | None = None
    level: SkillLevelEnum | None = None
    language: LanguageEnum | None = None


class CategoryResult(ResponseModel):
    data: Category
    raw: list[RawResponse] | None = None


class CategoriesPaginated(ResponseModel):
    next: str | None = None
    data: list[Category]
    raw: list[RawResponse] | None = None


class SkillResult(ResponseModel):
    data: Skills
    raw: list[RawResponse] | None = None


class SkillsPaginated(ResponseModel):
    next: str | None = None
    data: list[Skills]
    raw: list[RawResponse] | None = None
