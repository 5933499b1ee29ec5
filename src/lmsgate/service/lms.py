"""The unified LMS use cases: pick the account's connector and run the operation.

This is where cross-cutting write behaviour belongs (idempotency keys, asynchronous
delivery, fallback when a provider is down). Reads pass straight through to the connector.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from lmsgate.connectors.base import CallContext, Connector, WriteResult
from lmsgate.connectors.registry import ConnectorRegistry
from lmsgate.delivery.operations import OPERATIONS
from lmsgate.errors import LmsGateError, NotImplementedByProvider, ProviderFailure
from lmsgate.schema import (
    LmsCreateAssignmentRequestDto,
    LmsCreateCompletionRequestDto,
    LmsUpsertContentRequestDto,
)

if TYPE_CHECKING:
    from lmsgate.service.deliveries import Deferred, DeliveryService


class LmsService:
    def __init__(self, registry: ConnectorRegistry, deliveries: DeliveryService | None = None) -> None:
        self.registry = registry
        self.deliveries = deliveries

    def connector(self, ctx: CallContext) -> Connector:
        return self.registry.for_account(ctx.account)

    async def create_completion(self, ctx: CallContext, user_id: str,
                                body: LmsCreateCompletionRequestDto) -> WriteResult:
        """Record a completion. Deprecated field names were already mapped by the schema."""
        return await self.connector(ctx).create_user_completion(ctx, user_id, body)

    async def submit(self, ctx: CallContext, operation: str, args: tuple[str, ...], body: BaseModel | None,
                     *, path: str) -> Any:
        """Run a write (one of :data:`~lmsgate.delivery.operations.OPERATIONS`) the way the caller
        and the account want it.

        * ``ctx.respond_async`` (``Prefer: respond-async``): the write is stored as a delivery
          and a :class:`~lmsgate.service.deliveries.Deferred` returned; nothing is sent now. An
          operation the connector cannot do is refused at once (501), and a body it would refuse
          (:meth:`~lmsgate.connectors.base.Connector.check_write`, 400), not dead-lettered later.
        * Otherwise it runs now and returns the connector's result, as StackOne does. When the
          provider is down past the request lifetime (408) or answered uselessly (502) and the
          account has ``fallback_to_async``, the write is kept as a delivery (that failed attempt
          recorded as its first) and a ``Deferred`` returned instead of the error.
        """
        connector = self.connector(ctx)
        if ctx.respond_async and self.deliveries is not None:
            if operation not in connector.capabilities():
                raise NotImplementedByProvider(operation, connector.provider)
            connector.check_write(operation, args, body)
            return await self.deliveries.enqueue(ctx, operation, args, body, path=path)
        started = datetime.now(timezone.utc)
        call = getattr(connector, operation)
        try:
            return await (call(ctx, *args, body) if OPERATIONS[operation].body_model else call(ctx, *args))
        except ProviderFailure as exc:
            if (exc.status not in (408, 502) or self.deliveries is None
                    or not await self.deliveries.falls_back(ctx.account.id)):
                raise
            return await self.deliveries.enqueue(ctx, operation, args, body, path=path, failure=exc,
                                                 started=started)

    async def create_completions(
        self, ctx: CallContext, items: Sequence[tuple[str, LmsCreateCompletionRequestDto]]
    ) -> list[WriteResult | LmsGateError]:
        """Record many completions ``(user_id, body)`` at once (``lmsgate completions import``).

        Same rules as :meth:`create_completion` for each item, including the repeat rule (same
        learner, learning object and ``completed_at``: the first record's id, nothing new
        stored). Returns one outcome per item, in order: its result, or the error that refused
        it. Errors that concern the whole call (account, connector, database) are raised.
        """
        if not items:
            return []
        return await self.connector(ctx).create_user_completions(ctx, items)

    def completion_row_builder(self, ctx: CallContext) -> Callable[[Sequence[tuple[str, LmsCreateCompletionRequestDto]]], Any] | None:
        """For :meth:`create_bound_completions`: what turns validated items into rows the
        connector stores at once, runnable in another process; None when the account's
        connector has none (then use :meth:`create_completions`)."""
        return self.connector(ctx).completion_row_builder(ctx)

    async def create_bound_completions(self, ctx: CallContext, rows: Any) -> list[WriteResult | LmsGateError]:
        """:meth:`create_completions` for items already turned into rows by
        :meth:`completion_row_builder` (the import does that in worker processes)."""
        if not rows:
            return []
        return await self.connector(ctx).create_bound_completions(ctx, rows)

    async def create_assignment(self, ctx: CallContext, user_id: str,
                                body: LmsCreateAssignmentRequestDto) -> WriteResult:
        return await self.connector(ctx).create_user_assignment(ctx, user_id, body)

    async def upsert_content(self, ctx: CallContext, body: LmsUpsertContentRequestDto) -> WriteResult:
        return await self.connector(ctx).upsert_content(ctx, body)

    async def batch_upsert_content(self, ctx: CallContext,
                                   items: list[LmsUpsertContentRequestDto]) -> list[WriteResult | LmsGateError]:
        """One outcome per item, in order: its result, or the error the store refused it with."""
        if not items:
            return []
        return await self.connector(ctx).batch_upsert_content(ctx, items)

    async def call(self, ctx: CallContext, operation: str, *args: Any) -> Any:
        """Run any other operation by name (reads, deletes, extensions)."""
        return await getattr(self.connector(ctx), operation)(ctx, *args)
