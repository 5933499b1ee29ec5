"""Assignments: a learner linked to a learning object, pending, in progress or done."""

from __future__ import annotations

from pydantic import Field, model_validator

from lmsgate.schema.common import (
    AssignmentStatusEnum,
    FreeForm,
    LearningObjectTypeEnum,
    RawResponse,
    RequestModel,
    ResponseModel,
    ResultStatusEnum,
)
from lmsgate.schema.types import UtcDateTime


class LmsCreateAssignmentRequestDto(RequestModel):
    """Body of ``POST /unified/lms/users/{id}/assignments``.

    ``external_reference`` is the deprecated name of ``learning_object_external_reference``.
    SDK 4.28.0 sends ``created_at`` where 4.34.1 sends ``assigned_at``; both are accepted.
    """

    learning_object_external_reference: str = Field(min_length=1, examples=["learning-content-123"])
    learning_object_id: str | None = None
    progress: float | None = Field(default=None, ge=0, le=100, description="Percent complete.")
    assigned_at: UtcDateTime | None = None
    due_date: UtcDateTime | None = None
    status: AssignmentStatusEnum | None = None
    passthrough: FreeForm | None = None
    external_reference: str | None = Field(default=None, deprecated=True)

    @model_validator(mode="before")
    @classmethod
    def _map_deprecated_names(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        old, new = data.get("external_reference"), data.get("learning_object_external_reference")
        if old is not None and new is not None and old != new:
            raise ValueError(
                "external_reference (deprecated) and learning_object_external_reference differ: "
                f"{old!r} != {new!r}; send only learning_object_external_reference"
            )
        if new is None and old is not None:
            data["learning_object_external_reference"] = old
        if data.get("assigned_at") is None and data.get("created_at") is not None:
            data["assigned_at"] = data["created_at"]
        return data


class Assignment(ResponseModel):
    id: str | None = None
    remote_id: str | None = None
    user_id: str | None = None
    remote_user_id: str | None = None
    learning_object_id: str | None = None
    remote_learning_object_id: str | None = None
    learning_object_external_reference: str | None = None
    learning_object_type: LearningObjectTypeEnum | None = None
    progress: float | None = None
    status: AssignmentStatusEnum | None = None
    result: ResultStatusEnum | None = None
    assigned_at: UtcDateTime | None = None
    due_date: UtcDateTime | None = None
    completed_at: UtcDateTime | None = None
    created_at: UtcDateTime | None = None
    updated_at: UtcDateTime | None = None
    certificate_url: str | None = None
    unified_custom_fields: FreeForm | None = None
    external_reference: str | None = Field(default=None, deprecated=True)
    course_id: str | None = Field(default=None, deprecated=True)
    remote_course_id: str | None = Field(default=None, deprecated=True)


class AssignmentResult(ResponseModel):
    data: Assignment
    raw: list[RawResponse] | None = None


class AssignmentsPaginated(ResponseModel):
    next: str | None = None
    data: list[Assignment]
    raw: list[RawResponse] | None = None
