"""Completions: the record that a learner finished a learning object."""

from __future__ import annotations

from pydantic import Field, model_validator

from lmsgate.schema.common import (
    FreeForm,
    LearningObjectTypeEnum,
    RawResponse,
    RequestModel,
    ResponseModel,
    ResultStatusEnum,
    ScoreModel,
)
from lmsgate.schema.types import DurationInput, DurationStr, UtcDateTime


class LmsCreateCompletionRequestDto(RequestModel):
    """Body of ``POST /unified/lms/users/{id}/completions``.

    ``content_id`` and ``content_external_reference`` are the deprecated names of
    ``learning_object_id`` and ``learning_object_external_reference``. Either name works;
    giving both names with different values is an error (:class:`ConflictingAliases`).
    """

    learning_object_external_reference: str = Field(
        min_length=1, description="Your reference for the learning object; the main key.",
        examples=["learning-content-123"],
    )
    learning_object_id: str | None = Field(default=None, examples=["e3gd34-23tr21-er234-345er56"])
    completed_at: UtcDateTime | None = Field(
        default=None, description="When the learner completed it (RFC 3339; no offset means UTC)."
    )
    time_spent: DurationInput | None = Field(
        default=None, description="Time the learner spent, as an ISO 8601 duration."
    )
    result: ResultStatusEnum | None = None
    score: ScoreModel | None = None
    passthrough: FreeForm | None = Field(
        default=None, description="Extra fields handed to the provider unchanged."
    )
    content_id: str | None = Field(default=None, deprecated=True)
    content_external_reference: str | None = Field(default=None, deprecated=True)

    @model_validator(mode="before")
    @classmethod
    def _map_deprecated_names(cls, data: object) -> object:
        if not isinstance(data, dict) or ("content_id" not in data and "content_external_reference" not in data):
            return data
        data = dict(data)
        for new, old in (
            ("learning_object_id", "content_id"),
            ("learning_object_external_reference", "content_external_reference"),
        ):
            old_value, new_value = data.get(old), data.get(new)
            if old_value is not None and new_value is not None and old_value != new_value:
                raise ValueError(
                    f"{old} (deprecated) and {new} name the same field but differ: "
                    f"{old_value!r} != {new_value!r}; send only {new}"
                )
            if new_value is None and old_value is not None:
                data[new] = old_value
        return data


class Completion(ResponseModel):
    """A completion as lmsgate returns it."""

    id: str | None = None
    remote_id: str | None = None
    user_id: str | None = None
    remote_user_id: str | None = None
    learning_object_id: str | None = None
    remote_learning_object_id: str | None = None
    learning_object_external_reference: str | None = None
    learning_object_type: LearningObjectTypeEnum | None = None
    result: ResultStatusEnum | None = None
    score: ScoreModel | None = None
    completed_at: UtcDateTime | None = None
    created_at: UtcDateTime | None = None
    updated_at: UtcDateTime | None = None
    time_spent: DurationStr | None = None
    certificate_url: str | None = None
    unified_custom_fields: FreeForm | None = None
    external_reference: str | None = Field(default=None, deprecated=True)
    external_id: str | None = Field(default=None, deprecated=True)
    remote_external_id: str | None = Field(default=None, deprecated=True)
    content_external_reference: str | None = Field(default=None, deprecated=True)
    content_id: str | None = Field(default=None, deprecated=True)
    remote_content_id: str | None = Field(default=None, deprecated=True)
    course_id: str | None = Field(default=None, deprecated=True)
    remote_course_id: str | None = Field(default=None, deprecated=True)


class CompletionResult(ResponseModel):
    data: Completion
    raw: list[RawResponse] | None = None


class CompletionsPaginated(ResponseModel):
    next: str | None = None
    data: list[Completion]
    raw: list[RawResponse] | None = None
