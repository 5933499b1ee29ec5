"""Draining one account: send its due deliveries to the provider, within the account's limits.

:meth:`Drainer.drain` is the unit of work both runners schedule: the embedded runner
(:mod:`lmsgate.delivery.embedded`) in the ``lmsgate serve`` process, and procrastinate's job
``lmsgate.deliver_account`` in ``lmsgate worker`` processes (:mod:`lmsgate.delivery.jobs`). Both
guarantee that one account is drained by one drainer at a time, anywhere; that is what makes
the account's concurrency limit, its rate limit and the ordering of its writes hold across
workers, and what lets a drainer treat deliveries left ``delivering`` as orphans of a dead
worker.

A drain claims due deliveries in rounds of a few times the concurrency limit, sends them with
at most ``concurrency`` provider calls in flight and paced to ``rate`` calls per second, writes
every outcome in one transaction per round, and stops when nothing is due, when the provider
fails (the account is paused), or after ``budget`` seconds so other accounts get their turn. It
returns when it wants to run again.

Where the account's connector writes an operation in batches (xAPI: many statements in one
``POST``), a round claims ``concurrency × batch_size`` deliveries and sends them ``batch_size``
to a call; a call counts once for the limits. With a rate limit, a round holds about a second's
worth of calls (outcomes are written per round: a worker killed mid-round sends at most that
again). A batch the provider refuses as a whole for a permanent reason (one invalid item
spoils an xAPI batch) is sent again item by item, so only the faulty delivery is
dead-lettered; a passing failure (5xx, 429, timeout) is every item's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread

from lmsgate.connectors.base import CallContext
from lmsgate.connectors.registry import ConnectorRegistry
from lmsgate.delivery.operations import OPERATIONS
from lmsgate.delivery.policy import DeliveryPolicy, Failure, classify
from lmsgate.errors import LmsGateError
from lmsgate.settings import Settings
from lmsgate.store.deliveries import DeliveryStore, Outcome
from lmsgate.store.tenancy import Account, Tenancy

log = logging.getLogger("lmsgate.delivery")

ROUND_FACTOR = 4
"""A round claims this many deliveries per allowed concurrent call (one batch each where the
connector sends batches), and no more than about a second's worth at the account's rate."""


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

        batching = self._batching(account)
        per_call = policy.batch_size if batching else 1
        calls = policy.concurrency * (1 if per_call > 1 else ROUND_FACTOR)
        if policy.rate > 0:  # about a second's worth: outcomes are recorded per round
            calls = min(calls, math.ceil(policy.rate))
        round_size = calls * per_call
        bucket = RateBucket(policy.rate, state.tokens, state.tokens_at)
        failures, paused_until = state.failures, None
        deadline = time.monotonic() + budget
        more = False
        while paused_until is None:
            if time.monotonic() >= deadline:
                more = True
                break
            claimed = await anyio.to_thread.run_sync(self.store.claim, account_id, utcnow(), round_size)
            if not claimed:
                break
            outcomes, failure, delivered, unsent = await self._round(account, claimed, policy, bucket,
                                                                     batching, per_call)
            await anyio.to_thread.run_sync(self.store.record, outcomes, account_id)
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

    def _batching(self, account: Account) -> frozenset[str]:
        """The operations the account's connector sends in batches."""
        try:
            cls = self.registry.connector_class(account.provider)
        except LmsGateError:
            return frozenset()  # no connector: every attempt fails on its own, and says why
        return frozenset(name for name, op in OPERATIONS.items() if op.batches(cls))

    async def _round(self, account: Account, claimed: list[dict[str, Any]], policy: DeliveryPolicy,
                     bucket: RateBucket, batching: frozenset[str] = frozenset(),
                     per_call: int = 1) -> tuple[list[Outcome], Failure | None, int, list[int]]:
        outcomes: list[Outcome] = []
        unsent: list[int] = []
        first_failure: list[Failure] = []
        gate = asyncio.Semaphore(policy.concurrency)

        async def call(rows: list[dict[str, Any]]) -> None:
            async with gate:
                if first_failure:  # the provider failed meanwhile: leave the rest for after the pause
                    unsent.extend(row["seq"] for row in rows)
                    return
                await bucket.take()
                if len(rows) == 1:
                    results = [await self._attempt(account, rows[0], policy)]
                else:
                    results = await self._attempt_batch(account, rows, policy)
            if results is None:  # refused as a whole: send each on its own to learn which one it was
                await asyncio.gather(*(call([row]) for row in rows))
                return
            for outcome, failure in results:
                outcomes.append(outcome)
                if failure is not None and failure.transient and not first_failure:
                    first_failure.append(failure)

        calls: list[list[dict[str, Any]]] = []
        open_batch: dict[str, list[dict[str, Any]]] = {}
        for row in claimed:  # oldest first; one ordering key appears once per claim
            if row["operation"] not in batching:
                calls.append([row])
                continue
            batch = open_batch.get(row["operation"])
            if batch is None or len(batch) >= per_call:
                batch = open_batch[row["operation"]] = []
                calls.append(batch)
            batch.append(row)
        await asyncio.gather(*(call(rows) for rows in calls))
        delivered = sum(1 for o in outcomes if o.outcome == "delivered")
        return outcomes, (first_failure[0] if first_failure else None), delivered, unsent

    async def _attempt(self, account: Account, row: dict[str, Any],
                       policy: DeliveryPolicy) -> tuple[Outcome, Failure | None]:
        started = utcnow()
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
            return self._failed(row, started, failure, policy), failure
        return self._delivered(row, started, result), None

    async def _attempt_batch(self, account: Account, rows: list[dict[str, Any]],
                             policy: DeliveryPolicy) -> list[tuple[Outcome, Failure | None]] | None:
        """One provider call for ``rows`` (one operation). None when the provider refused the
        batch as a whole for a reason that is not passing: the caller sends each on its own."""
        started = utcnow()
        op = OPERATIONS[rows[0]["operation"]]
        try:
            items = [op.load(row["request"]) for row in rows]
        except (ValueError, TypeError, LookupError):  # pydantic's ValidationError is a ValueError
            return None  # a delivery that no longer loads: its own attempt records why
        try:
            connector = self.registry.for_account(account)
            results = await op.call_many(connector, CallContext(account=account), items)
        except Exception as exc:
            failure = classify(exc)
            if not failure.transient:
                return None
            if failure.status == 500 and not failure.error.get("provider_errors"):
                log.exception("a batch of %d deliveries of account %s failed inside lmsgate", len(rows),
                              account.id)
            out = []
            for row in rows:  # each its own copy: giving up adds to a delivery's error
                mine = dataclasses.replace(failure, error=dict(failure.error))
                out.append((self._failed(row, started, mine, policy), mine))
            return out
        return [(self._delivered(row, started, result), None) for row, result in zip(rows, results, strict=True)]

    @staticmethod
    def _failed(row: dict[str, Any], started: datetime, failure: Failure, policy: DeliveryPolicy) -> Outcome:
        number, round_number = row["attempts"] + 1, row["round_attempts"] + 1
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
                       next_attempt_at=next_at)

    @staticmethod
    def _delivered(row: dict[str, Any], started: datetime, result: dict[str, Any]) -> Outcome:
        status = 200 if row["method"] == "DELETE" else 201
        return Outcome(seq=row["seq"], number=row["attempts"] + 1, round_attempts=row["round_attempts"] + 1,
                       started_at=started, finished_at=utcnow(), outcome="delivered", status=status, error=None,
                       result=result)
