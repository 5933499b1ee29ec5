"""lmsgate's Python SDK: typed clients of a StackOne-compatible unified LMS API.

    from lmsgate.client import Client

    with Client("lmsg_…", server_url="http://127.0.0.1:8000", account_id="01…") as client:
        client.lms.create_user_completion("learner-42", {
            "learning_object_external_reference": "course-1",
            "completed_at": "2021-07-21T14:00:00Z",
        })
        for completion in client.lms.iter_completions(page_size=1000):
            print(completion.id, completion.completed_at)
        for delivery in client.deliveries.iter_deliveries(status="dead"):  # lmsgate's Delivery API
            client.deliveries.retry_delivery(delivery.id)

The models (request bodies and answers) are the server's own, from :mod:`lmsgate.schema`.
See ``docs/python-sdk.md`` for a tour. Everything public is listed in ``__all__``; the
underscored modules are private.
"""

from lmsgate.client._client_async import DEFAULT_SERVER_URL, DEFAULT_TIMEOUT, AsyncClient
from lmsgate.client._client_sync import Client
from lmsgate.client._deliveries_async import AsyncDeliveries
from lmsgate.client._deliveries_sync import Deliveries
from lmsgate.client._exceptions import (
    APIStatusError,
    BadGatewayError,
    BadRequestError,
    ClientTimeoutError,
    ConflictError,
    ForbiddenError,
    InternalServerError,
    InvalidRequestError,
    LmsClientError,
    NotFoundError,
    NotImplementedByProviderError,
    PreconditionFailedError,
    RateLimitedError,
    RequestTimedOutError,
    ResponseValidationError,
    ServerError,
    TransportError,
    UnauthorizedError,
    UnprocessableEntityError,
)
from lmsgate.client._lms_async import AsyncLms
from lmsgate.client._lms_sync import Lms
from lmsgate.client._request import Accepted, ResponseInfo, response_info
from lmsgate.client._retry import Retry

__all__ = [
    "APIStatusError",
    "Accepted",
    "AsyncClient",
    "AsyncDeliveries",
    "AsyncLms",
    "BadGatewayError",
    "BadRequestError",
    "Client",
    "ClientTimeoutError",
    "ConflictError",
    "DEFAULT_SERVER_URL",
    "DEFAULT_TIMEOUT",
    "Deliveries",
    "ForbiddenError",
    "InternalServerError",
    "InvalidRequestError",
    "Lms",
    "LmsClientError",
    "NotFoundError",
    "NotImplementedByProviderError",
    "PreconditionFailedError",
    "RateLimitedError",
    "RequestTimedOutError",
    "ResponseInfo",
    "ResponseValidationError",
    "Retry",
    "ServerError",
    "TransportError",
    "UnauthorizedError",
    "UnprocessableEntityError",
    "response_info",
]

for _name in __all__:  # show the public names as lmsgate.client's own, as httpx does
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("lmsgate.client._"):
        _obj.__module__ = "lmsgate.client"
