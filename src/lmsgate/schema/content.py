"""Learning objects: content (an external link to your material) and courses."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from lmsgate.schema.common import (
    AdditionalData,
    AuthorModel,
    BoolLike,
    ContentTypeEnum,
    FreeForm,
    LanguageEnum,
    LocalizationModel,
    RawResponse,
    RequestModel,
    ResponseModel,
    WriteContentTypeEnum,
)
from lmsgate.schema.taxonomy import Category, CreateCategoriesApiModel, CreateSkillsApiModel, Skills
from lmsgate.schema.types import DurationInput, DurationStr, UtcDateTime

MAX_BATCH_ITEMS = 1000
"""Largest ``items`` list accepted by ``POST /unified/lms/content/batch``."""


class _ContentFields(RequestModel):
    title: str | None = None
    description: str | None = None
    languages: list[LanguageEnum] | None = None
    content_url: str | None = None
    mobile_launch_content_url: str | None = None
    cover_url: str | None = None
    active: BoolLike = None
    duration: DurationInput | None = Field(default=None, description="ISO 8601 duration.")
    order: float | None = None
    categories: list[CreateCategoriesApiModel] | None = None
    skills: list[CreateSkillsApiModel] | None = None
    localizations: list[LocalizationModel] | None = None
    tags: list[str] | None = None
    authors: list[AuthorModel] | None = None
    additional_data: list[AdditionalData] | None = None
    content_type: WriteContentTypeEnum | None = None
    created_at: UtcDateTime | None = None
    updated_at: UtcDateTime | None = None
    unified_custom_fields: FreeForm | None = None
    short_description: str | None = Field(
        default=None, deprecated=True, description="Deprecated; used as description when none is given."
    )

    def short_description_given(self) -> str | None:
        return self.__dict__.get("short_description")  # read without the deprecation warning


class LmsUpsertContentRequestDto(_ContentFields):
    """Body of ``PUT /unified/lms/content``: create or replace content by ``external_reference``.

    An upsert replaces the whole record: fields left out are cleared.
    """

    external_reference: str = Field(min_length=1, examples=["SOFTWARE-ENG-LV1-TRAINING-VIDEO-1"])
    passthrough: FreeForm | None = None

    @model_validator(mode="after")
    def _map_short_description(self) -> LmsUpsertContentRequestDto:
        # An upsert replaces the record, so "none given" is this body's. A PATCH compares with
        # what is stored instead (LocalConnector.update_content): there a short_description
        # alone once overwrote the description.
        short = self.short_description_given()
        if self.description is None and short is not None:
            self.description = short
        return self


class LmsBatchUpsertContentRequestDto(RequestModel):
    items: list[LmsUpsertContentRequestDto] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class LmsCreateContentRequestDto(_ContentFields):
    """Body of ``PATCH /unified/lms/content/{id}`` (SDK 4.28.0): only the fields given change."""

    external_reference: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _keeps_its_reference(self) -> LmsCreateContentRequestDto:
        if "external_reference" in self.model_fields_set and self.external_reference is None:
            raise ValueError("external_reference: cannot be cleared; upserts find the content by it")
        return self


class Content(ResponseModel):
    id: str | None = None
    remote_id: str | None = None
    external_reference: str | None = None
    course_ids: list[str] | None = None
    remote_course_ids: list[str] | None = None
    title: str | None = None
    description: str | None = None
    languages: list[LanguageEnum] | None = None
    content_url: str | None = None
    mobile_launch_content_url: str | None = None
    content_type: ContentTypeEnum | None = None
    cover_url: str | None = None
    active: BoolLike = None
    duration: DurationStr | None = None
    categories: list[Category] | None = None
    skills: list[Skills] | None = None
    order: float | None = None
    provider: str | None = None
    localizations: list[LocalizationModel] | None = None
    tags: list[str] | None = None
    authors: list[AuthorModel] | None = None
    updated_at: UtcDateTime | None = None
    created_at: UtcDateTime | None = None
    unified_custom_fields: FreeForm | None = None
    short_description: str | None = Field(default=None, deprecated=True)


class ContentResult(ResponseModel):
    data: Content
    raw: list[RawResponse] | None = None


class ContentPaginated(ResponseModel):
    next: str | None = None
    next_page: str | None = Field(default=None, deprecated=True)
    total: float | None = None
    data: list[Content]
    raw: list[RawResponse] | None = None


class LmsUpsertCourseRequestDto(RequestModel):
    """lmsgate extension: create or replace a course in the embedded ``local`` LMS."""

    external_reference: str = Field(min_length=1)
    title: str | None = None
    description: str | None = None
    languages: list[LanguageEnum] | None = None
    cover_url: str | None = None
    url: str | None = None
    active: BoolLike = None
    duration: DurationInput | None = None
    content_external_references: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, description="External references of the content this course contains, in order; "
        "a reference given twice counts once, where it first appears."
    )
    categories: list[CreateCategoriesApiModel] | None = None
    skills: list[CreateSkillsApiModel] | None = None
    authors: list[AuthorModel] | None = None
    unified_custom_fields: FreeForm | None = None

    @model_validator(mode="after")
    def _each_content_once(self) -> LmsUpsertCourseRequestDto:
        refs = self.content_external_references
        if refs is not None and len(set(refs)) != len(refs):
            self.content_external_references = list(dict.fromkeys(refs))
        return self


class Course(ResponseModel):
    id: str | None = None
    remote_id: str | None = None
    external_reference: str | None = None
    content_ids: list[str] | None = None
    remote_content_ids: list[str] | None = None
    title: str | None = None
    description: str | None = None
    languages: list[LanguageEnum] | None = None
    cover_url: str | None = None
    url: str | None = None
    active: BoolLike = None
    duration: DurationStr | None = None
    categories: list[Category] | None = None
    skills: list[Skills] | None = None
    provider: str | None = None
    authors: list[AuthorModel] | None = None
    updated_at: UtcDateTime | None = None
    created_at: UtcDateTime | None = None
    unified_custom_fields: FreeForm | None = None


class CourseResult(ResponseModel):
    data: Course
    raw: list[RawResponse] | None = None


class CoursePaginated(ResponseModel):
    next: str | None = None
    next_page: str | None = Field(default=None, deprecated=True)
    total: float | None = None
    data: list[Course]
    raw: list[RawResponse] | None = None
