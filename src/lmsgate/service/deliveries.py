"""Background delivery, seen from the API: accept a write as a delivery, show, retry, configure.

A write accepted asynchronously is stored durably first (group-committed with the writes
arriving at the same moment, so an answered 202 is on disk), then its account is woken: by
the embedded runner in ``lmsgate serve``, or by a procrastinate job for ``lmsgate worker``
processes (see :mod:`lmsgate.delivery`). ``waker`` is set by whichever runs in this process;
without one (a CLI process) deliveries wait for the workers' sweep.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from pydantic import BaseModel

from lmsgate.connectors.base import CallContext
from lmsgate.delivery.operations import OPERATIONS
from lmsgate.delivery.policy import ACCOUNT_SETTINGS, DeliveryPolicy, classify
from lmsgate.errors import Conflict, LmsGateError, NotFound
from lmsgate.ids import new_id
from lmsgate.schema.types import format_datetime
from lmsgate.settings import Settings
from lmsgate.store.deliveries import DELIVERED, DELIVERING, PENDING, DeliveryFilter, DeliveryStore
from lmsgate.store.group_commit import GroupCommitter

Waker = Callable[[Iterable[str]], Awaitable[None]]
_SETTINGS_CACHE_SECONDS = 2.0


@dataclass(slots=True)
class Deferred:
    """A write kept as a delivery instead of being answered now (HTTP 202)."""

    delivery: dict[str, Any]
    requested: bool
    """True for ``Prefer: respond-async``; False when ``fallback_to_async`` kept it."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(value: datetime | None) -> str | None:
    return format_datetime(value) if value is not None else None


