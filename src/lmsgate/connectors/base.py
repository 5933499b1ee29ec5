"""The connector protocol: what every provider implementation offers the service layer.

A connector turns unified requests into a provider's calls and the answers back into the
unified model. Every operation of the unified LMS API is a method here. The base class
answers each one with :class:`~lmsgate.errors.NotImplementedByProvider` (HTTP 501), so a
connector overrides only what its provider can really do, and :attr:`Connector.capabilities`
is derived from that, never written by hand.

Results are wire-ready dicts in the unified JSON names; lists return a :class:`ListResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lmsgate.connectors.spec import ConnectorSpec
from lmsgate.errors import LmsGateError, NotImplementedByProvider
from lmsgate.jsontext import loads as json_loads
from lmsgate.schema import (
    LmsCreateAssignmentRequestDto,
    LmsCreateCompletionRequestDto,
    LmsCreateContentRequestDto,
    LmsUpsertContentRequestDto,
    LmsUpsertCourseRequestDto,
    LmsUpsertUserRequestDto,
)
from lmsgate.store.pagination import PageRequest
from lmsgate.store.tenancy import Account

Wire = dict[str, Any]


@dataclass(slots=True)
class CallContext:
    """One unified call on one linked account."""

    account: Account
    want_raw: bool = False
    proxy: dict[str, Any] = field(default_factory=dict)
    raw: list[Wire] = field(default_factory=list)
    """Provider request/response log, returned to the caller when ``raw=true``."""
    respond_async: bool = False
    """The caller sent ``Prefer: respond-async``: writes are delivered in the background."""

    def log_raw(self, method: str, url: str, body: Any = None, response: Any = None) -> None:
        """Record a provider call. ``body`` and ``response`` may be zero-argument callables,
        evaluated only when the caller asked for ``raw=true`` (building them can be costly)."""
        if self.want_raw:
            self.raw.append({
                "method": method, "url": url,
                "body": body() if callable(body) else body,
                "response": response() if callable(response) else response,
            })


@dataclass(slots=True)
class ListResult:
    items: list[Wire]
    next_last_id: str | None
    """Id of the last item when more pages follow; the API layer turns it into a cursor."""
    total: int | None = None
    rendered: list[str] | None = None
    """The items as JSON texts instead, when the connector had them serialised already (the
    embedded LMS has its database do it); ``items`` is then empty. Read them with ``wire()``."""

    def wire(self) -> list[Wire]:
        """The items as JSON values, however the connector gave them."""
        if self.rendered is None:
            return self.items
        return [json_loads(text) for text in self.rendered]  # integers beyond 64 bits kept whole


@dataclass(slots=True)
class WriteResult:
    id: str | None
    remote_id: str | None
    created: bool = True
    external_reference: str | None = None


OPERATIONS: tuple[str, ...] = (
    "create_user_completion", "get_completion", "list_completions", "list_user_completions",
    "get_user_completion", "delete_user_completion",
    "create_user_assignment", "get_assignment", "list_assignments", "list_user_assignments",
    "get_user_assignment",
    "upsert_content", "batch_upsert_content", "update_content", "get_content", "list_content",
    "get_course", "list_courses", "upsert_course",
    "get_user", "list_users", "upsert_user",
    "get_category", "list_categories", "get_skill", "list_skills",
)


class Connector:
    """Base class: every operation answers 501 until a connector overrides it."""

    provider: ClassVar[str] = "base"
    spec: ClassVar[ConnectorSpec | None] = None
    """What the connector declares: auth, config fields, base URL, rate limit, mappings
    (:mod:`lmsgate.connectors.spec`). Checked when the connector is registered."""

    @classmethod
    def capabilities(cls) -> frozenset[str]:
        """The operations this connector overrides."""
        return frozenset(op for op in OPERATIONS if getattr(cls, op) is not getattr(Connector, op))

    def _unsupported(self, operation: str) -> NotImplementedByProvider:
        return NotImplementedByProvider(operation, self.provider)

    def check_write(self, operation: str, args: tuple[str, ...], body: Any) -> None:
        """Raise what this connector would refuse in ``body`` before any call to the provider
        (a :class:`~lmsgate.errors.BadRequest` naming the field). Run when a write is accepted
        for background delivery, so that such a write is refused at once, not dead-lettered."""

    async def verify(self, ctx: CallContext) -> str:
        """Make one cheap, real call with the account's credentials (``POST /accounts/{id}/test``).

        Returns what was checked, e.g. ``GET …/statements?limit=1``; raises the provider's
        error (mapped by the HTTP policy) when the call fails.
        """
        raise self._unsupported("verify")

    # completions
    async def create_user_completion(self, ctx: CallContext, user_id: str,
                                     body: LmsCreateCompletionRequestDto) -> WriteResult:
        raise self._unsupported("create_user_completion")

    async def get_completion(self, ctx: CallContext, completion_id: str) -> Wire:
        raise self._unsupported("get_completion")

    async def get_user_completion(self, ctx: CallContext, user_id: str, completion_id: str) -> Wire:
        raise self._unsupported("get_user_completion")

    async def list_completions(self, ctx: CallContext, page: PageRequest) -> ListResult:
        raise self._unsupported("list_completions")

    async def list_user_completions(self, ctx: CallContext, user_id: str, page: PageRequest) -> ListResult:
        raise self._unsupported("list_user_completions")

    async def delete_user_completion(self, ctx: CallContext, user_id: str, completion_id: str) -> None:
        raise self._unsupported("delete_user_completion")

    def completion_row_builder(self, ctx: CallContext) -> Callable[[Sequence[tuple[str, LmsCreateCompletionRequestDto]]], Any] | None:
        """For bulk imports: a picklable callable that turns validated ``(user_id, body)``
        items into what :meth:`create_bound_completions` stores, or None (the default) when
        the connector takes items only through :meth:`create_user_completions`. The import
        runs it in worker processes, beside the writes."""
        return None

    async def create_bound_completions(self, ctx: CallContext, rows: Any) -> list[WriteResult | LmsGateError]:
        """Store what :meth:`completion_row_builder` made; one outcome per row, as
        :meth:`create_user_completions` gives."""
        raise NotImplementedError(f"{self.provider} has no completion_row_builder")

    async def create_user_completions(
        self, ctx: CallContext, items: Sequence[tuple[str, LmsCreateCompletionRequestDto]]
    ) -> list[WriteResult | LmsGateError]:
        """Record many completions ``(user_id, body)`` (bulk import); one outcome per item, in order.

        Not a unified operation of its own: this default makes one :meth:`create_user_completion`
        call per item, so it works for every connector that supports that. A connector that
        can write many records at once overrides it. An item's error does not stop the others.
        """
        out: list[WriteResult | LmsGateError] = []
        for user_id, body in items:
            try:
                out.append(await self.create_user_completion(ctx, user_id, body))
            except NotImplementedByProvider:
                raise
            except LmsGateError as exc:
                out.append(exc)
        return out

    # assignments
    async def create_user_assignment(self, ctx: CallContext, user_id: str,
                                     body: LmsCreateAssignmentRequestDto) -> WriteResult:
        raise self._unsupported("create_user_assignment")

    async def get_assignment(self, ctx: CallContext, assignment_id: str) -> Wire:
        raise self._unsupported("get_assignment")

    async def get_user_assignment(self, ctx: CallContext, user_id: str, assignment_id: str) -> Wire:
        raise self._unsupported("get_user_assignment")

    async def list_assignments(self, ctx: CallContext, page: PageRequest) -> ListResult:
        raise self._unsupported("list_assignments")

    async def list_user_assignments(self, ctx: CallContext, user_id: str, page: PageRequest) -> ListResult:
        raise self._unsupported("list_user_assignments")

    # content
    async def upsert_content(self, ctx: CallContext, body: LmsUpsertContentRequestDto) -> WriteResult:
        raise self._unsupported("upsert_content")

    async def batch_upsert_content(self, ctx: CallContext,
                                   items: list[LmsUpsertContentRequestDto]) -> list[WriteResult | LmsGateError]:
        """One outcome per item, in order: its result, or the error that refused that item alone."""
        raise self._unsupported("batch_upsert_content")

    async def update_content(self, ctx: CallContext, content_id: str,
                             body: LmsCreateContentRequestDto) -> None:
        raise self._unsupported("update_content")

    async def get_content(self, ctx: CallContext, content_id: str) -> Wire:
        raise self._unsupported("get_content")

    async def list_content(self, ctx: CallContext, page: PageRequest) -> ListResult:
        raise self._unsupported("list_content")

    # courses
    async def get_course(self, ctx: CallContext, course_id: str) -> Wire:
        raise self._unsupported("get_course")

    async def list_courses(self, ctx: CallContext, page: PageRequest) -> ListResult:
        raise self._unsupported("list_courses")

    async def upsert_course(self, ctx: CallContext, body: LmsUpsertCourseRequestDto) -> WriteResult:
        raise self._unsupported("upsert_course")

    # users
    async def get_user(self, ctx: CallContext, user_id: str) -> Wire:
        raise self._unsupported("get_user")

    async def list_users(self, ctx: CallContext, page: PageRequest) -> ListResult:
        raise self._unsupported("list_users")

    async def upsert_user(self, ctx: CallContext, user_id: str, body: LmsUpsertUserRequestDto) -> WriteResult:
        raise self._unsupported("upsert_user")

    # taxonomy
    async def get_category(self, ctx: CallContext, category_id: str) -> Wire:
        raise self._unsupported("get_category")

    async def list_categories(self, ctx: CallContext, page: PageRequest) -> ListResult:
        raise self._unsupported("list_categories")

    async def get_skill(self, ctx: CallContext, skill_id: str) -> Wire:
        raise self._unsupported("get_skill")

    async def list_skills(self, ctx: CallContext, page: PageRequest) -> ListResult:
        raise self._unsupported("list_skills")
