"""Linked accounts: StackOne's ``LinkedAccount`` shape, and the bodies that create and change one.

``GET /accounts``, ``GET /accounts/{id}``, ``PATCH /accounts/{id}`` and ``DELETE /accounts/{id}``
answer with ``LinkedAccount`` as StackOne does. Creating an account (``POST /accounts``) is
lmsgate's own: StackOne links accounts through its hosted hub, a self-hosted gateway takes the
settings directly.

``setup_information`` holds the connector's non-secret settings and is returned as given.
``credentials`` holds the secret ones; it is write-only and always returned as ``null``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lmsgate.schema.common import RequestModel, ResponseModel
from lmsgate.schema.types import UtcDateTime

AccountStatus = Literal["active", "inactive", "error"]


class StatusReason(ResponseModel):
    code: str | None = None
    description: str | None = None
    timestamp: UtcDateTime


class LinkedAccount(ResponseModel):
    """A customer's account at a provider, as lmsgate holds it."""

    id: str
    provider: str
    provider_name: str | None = Field(default=None, description="The connector's display name.")
    status: AccountStatus = Field(description="`inactive` accounts answer 412 to every LMS call.")
    status_reasons: list[StatusReason] | None = None
    origin_owner_id: str = Field(description="Your id for the customer who owns the account.")
    origin_owner_name: str = Field(description="Your name for that customer.")
    origin_username: str | None = None
    credentials: dict[str, Any] | None = Field(
        default=None, description="Never returned: always null. Credentials are write-only."
    )
    setup_information: dict[str, Any] | None = Field(
        default=None, description="The connector's non-secret settings."
    )
    label: str | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime


_SETUP = Field(default=None, description="The connector's non-secret settings (see docs/connectors.md).",
               examples=[{"endpoint": "https://lrs.example.com/xAPI/",
                          "activity_base_iri": "https://lms.example.com/activities/",
                          "actor_homepage": "https://lms.example.com"}])
_CREDENTIALS = Field(default=None, description="The connector's secret settings; encrypted at rest, "
                     "never returned or logged.",
                     examples=[{"username": "lrs-key", "password": "lrs-secret"}])


class LinkedAccountCreate(RequestModel):
    """Body of ``POST /accounts`` (lmsgate only)."""

    provider: str = Field(min_length=1, max_length=64, examples=["xapi"])
    origin_owner_id: str = Field(min_length=1, max_length=200)
    origin_owner_name: str = Field(min_length=1, max_length=200)
    origin_username: str | None = Field(default=None, max_length=200)
    label: str | None = Field(default=None, max_length=200)
    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                           description="Pin the account id; random when absent.")
    setup_information: dict[str, Any] | None = _SETUP
    credentials: dict[str, Any] | None = _CREDENTIALS


class PatchAccountExternalDto(RequestModel):
    """Body of ``PATCH /accounts/{id}``: only the fields sent change.

    ``setup_information`` and ``credentials`` are merged into the current ones (a key sent as
    ``null`` removes that setting). ``status`` is lmsgate's: ``inactive`` disables the account.
    """

    provider: str | None = Field(default=None, description="Must be the account's provider if sent.")
    origin_owner_id: str | None = Field(default=None, min_length=1, max_length=200)
    origin_owner_name: str | None = Field(default=None, min_length=1, max_length=200)
    origin_username: str | None = Field(default=None, max_length=200)
    label: str | None = Field(default=None, max_length=200)
    setup_information: dict[str, Any] | None = _SETUP
    credentials: dict[str, Any] | None = _CREDENTIALS
    status: Literal["active", "inactive"] | None = None


class AccountCheckData(ResponseModel):
    provider: str
    checked: str = Field(description="The provider call that proved the credentials.")


class AccountCheckResult(ResponseModel):
    """Answer to ``POST /accounts/{id}/test`` (lmsgate only)."""

    statusCode: float
    message: str
    timestamp: UtcDateTime
    data: AccountCheckData
    raw: list[dict[str, Any]] | None = None
