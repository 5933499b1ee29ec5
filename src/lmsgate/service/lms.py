"""The unified LMS use cases: pick the account's connector and run the operation.

This is where cross-cutting write behaviour belongs (idempotency keys, asynchronous
delivery, fallback when a provider is down). Reads pass straight through to the connector.
"""

from __future__ import annotations

from typing import Any

from lmsgate.connectors.base import CallContext, Connector, WriteResult
from lmsgate.connectors.registry import ConnectorRegistry
from lmsgate.schema import (
    LmsCreateAssignmentRequestDto,
    LmsCreateCompletionRequestDto,
    LmsUpsertContentRequestDto,
)


class LmsService:
    def __init__(self, registry: ConnectorRegistry) -> None:
        self.registry = registry

    def connector(self, ctx: CallContext) -> Connector:
        return self.registry.for_account(ctx.account)

    async def create_completion(self, ctx: CallContext, user_id: str,
                                body: LmsCreateCompletionRequestDto) -> WriteResult:
        """Record a completion. Deprecated field names were already mapped by the schema."""
        return await self.connector(ctx).create_user_completion(ctx, user_id, body)

    async def create_assignment(self, ctx: CallContext, user_id: str,
                                body: LmsCreateAssignmentRequestDto) -> WriteResult:
        return await self.connector(ctx).create_user_assignment(ctx, user_id, body)

    async def upsert_content(self, ctx: CallContext, body: LmsUpsertContentRequestDto) -> WriteResult:
        return await self.connector(ctx).upsert_content(ctx, body)

    async def batch_upsert_content(self, ctx: CallContext,
                                   items: list[LmsUpsertContentRequestDto]) -> list[WriteResult]:
        if not items:
            return []
        return await self.connector(ctx).batch_upsert_content(ctx, items)

    async def call(self, ctx: CallContext, operation: str, *args: Any) -> Any:
        """Run any other operation by name (reads, deletes, extensions)."""
        return await getattr(self.connector(ctx), operation)(ctx, *args)
