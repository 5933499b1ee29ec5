"""The one exception tree. Every class maps to a status and StackOne's error body.

    LmsGateError                 any error lmsgate answers on purpose
    ├── BadRequest           400 the request is malformed or a field is invalid
    ├── Unauthorized         401 no API key, or one that is unknown or revoked
    ├── NotFound             404 no such record, or it belongs to another project
    ├── Conflict             409 the request clashes with the current state
    ├── PreconditionFailed   412 the linked account is disabled
    ├── Unprocessable        422 well-formed, but cannot be carried out as asked
    ├── TooManyRequests      429 a rate limit was hit; ``retry_after`` says when to come back
    ├── NotImplementedByProvider 501 the account's connector does not support the operation
    └── ProviderFailure          408 or 502, the provider did not answer usefully

The API layer renders all of them with one handler (``lmsgate.api.errors``). Code below the
API raises these and nothing else for conditions a caller can act on.
"""

from __future__ import annotations

from typing import Any


class LmsGateError(Exception):
    status: int = 500
    default_message = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        provider_errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.provider_errors = provider_errors
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(LmsGateError):
    status = 400
    default_message = "Bad request"


class Unauthorized(LmsGateError):
    status = 401
    default_message = "Unauthorized: send your API key as the HTTP Basic username"


class NotFound(LmsGateError):
    status = 404
    default_message = "Not found"


class Conflict(LmsGateError):
    status = 409
    default_message = "Conflict"


class PreconditionFailed(LmsGateError):
    status = 412
    default_message = "The linked account is disabled"


class Unprocessable(LmsGateError):
    status = 422
    default_message = "Unprocessable entity"


class TooManyRequests(LmsGateError):
    status = 429
    default_message = "Too many requests"

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class NotImplementedByProvider(LmsGateError):
    status = 501
    default_message = "Not implemented"

    def __init__(self, operation: str, provider: str) -> None:
        super().__init__(f"The {provider} connector does not support {operation}")


class ProviderFailure(LmsGateError):
    status = 502
    default_message = "The provider's answer could not be used"

    def __init__(self, message: str | None = None, *, status: int = 502, **kw: Any) -> None:
        self.status = status
        super().__init__(message, **kw)
