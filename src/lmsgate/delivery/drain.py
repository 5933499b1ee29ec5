"""Draining one account: send its due deliveries to the provider, within the account's limits.

:meth:`Drainer.drain` is the unit of work both runners schedule: the embedded runner
(:mod:`lmsgate.delivery.embedded`) in the ``lmsgate serve`` process, and procrastinate's job
``lmsgate.deliver_account`` in ``lmsgate worker`` processes (:mod:`lmsgate.delivery.jobs`). Both
guarantee that one account is drained by one drainer at a time, anywhere; that is what makes
the account's concurrency limit, its rate limit and the ordering of its writes hold across
workers, and what lets a drainer treat deliveries left ``delivering`` as orphans of a dead
worker.

A drain claims due deliveries in rounds of a few times the concurrency limit, sends them with
at most ``concurrency`` in flight and paced to ``rate`` per second, writes every outcome in one
transaction per round, and stops when nothing is due, when the provider fails (the account is
paused), or after ``budget`` seconds so other accounts get their turn. It returns when it wants
to run again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread

from lmsgate.connectors.base import CallContext
from lmsgate.connectors.registry import ConnectorRegistry
from lmsgate.delivery.operations import OPERATIONS
from lmsgate.delivery.policy import DeliveryPolicy, Failure, classify
from lmsgate.settings import Settings
from lmsgate.store.deliveries import DeliveryStore, Outcome
from lmsgate.store.tenancy import Account, Tenancy

log = logging.getLogger("lmsgate.delivery")

ROUND_FACTOR = 4
"""A round claims this many deliveries per allowed concurrent call."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class RateBucket:
    """A token bucket of ``rate`` calls per second (burst: one second's worth), kept in the
    database between drains so the rate holds whichever worker drains the account next."""

    def __init__(self, rate: float, tokens: float | None, at: float | None) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        now = time.time()
        self.tokens = self.capacity if tokens is None else tokens
        self.at = now if at is None else min(at, now)

    async def take(self) -> None:
        if self.rate <= 0:
            return
        now = time.time()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= 1.0
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


class Drainer:
    def __init__(self, *, store: DeliveryStore, tenancy: Tenancy, registry: ConnectorRegistry,
                 settings: Settings) -> None:
        self.store = store
        self.tenancy = tenancy
        self.registry = registry
        self.settings = settings

    async def drain(self, account_id: str, budget: float = 5.0) -> float | None:
        """Deliver the account's due deliveries. Returns the seconds until the account should
        be drained again (0: at once, more is due), or None when nothing is pending."""
        account = await anyio.to_thread.run_sync(self.tenancy.get_account, account_id)
        if account is None or account.status != "active":
            return None  # a disabled account keeps its deliveries until it is enabled again
        state = await anyio.to_thread.run_sync(self.store.state, account_id)
        policy = DeliveryPolicy.for_account(self.settings, state.settings)
        await anyio.to_thread.run_sync(self.store.reset_orphans, account_id, utcnow())
        if state.paused_until is not None and state.paused_until > utcnow():
            return (state.paused_until - utcnow()).total_seconds()

        bucket = RateBucket(policy.rate, state.tokens, state.tokens_at)
        failures, paused_until = state.failures, None
        deadline = time.monotonic() + budget
        more = False
        while paused_until is None:
            if time.monotonic() >= deadline:
                more = True
                break
            claimed = await anyio.to_thread.run_sync(self.store.claim, account_id, utcnow(),
                                                     policy.concurrency * ROUND_FACTOR)
            if not claimed:
                break
            outcomes, failure, delivered, unsent = await self._round(account, claimed, policy, bucket)
            await anyio.to_thread.run_sync(self.store.record, outcomes)
            if unsent:
                await anyio.to_thread.run_sync(self.store.release, unsent, utcnow())
            if failure is not None:
                failures += 1
                wait = policy.pause(failures, failure.retry_after)
                paused_until = utcnow() + timedelta(seconds=wait)
                log.warning("deliveries of account %s paused for %.1f s: the provider answered %s (%d failing "
                            "round(s) in a row)", account_id, wait, failure.status, failures)
            elif delivered:
                failures = 0
        await anyio.to_thread.run_sync(lambda: self.store.save_state(
            account_id, paused_until=paused_until, failures=failures, tokens=bucket.tokens,
            tokens_at=bucket.at, now=utcnow()))
        if paused_until is not None:
            return max(0.0, (paused_until - utcnow()).total_seconds())
        if more:
            return 0.0
        due = await anyio.to_thread.run_sync(self.store.next_due, account_id)
        return None if due is None else max(0.0, (due - utcnow()).total_seconds())

    async def _round(self, account: Account, claimed: list[dict[str, Any]], policy: DeliveryPolicy,
                     bucket: RateBucket) -> tuple[list[Outcome], Failure | None, int, list[int]]:
        outcomes: list[Outcome] = []
        unsent: list[int] = []
        first_failure: list[Failure] = []
        gate = asyncio.Semaphore(policy.concurrency)

        async def one(row: dict[str, Any]) -> None:
            async with gate:
                if first_failure:  # the provider failed meanwhile: leave the rest for after the pause
                    unsent.append(row["seq"])
                    return
                await bucket.take()
                outcome, failure = await self._attempt(account, row, policy)
                outcomes.append(outcome)
                if failure is not None and failure.transient and not first_failure:
                    first_failure.append(failure)

        await asyncio.gather(*(one(row) for row in claimed))
        delivered = sum(1 for o in outcomes if o.outcome == "delivered")
        return outcomes, (first_failure[0] if first_failure else None), delivered, unsent

    async def _attempt(self, account: Account, row: dict[str, Any],
                       policy: DeliveryPolicy) -> tuple[Outcome, Failure | None]:
        started = utcnow()
        number, round_number = row["attempts"] + 1, row["round_attempts"] + 1
        op = OPERATIONS.get(row["operation"])
        try:
            if op is None:
                raise LookupError(f"unknown operation {row['operation']!r}")
            args, body = op.load(row["request"])
            connector = self.registry.for_account(account)  # one per attempt: sessions hold per-call state
            result = await op.call(connector, CallContext(account=account), args, body)
        except Exception as exc:
            failure = classify(exc)
            if failure.status == 500 and not failure.error.get("provider_errors"):
                log.exception("delivery %s of account %s failed inside lmsgate", row["id"], account.id)
            finished = utcnow()
            age = (finished - row["round_started_at"]).total_seconds()
            if not failure.transient:
                kind, next_at = "dead", None
            elif round_number >= policy.max_attempts or age >= policy.max_age:
                kind, next_at = "dead", None
                failure.error["gave_up"] = (f"{round_number} attempts" if round_number >= policy.max_attempts
                                            else f"still failing after {age:.0f} s")
            else:
                wait = max(policy.backoff(round_number), failure.retry_after or 0.0)
                kind, next_at = "retry", finished + timedelta(seconds=wait)
            return Outcome(seq=row["seq"], number=number, round_attempts=round_number, started_at=started,
                           finished_at=finished, outcome=kind, status=failure.status, error=failure.error,
                           next_attempt_at=next_at), failure
        status = 200 if row["method"] == "DELETE" else 201
        return Outcome(seq=row["seq"], number=number, round_attempts=round_number, started_at=started,
                       finished_at=utcnow(), outcome="delivered", status=status, error=None,
                       result=result), None
