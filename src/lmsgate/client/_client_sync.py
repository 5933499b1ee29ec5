"""The synchronous client: connection, authentication, retries.

Generated from ``_client_async.py`` by ``scripts/unasync.py``: do not edit, edit that file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from lmsgate.client import _request as r
from lmsgate.client._deliveries_sync import Deliveries
from lmsgate.client._exceptions import ClientTimeoutError, InvalidRequestError, TransportError
from lmsgate.client._lms_sync import Lms
from lmsgate.client._retry import Retry

DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(90.0, connect=10.0)
"""StackOne gives a request 60 s with the provider; the read timeout leaves room for that."""


class Client:
    """A client of a StackOne-compatible unified LMS API: lmsgate, or StackOne itself.

    Example::

        with Client("lmsg_…", server_url="http://127.0.0.1:8000",
                               account_id="01…") as client:
            created = client.lms.create_user_completion(
                "learner-42", {"learning_object_external_reference": "course-1"})
            for completion in client.lms.iter_completions():
                print(completion.id)

    Args:
        api_key: the API key, sent as the HTTP Basic user name. Default: ``LMSGATE_API_KEY``.
        server_url: the API's base URL; a path prefix is kept. Default: ``LMSGATE_SERVER_URL``,
            else ``http://127.0.0.1:8000``. For StackOne: ``https://api.stackone.com``.
        account_id: the linked account every call of ``client.lms`` acts on, unless a call
            names another (``client.deliveries`` needs none).
        retry: when to send a request again (:class:`Retry`); default ``Retry()``.
        timeout: seconds, or an ``httpx.Timeout``, for each attempt.
        headers: extra headers sent with every request.
        http_client: an ``httpx.Client`` of your own (proxies, custom transport, …).
            It is not closed by this client.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        server_url: str | None = None,
        account_id: str | None = None,
        retry: Retry | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get("LMSGATE_API_KEY")
        self.server_url = (server_url or os.environ.get("LMSGATE_SERVER_URL") or DEFAULT_SERVER_URL).rstrip("/")
        self.account_id = account_id
        self.retry = retry or Retry()
        self._headers = dict(headers or {})
        self._http = http_client or httpx.Client(timeout=timeout)
        self._owns_http = http_client is None
        self.lms = Lms(self)
        """The unified LMS operations (``client.lms.create_user_completion(…)``, …)."""
        self.deliveries = Deliveries(self)
        """lmsgate's Delivery API: follow, list and retry writes delivered in the background
        (``client.deliveries.get_delivery(…)``, …). lmsgate only; not on StackOne."""

    def close(self) -> None:
        """Close the connections (not those of an ``http_client`` passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def _headers_for(self, account_id: str | None, **kw: Any) -> dict[str, str]:
        return r.headers(self.api_key, account_id or self.account_id, extra=self._headers, **kw)

    def _send(self, call: r.Call[Any], retry: Retry | None) -> Any:
        """Send ``call``, retrying as the policy says, and read the answer."""
        policy = retry or self.retry
        url = self.server_url + call.path
        started = time.monotonic()
        retries = 0
        while True:
            try:
                response = self._http.request(
                    call.method, url, params=call.params, headers=call.headers, content=call.content
                )
            except (httpx.InvalidURL, UnicodeEncodeError) as exc:  # nothing was sent
                raise InvalidRequestError(f"{call.method} {url}: cannot be sent: {exc}") from exc
            except httpx.TransportError as exc:
                wait = policy.wait_after_error(exc, retries, time.monotonic() - started,
                                               repeatable=r.repeatable(call))
                if wait is None:
                    kind = ClientTimeoutError if isinstance(exc, httpx.TimeoutException) else TransportError
                    raise kind(f"{call.method} {url}: {type(exc).__name__}: {exc}", r.request_of(exc)) from exc
            else:
                wait = policy.wait_after(response, retries, time.monotonic() - started)
                if wait is None:
                    return r.read(response, call)
                response.close()
            time.sleep(wait)
            retries += 1
