"""The writes that can be delivered in the background, and how each is stored and replayed.

A delivery keeps the operation's name, its path arguments and its *validated* body (dumped to
JSON by the unified model), so the worker re-validates exactly what the API accepted and calls
the same connector method a synchronous request would have called.

Each write has an ordering key: writes with the same key are delivered one after the other,
in the order they were accepted. For completions and assignments that is the learner and the
learning object, so a correction posted after a first completion never overtakes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel

from lmsgate.connectors.base import CallContext, Connector, WriteResult
from lmsgate.schema import (
    LmsCreateAssignmentRequestDto,
    LmsCreateCompletionRequestDto,
    LmsCreateContentRequestDto,
    LmsUpsertContentRequestDto,
    LmsUpsertCourseRequestDto,
    LmsUpsertUserRequestDto,
)


def _key(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    method: str
    body_model: type[BaseModel] | None
    ordering: Callable[[tuple[str, ...], Any], str]
    """The ordering key from the path arguments and the body."""
    batch: str | None = None
    """The connector method that makes many of these writes in one provider call, for the
    connectors that have it: called with ``[(*args, body), …]``, it returns one result per
    item, or raises for all of them (see :meth:`call_many`)."""

    def batches(self, connector: type[Connector]) -> bool:
        return self.batch is not None and callable(getattr(connector, self.batch, None))

    def dump(self, args: tuple[str, ...], body: BaseModel | None) -> dict[str, Any]:
        return {"args": list(args),
                "body": body.model_dump(mode="json", exclude_unset=True) if body is not None else None}

    def load(self, request: dict[str, Any]) -> tuple[tuple[str, ...], BaseModel | None]:
        args = tuple(str(x) for x in request.get("args") or [])
        body = None
        if self.body_model is not None:
            body = self.body_model.model_validate_json(orjson.dumps(request.get("body") or {}))
        return args, body

    async def call(self, connector: Connector, ctx: CallContext, args: tuple[str, ...],
                   body: BaseModel | None) -> dict[str, Any]:
        """Run the write; returns what the delivery records as its result."""
        method = getattr(connector, self.name)
        result = await (method(ctx, *args, body) if self.body_model is not None else method(ctx, *args))
        return result_of(result)


    async def call_many(self, connector: Connector, ctx: CallContext,
                        items: list[tuple[tuple[str, ...], BaseModel | None]]) -> list[dict[str, Any]]:
        """Run several of these writes in one provider call (only where :meth:`batches`).

        All or nothing, as the provider judges the call: an exception is every item's outcome.
        """
        assert self.batch is not None
        results = await getattr(connector, self.batch)(ctx, [(*args, body) for args, body in items])
        if len(results) != len(items):
            raise RuntimeError(f"{self.batch} returned {len(results)} results for {len(items)} writes")
        return [result_of(r) for r in results]


def result_of(result: Any) -> dict[str, Any]:
    if isinstance(result, WriteResult):
        out: dict[str, Any] = {"id": result.id, "remote_id": result.remote_id}
        if result.external_reference is not None:
            out["external_reference"] = result.external_reference
        return out
    return {}


OPERATIONS: dict[str, Operation] = {op.name: op for op in (
    Operation("create_user_completion", "POST", LmsCreateCompletionRequestDto,
              lambda args, b: _key("learning-record", args[0], b.learning_object_external_reference),
              batch="create_user_completion_batch"),
    Operation("create_user_assignment", "POST", LmsCreateAssignmentRequestDto,
              lambda args, b: _key("learning-record", args[0], b.learning_object_external_reference)),
    Operation("delete_user_completion", "DELETE", None, lambda args, b: _key("completion", *args)),
    Operation("upsert_content", "PUT", LmsUpsertContentRequestDto,
              lambda args, b: _key("content", b.external_reference)),
    Operation("update_content", "PATCH", LmsCreateContentRequestDto, lambda args, b: _key("content-id", *args)),
    Operation("upsert_course", "PUT", LmsUpsertCourseRequestDto,
              lambda args, b: _key("course", b.external_reference)),
    Operation("upsert_user", "PUT", LmsUpsertUserRequestDto, lambda args, b: _key("user", *args)),
)}
"""Every write that ``Prefer: respond-async`` and ``fallback_to_async`` apply to. (The content
batch is not one: it already answers 202 with per-item results.)"""
