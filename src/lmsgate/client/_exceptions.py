"""Everything the client raises, in one tree::

    LmsClientError                      anything this client raises on purpose
    ├── InvalidRequestError             the request failed the unified model; nothing was sent
    ├── TransportError                  no HTTP answer: refused, reset, DNS, TLS …
    │   └── ClientTimeoutError          no answer within the client's timeout
    ├── ResponseValidationError         an answer that is not the documented shape
    └── APIStatusError                  the server answered with an error status
        ├── BadRequestError             400  a field is invalid (the message names it)
        ├── UnauthorizedError           401  no API key, or one the server does not know
        ├── ForbiddenError              403  the key may not do this
        ├── NotFoundError               404  no such record, or no such linked account
        ├── RequestTimedOutError        408  the provider did not answer in time
        ├── ConflictError               409  the request clashes with the current state
        ├── PreconditionFailedError     412  the linked account is disabled
        ├── UnprocessableEntityError    422  well-formed, but cannot be carried out
        ├── RateLimitedError            429  too many requests; see ``retry_after``
        └── ServerError                 5xx  the server or the provider failed
            ├── InternalServerError         500
            ├── NotImplementedByProviderError 501  the provider cannot do this operation
            └── BadGatewayError             502  the provider's answer could not be used

408 and 429 are retried before they are raised (see :class:`~lmsgate.client.Retry`); the
exception is what is left when the retries ran out. Any other error status is an
:class:`APIStatusError` itself (or a :class:`ServerError` for 5xx). Errors of the HTTP library
never escape: they are translated at the boundary and chained (``raise … from``).
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from lmsgate.http import parse_retry_after
from lmsgate.schema import ProviderError

__all__ = [
    "APIStatusError",
    "BadGatewayError",
    "BadRequestError",
    "ClientTimeoutError",
    "ConflictError",
    "ForbiddenError",
    "InternalServerError",
    "InvalidRequestError",
    "LmsClientError",
    "NotFoundError",
    "NotImplementedByProviderError",
    "PreconditionFailedError",
    "RateLimitedError",
    "RequestTimedOutError",
    "ResponseValidationError",
    "ServerError",
    "TransportError",
    "UnauthorizedError",
    "UnprocessableEntityError",
]


class LmsClientError(Exception):
    """Base class of every exception the client raises on purpose."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class InvalidRequestError(LmsClientError, ValueError):
    """Raised before anything is sent: the body failed the unified model, or no linked
    account was named (``account_id`` on the client or the call). ``errors`` holds pydantic's
    error list when a model refused the body."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class TransportError(LmsClientError):
    """Raised when no HTTP answer came back (after any retries): the connection was refused
    or reset, the name did not resolve, TLS failed. The HTTP library's error is ``__cause__``."""

    def __init__(self, message: str, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class ClientTimeoutError(TransportError):
    """Raised when the server did not answer within the client's timeout (a 408 from the
    server is :class:`RequestTimedOutError` instead)."""


class ResponseValidationError(LmsClientError):
    """Raised when a success answer is not the documented shape (not JSON, a required key
    missing, a wrong type). ``body`` is the raw text; ``errors`` is pydantic's error list."""

    def __init__(self, message: str, *, status_code: int, body: str,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.errors = errors or []


class APIStatusError(LmsClientError):
    """Raised when the server answers with an error status.

    ``body`` is the StackOne error body parsed with the server's own model for the status
    (``BadRequestResponse``, ``NotFoundResponse``, …), or None when the answer was not such a
    body; ``provider_errors`` lists the provider's own errors when the server passed them on.
    """

    status_code: int = 0

    def __init__(self, message: str, *, response: httpx.Response, body: BaseModel | None,
                 provider_errors: list[ProviderError]) -> None:
        super().__init__(message)
        self.status_code = response.status_code
        self.response = response
        self.headers = response.headers
        self.body = body
        self.provider_errors = provider_errors

    def __str__(self) -> str:
        return f"{self.status_code} {self.message}"


class BadRequestError(APIStatusError):
    """400: the request is malformed or a field is invalid; the message names the field."""


class UnauthorizedError(APIStatusError):
    """401: no API key was sent, or the server does not know it (or it was revoked)."""


class ForbiddenError(APIStatusError):
    """403: the API key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such record, or the linked account does not exist for this key."""


class RequestTimedOutError(APIStatusError):
    """408: the provider did not answer within the server's request lifetime."""


class ConflictError(APIStatusError):
    """409: the request clashes with the current state (or one with the same
    ``Idempotency-Key`` is still running)."""


class PreconditionFailedError(APIStatusError):
    """412: the linked account is disabled."""


class UnprocessableEntityError(APIStatusError):
    """422: well-formed, but it cannot be carried out as asked (for instance an
    ``Idempotency-Key`` reused with another body)."""


class RateLimitedError(APIStatusError):
    """429: too many requests. ``retry_after`` is the wait the server asked for, in seconds
    (None when it named none)."""

    def __init__(self, message: str, *, response: httpx.Response, body: BaseModel | None,
                 provider_errors: list[ProviderError]) -> None:
        super().__init__(message, response=response, body=body, provider_errors=provider_errors)
        self.retry_after = parse_retry_after(response.headers.get("retry-after"))


class ServerError(APIStatusError):
    """5xx: the server, or the provider behind it, failed."""


class InternalServerError(ServerError):
    """500: the server failed unexpectedly."""


class NotImplementedByProviderError(ServerError):
    """501: the linked account's provider does not support this operation."""


class BadGatewayError(ServerError):
    """502: the provider answered, but not usefully; see ``provider_errors``."""


STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    408: RequestTimedOutError,
    409: ConflictError,
    412: PreconditionFailedError,
    422: UnprocessableEntityError,
    429: RateLimitedError,
    500: InternalServerError,
    501: NotImplementedByProviderError,
    502: BadGatewayError,
}


def error_class(status: int) -> type[APIStatusError]:
    """The exception for an error status: its own class, else ServerError or APIStatusError."""
    return STATUS_ERRORS.get(status) or (ServerError if status >= 500 else APIStatusError)
