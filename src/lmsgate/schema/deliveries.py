"""Deliveries (lmsgate's own API): writes accepted for background delivery, and their attempts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lmsgate.schema.common import RequestModel, ResponseModel
from lmsgate.schema.types import UtcDateTime

DeliveryStatus = Literal["pending", "delivering", "delivered", "dead"]


class DeliveryAttempt(ResponseModel):
    number: int = Field(description="1 for the first attempt.")
    started_at: UtcDateTime
    finished_at: UtcDateTime
    outcome: Literal["delivered", "retry", "dead"] = Field(
        description="delivered; retry (failed, tried again later); dead (failed, given up).")
    status: int | None = Field(default=None, description="The status a synchronous call would have answered.")
    error: dict[str, Any] | None = Field(
        default=None, description="message and provider_errors (status, url, raw, headers), secrets masked.")


class Delivery(ResponseModel):
    id: str
    account_id: str
    operation: str = Field(examples=["create_user_completion"])
    method: str
    path: str
    status: DeliveryStatus = Field(description="pending (waiting for its next attempt), delivering, delivered, "
                                   "or dead (given up: see last_error; POST /deliveries/{id}/retry sends it again).")
    attempt_count: int
    next_attempt_at: UtcDateTime | None = Field(default=None, description="When pending: its next attempt.")
    created_at: UtcDateTime
    updated_at: UtcDateTime
    delivered_at: UtcDateTime | None = None
    result: dict[str, Any] | None = Field(
        default=None, description="Once delivered: what the synchronous call would have returned in data.")
    last_error: dict[str, Any] | None = Field(default=None, description="The last failure, secrets masked.")
    request: dict[str, Any] = Field(description="The write's path arguments and validated body.")
    attempts: list[DeliveryAttempt] | None = Field(
        default=None, description="Every attempt, oldest first (GET /deliveries/{id} only).")


class DeliveryResult(ResponseModel):
    data: Delivery


class DeliveriesPaginated(ResponseModel):
    next: str | None = None
    data: list[Delivery]


class DeliveryAccepted(ResponseModel):
    """Answer to a write accepted for background delivery (202)."""

    statusCode: float
    message: str
    timestamp: UtcDateTime
    data: Delivery


class RetryDeliveries(RequestModel):
    """Body of ``POST /deliveries/retry``: which deliveries to send again."""

    status: Literal["dead", "pending"] = Field(
        default="dead", description="dead (the default) or pending (skip the wait before the next attempt).")
    account_id: str | None = Field(default=None, max_length=64, description="Only this linked account's.")
    created_after: UtcDateTime | None = None
    created_before: UtcDateTime | None = None


class RetryDeliveriesResult(ResponseModel):
    statusCode: float
    message: str
    timestamp: UtcDateTime
    data: dict[str, int] = Field(description="{retried: how many deliveries were queued again}.")


class DeliverySettingsPatch(RequestModel):
    """Body of ``PATCH /accounts/{id}/delivery``: only the fields sent change; null restores the default."""

    fallback_to_async: bool | None = Field(
        default=None, description="Keep a write the provider failed on (408 or 502) as a delivery and "
        "answer 202, instead of answering the error.")
    max_concurrency: int | None = Field(default=None, ge=1, le=256,
                                        description="Provider calls in flight at once, all workers together.")
    max_requests_per_second: float | None = Field(default=None, gt=0, le=100_000,
                                                  description="Provider calls per second, all workers together.")
    max_attempts: int | None = Field(default=None, ge=1, le=1000, description="Attempts before dead-lettering.")
    max_age_seconds: float | None = Field(default=None, gt=0, le=365 * 86400,
                                          description="Seconds after which a failing delivery is dead-lettered.")


class DeliverySettings(ResponseModel):
    fallback_to_async: bool
    max_concurrency: int
    max_requests_per_second: float | None = Field(description="null: no limit.")
    max_attempts: int
    max_age_seconds: float
    overrides: dict[str, Any] = Field(description="The settings this account sets itself; the rest are defaults.")


class DeliverySettingsResult(ResponseModel):
    data: DeliverySettings
