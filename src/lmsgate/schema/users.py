"""Learners as the LMS knows them."""

from __future__ import annotations

from pydantic import Field

from lmsgate.schema.common import BoolLike, FreeForm, RawResponse, RequestModel, ResponseModel
from lmsgate.schema.types import UtcDateTime


class LmsUser(ResponseModel):
    id: str | None = None
    remote_id: str | None = None
    external_reference: str | None = None
    name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    active: BoolLike = None
    created_at: UtcDateTime | None = None
    updated_at: UtcDateTime | None = None
    unified_custom_fields: FreeForm | None = None


class LmsUpsertUserRequestDto(RequestModel):
    """lmsgate extension: create or update a learner in the embedded ``local`` LMS.

    StackOne has no user write; real LMSes get their users from the customer's HR system.
    The embedded store needs a way in, so this exists only for the ``local`` provider.
    """

    external_reference: str | None = None
    name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    active: BoolLike = None
    unified_custom_fields: FreeForm | None = Field(default=None)


class UserResult(ResponseModel):
    data: LmsUser
    raw: list[RawResponse] | None = None


class UsersPaginated(ResponseModel):
    next: str | None = None
    data: list[LmsUser]
    raw: list[RawResponse] | None = None
