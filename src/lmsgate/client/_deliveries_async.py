"""lmsgate's Delivery API of the asynchronous client (``client.deliveries``).

``_deliveries_sync.py`` is generated from this file by ``scripts/unasync.py``; edit this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from lmsgate.client import _request as r
from lmsgate.client._exceptions import InvalidRequestError
from lmsgate.client._request import Accepted
from lmsgate.client._retry import Retry
from lmsgate.schema.deliveries import (
    DeliveriesPaginated,
    Delivery,
    DeliveryResult,
    DeliverySettingsPatch,
    DeliverySettingsResult,
    DeliveryStatus,
    RetryDeliveries,
    RetryDeliveriesResult,
)

if TYPE_CHECKING:
    from lmsgate.client._client_async import AsyncClient

Instant = datetime | str


class AsyncDeliveries:
    """Writes that lmsgate delivers in the background, and their attempts (lmsgate only).

    A write sent with ``prefer_async=True`` (``Prefer: respond-async``), or kept by an account's
    ``fallback_to_async`` while its provider is down, is answered 202 with an
    :class:`~lmsgate.client.Accepted` naming the delivery; these methods follow it, list the
    dead-letter list and send deliveries again. They are not part of StackOne's API.

    These routes act on the API key's project, not on one linked account: no ``account_id``
    is needed on the client (lists take ``account_id`` as a filter instead). Every method also
    takes ``retry`` (a :class:`~lmsgate.client.Retry` for this call only); the retries take
    ``idempotency_key`` as writes do.
    """

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _call(self, method: str, path: str, result: Any, *, params: list[tuple[str, str]] | None = None,
                    content: bytes | None = None, idempotency_key: str | None = None,
                    retry: Retry | None) -> Any:
        headers = self._client._headers_for(None, need_account=False, json_body=content is not None,
                                            idempotency_key=idempotency_key)
        call = r.Call(method, path, result, params=params or [], headers=headers, content=content)
        return await self._client._send(call, retry)

    async def list_deliveries(
        self, *, status: DeliveryStatus | None = None, account_id: str | None = None,
        created_after: Instant | None = None, created_before: Instant | None = None,
        updated_after: Instant | None = None, page_size: int | None = None, next: str | None = None,
        retry: Retry | None = None,
    ) -> DeliveriesPaginated:
        """One page of deliveries, oldest first (``GET /deliveries``).

        ``status`` is ``pending``, ``delivering``, ``delivered`` or ``dead`` (the dead-letter
        list); ``account_id`` keeps one linked account's; the instants bound when they were
        accepted (``created_…``) or last changed (``updated_after``). ``page_size``: 25 by
        default, at most 1,000; ``next``: the previous page's cursor.
        """
        params = r.query(flat={"status": status, "account_id": account_id, "created_after": created_after,
                               "created_before": created_before, "updated_after": updated_after},
                         page_size=page_size, next=next)
        return await self._call("GET", "/deliveries", DeliveriesPaginated, params=params,  # type: ignore[no-any-return]
                                retry=retry)

    async def iter_deliveries(
        self, *, status: DeliveryStatus | None = None, account_id: str | None = None,
        created_after: Instant | None = None, created_before: Instant | None = None,
        updated_after: Instant | None = None, page_size: int | None = None, retry: Retry | None = None,
    ) -> AsyncIterator[Delivery]:
        """Every matching delivery, page after page (see :meth:`list_deliveries`)."""
        cursor: str | None = None
        while True:
            page = await self.list_deliveries(status=status, account_id=account_id, created_after=created_after,
                                              created_before=created_before, updated_after=updated_after,
                                              page_size=page_size, next=cursor, retry=retry)
            for item in page.data:
                yield item
            cursor = page.next
            if not cursor:
                return

    async def get_delivery(self, delivery: str | Accepted, *, retry: Retry | None = None) -> DeliveryResult:
        """One delivery with every attempt so far (``GET /deliveries/{id}``).

        ``delivery`` is its id, or the :class:`~lmsgate.client.Accepted` a write answered.
        """
        return await self._call("GET", f"/deliveries/{r.segment(_delivery_id(delivery))}",  # type: ignore[no-any-return]
                                DeliveryResult, retry=retry)

    async def retry_delivery(self, delivery: str | Accepted, *, idempotency_key: str | None = None,
                             retry: Retry | None = None) -> DeliveryResult:
        """Send one delivery again (``POST /deliveries/{id}/retry``).

        A dead delivery is queued again with a fresh attempt budget; a pending one is tried at
        once. One already delivered, or being delivered now, raises
        :class:`~lmsgate.client.ConflictError`; an unknown id :class:`~lmsgate.client.NotFoundError`.
        """
        return await self._call("POST", f"/deliveries/{r.segment(_delivery_id(delivery))}/retry",  # type: ignore[no-any-return]
                                DeliveryResult, idempotency_key=idempotency_key, retry=retry)

    async def retry_deliveries(
        self, body: RetryDeliveries | Mapping[str, Any] | None = None, *,
        status: Literal["dead", "pending"] | None = None, account_id: str | None = None,
        created_after: Instant | None = None, created_before: Instant | None = None,
        idempotency_key: str | None = None, retry: Retry | None = None,
    ) -> RetryDeliveriesResult:
        """Send every matching delivery again at once (``POST /deliveries/retry``).

        By default the whole dead-letter list; narrow it with ``account_id`` and the
        ``created_…`` window, or pass ``status="pending"`` to skip the wait of pending ones.
        Give either a ``body`` or the keyword filters. ``result.data["retried"]`` counts them.
        """
        filters = {"status": status, "account_id": account_id, "created_after": created_after,
                   "created_before": created_before}
        given = {k: v for k, v in filters.items() if v is not None}
        if body is not None and given:
            raise InvalidRequestError("retry_deliveries: pass a body or keyword filters, not both")
        content = r.body(RetryDeliveries, body if body is not None else given)
        return await self._call("POST", "/deliveries/retry", RetryDeliveriesResult,  # type: ignore[no-any-return]
                                content=content, idempotency_key=idempotency_key, retry=retry)

    async def get_delivery_settings(self, account_id: str, *, retry: Retry | None = None) -> DeliverySettingsResult:
        """A linked account's delivery settings (``GET /accounts/{id}/delivery``)."""
        return await self._call("GET", f"/accounts/{r.segment(account_id)}/delivery",  # type: ignore[no-any-return]
                                DeliverySettingsResult, retry=retry)

    async def update_delivery_settings(
        self, account_id: str, body: DeliverySettingsPatch | Mapping[str, Any], *,
        idempotency_key: str | None = None, retry: Retry | None = None,
    ) -> DeliverySettingsResult:
        """Change a linked account's delivery settings (``PATCH /accounts/{id}/delivery``).

        Only the fields given change; a field given as None goes back to the default.
        """
        return await self._call("PATCH", f"/accounts/{r.segment(account_id)}/delivery",  # type: ignore[no-any-return]
                                DeliverySettingsResult, content=r.body(DeliverySettingsPatch, body),
                                idempotency_key=idempotency_key, retry=retry)


def _delivery_id(delivery: str | Accepted) -> str:
    if isinstance(delivery, Accepted):
        if delivery.delivery_id is None:
            raise InvalidRequestError("this Accepted answer names no delivery (no Location /deliveries/{id})")
        return delivery.delivery_id
    return delivery