def delivery_view(row: dict[str, Any], attempts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A delivery in lmsgate's JSON names (``GET /deliveries``)."""
    out: dict[str, Any] = {
        "id": row["id"], "account_id": row["account_id"], "operation": row["operation"],
        "method": row["method"], "path": row["path"], "status": row["status"],
        "attempt_count": row["attempts"],
        "next_attempt_at": _ts(row["next_attempt_at"]) if row["status"] == PENDING else None,
        "created_at": _ts(row["created_at"]), "updated_at": _ts(row["updated_at"]),
        "delivered_at": _ts(row["delivered_at"]),
        "result": row["result"], "last_error": row["last_error"], "request": row["request"],
    }
    if attempts is not None:
        out["attempts"] = [{
            "number": at["number"], "started_at": _ts(at["started_at"]), "finished_at": _ts(at["finished_at"]),
            "outcome": at["outcome"], "status": at["status"], "error": at["error"],
        } for at in attempts]
    return out


class DeliveryService:
    def __init__(self, store: DeliveryStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.waker: Waker | None = None
        self._committer: GroupCommitter[dict[str, Any], None] = GroupCommitter(store.add)
        self._settings_cache: dict[str, tuple[dict[str, Any], float]] = {}

    # ------------------------------------------------------------ accepting writes

    async def enqueue(self, ctx: CallContext, operation: str, args: tuple[str, ...], body: BaseModel | None,
                      *, path: str, failure: LmsGateError | None = None, started: datetime | None = None
                      ) -> Deferred:
        """Store the write as a delivery and wake its account. With ``failure`` (the synchronous
        attempt that failed, for ``fallback_to_async``) that attempt is recorded as the first."""
        op = OPERATIONS[operation]
        now = utcnow()
        row: dict[str, Any] = {
            "id": new_id(), "project_id": ctx.account.project_id, "account_id": ctx.account.id,
            "operation": operation, "method": op.method, "path": path, "request": op.dump(args, body),
            "ordering_key": op.ordering(args, body), "status": PENDING, "attempts": 0, "round_attempts": 0,
            "round_started_at": now, "next_attempt_at": now, "created_at": now, "updated_at": now,
            "delivered_at": None, "result": None, "last_error": None,
        }
        if failure is None:
            await self._committer.submit(row)
        else:
            fail = classify(failure)
            row.update(attempts=1, round_attempts=1, last_error=fail.error)
            attempt = {"number": 1, "account_id": ctx.account.id, "started_at": started or now,
                       "finished_at": now, "outcome": "retry", "status": fail.status, "error": fail.error}
            await anyio.to_thread.run_sync(self.store.add_with_attempt, row, attempt)
        if self.waker is not None:
            await self.waker([ctx.account.id])
        return Deferred(delivery=row, requested=failure is None)

    def account_settings(self, account_id: str) -> dict[str, Any]:
        """The account's own delivery settings (overrides), cached for a moment."""
        cached = self._settings_cache.get(account_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        value = self.store.settings(account_id)
        if len(self._settings_cache) > 10_000:
            self._settings_cache.clear()
        self._settings_cache[account_id] = (value, time.monotonic() + _SETTINGS_CACHE_SECONDS)
        return value

    async def falls_back(self, account_id: str) -> bool:
        """Whether the account keeps writes the provider failed on (``fallback_to_async``)."""
        overrides = await anyio.to_thread.run_sync(self.account_settings, account_id)
        return bool(overrides.get("fallback_to_async"))

    # ------------------------------------------------------------ settings API

    def effective_settings(self, account_id: str) -> dict[str, Any]:
        overrides = self.store.settings(account_id)
        policy = DeliveryPolicy.for_account(self.settings, overrides)
        return {
            "fallback_to_async": bool(overrides.get("fallback_to_async", False)),
            "max_concurrency": policy.concurrency,
            "max_requests_per_second": policy.rate or None,
            "max_attempts": policy.max_attempts,
            "max_age_seconds": policy.max_age,
            "overrides": {k: overrides[k] for k in ACCOUNT_SETTINGS if k in overrides},
        }

    def update_settings(self, account_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the account's overrides; a value of None removes the override."""
        current = dict(self.store.settings(account_id))
        for name, value in changes.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        self.store.save_settings(account_id, current, utcnow())
        self._settings_cache.pop(account_id, None)
        return self.effective_settings(account_id)

    # ------------------------------------------------------------ the Delivery API

    def get(self, project_id: str, delivery_id: str) -> dict[str, Any]:
        row = self.store.get(project_id, delivery_id)
        if row is None:
            raise NotFound(f"id: delivery {delivery_id} not found")
        return delivery_view(row, self.store.attempts_of(row["seq"]))

    def list(self, project_id: str, where: DeliveryFilter, after_seq: int | None,
             page_size: int) -> tuple[list[dict[str, Any]], int | None]:
        rows = self.store.list(project_id, where, after_seq, page_size + 1)
        more = len(rows) > page_size
        rows = rows[:page_size]
        return [delivery_view(r) for r in rows], (rows[-1]["seq"] if more and rows else None)

    async def retry(self, project_id: str, delivery_id: str) -> dict[str, Any]:
        row = await anyio.to_thread.run_sync(self.store.get, project_id, delivery_id)
        if row is None:
            raise NotFound(f"id: delivery {delivery_id} not found")
        if row["status"] == DELIVERED:
            raise Conflict(f"id: delivery {delivery_id} was already delivered")
        if row["status"] == DELIVERING:
            raise Conflict(f"id: delivery {delivery_id} is being delivered right now")
        done = await anyio.to_thread.run_sync(
            lambda: self.store.retry(project_id, DeliveryFilter(), utcnow(), delivery_id=delivery_id))
        if not done:
            raise Conflict(f"id: delivery {delivery_id} changed meanwhile; read it again")
        await self._wake({account for _, account in done})
        return await anyio.to_thread.run_sync(self.get, project_id, delivery_id)

    async def retry_many(self, project_id: str, where: DeliveryFilter) -> int:
        done = await anyio.to_thread.run_sync(lambda: self.store.retry(project_id, where, utcnow()))
        await self._wake({account for _, account in done})
        return len(done)

    async def _wake(self, accounts: set[str]) -> None:
        if self.waker is not None and accounts:
            await self.waker(accounts)
