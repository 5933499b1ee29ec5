"""Request logs: StackOne's ``UnifiedLogs`` shape, as ``GET /requests/logs`` answers it.

Every field may be null, as in StackOne's SDK. lmsgate fills what it knows: who called
(``project_id``), on which linked account, what (``http_method``, ``path``, ``action`` = the
operationId), the answer (``status``, ``success``, ``duration`` in milliseconds), and the
provider calls made (``step_requests``). Bodies and headers are kept with secrets masked.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from lmsgate.schema.common import ResponseModel


class LogUrl(ResponseModel):
    url: str | None = None
    hostname: str | None = None
    path: str | None = None
    query_params: dict[str, Any] | None = None


class LogRequest(ResponseModel):
    id: str | None = None
    method: str | None = None
    url: LogUrl | None = None
    headers: dict[str, Any] | None = None
    body: Any = None


class LogResponse(ResponseModel):
    status_code: int | None = None
    headers: dict[str, Any] | None = None
    body: Any = None
    provider_errors: list[dict[str, Any]] | None = None


class StepLog(ResponseModel):
    """One call lmsgate made to the provider while serving the request."""

    id: str | None = None
    request_id: str | None = None
    account_id: str | None = None
    project_id: str | None = None
    provider: str | None = None
    http_method: str | None = None
    url: str | None = Field(default=None, description="The provider URL, secrets masked.")
    status: int | None = Field(default=None, description="The provider's status; null if no answer came.")
    error: str | None = Field(default=None, description="Why no answer came (e.g. ConnectError).")
    success: bool | None = None
    duration: float | None = Field(default=None, description="Milliseconds.")
    start_time: str | None = None
    end_time: str | None = None


class RequestLog(ResponseModel):
    request_id: str | None = Field(default=None, description="The x-request-id answered to the caller.")
    event_datetime: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    duration: float | None = Field(default=None, description="Milliseconds.")
    project_id: str | None = None
    account_id: str | None = None
    provider: str | None = None
    service: str | None = None
    resource: str | None = None
    sub_resource: str | None = None
    child_resource: str | None = None
    action: str | None = Field(default=None, description="The operationId of the call.")
    http_method: str | None = None
    path: str | None = None
    url: str | None = None
    status: int | None = None
    success: bool | None = None
    is_worker: bool | None = None
    source_type: str | None = None
    source_ip: str | None = None
    source_id: str | None = None
    source_value: str | None = None
    step_requests: list[StepLog] | None = None
    request: LogRequest | None = None
    response: LogResponse | None = None


class RequestLogsPaginated(ResponseModel):
    next: str | None = None
    data: list[RequestLog]


class RequestLogResult(ResponseModel):
    data: RequestLog
