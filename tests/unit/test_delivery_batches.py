"""How a drain round sends deliveries in batches (``lmsgate.delivery.drain``), with a fake
connector: one call per batch within the account's limits, and a batch the provider refuses as
a whole sent again item by item, so that only the faulty delivery is dead-lettered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from lmsgate.connectors.base import Connector, WriteResult
from lmsgate.connectors.local import LocalConnector
from lmsgate.connectors.xapi import XapiConnector
from lmsgate.delivery.drain import Drainer, RateBucket
from lmsgate.delivery.operations import OPERATIONS
from lmsgate.delivery.policy import DeliveryPolicy
from lmsgate.errors import BadRequest, ProviderFailure

CREATE = OPERATIONS["create_user_completion"]


class FakeLrs(Connector):
    provider = "fake"

    def __init__(self, bad: set[str], down: bool = False) -> None:
        self.bad, self.down = bad, down
        self.calls: list[list[str]] = []
        self.in_flight = self.most_in_flight = 0

    async def _call(self, users: list[str]) -> None:
        self.calls.append(users)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.in_flight -= 1
        if self.down:
            raise ProviderFailure("down", status=502)
        if self.bad & set(users):  # all or nothing, as an xAPI statement batch
            raise BadRequest("refused")

    async def create_user_completion(self, ctx: Any, user_id: str, body: Any) -> WriteResult:
        await self._call([user_id])
        return WriteResult(id=user_id, remote_id=user_id)

    async def create_user_completion_batch(self, ctx: Any, items: Any) -> list[WriteResult]:
        await self._call([user for user, _ in items])
        return [WriteResult(id=user, remote_id=user) for user, _ in items]


def _rows(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{"seq": i, "id": f"d{i}", "operation": "create_user_completion", "method": "POST",
             "request": {"args": [f"u{i}"], "body": {"learning_object_external_reference": "x",
                                                     "completed_at": "2024-01-01T00:00:00Z"}},
             "attempts": 0, "round_attempts": 0, "round_started_at": now} for i in range(n)]


def _round(connector: FakeLrs, n: int, policy: DeliveryPolicy) -> tuple[list[Any], Any]:
    registry = SimpleNamespace(for_account=lambda account: connector)
    drainer = Drainer(store=None, tenancy=None, registry=registry, settings=None)  # type: ignore[arg-type]
    account = SimpleNamespace(id="acc", provider="fake")
    outcomes, failure, _, unsent = asyncio.run(drainer._round(
        account, _rows(n), policy, RateBucket(0, None, None),  # type: ignore[arg-type]
        frozenset({"create_user_completion"}), policy.batch_size))
    assert not unsent or failure is not None
    return sorted(outcomes, key=lambda o: o.seq), failure


def test_only_connectors_with_a_batch_method_batch() -> None:
    assert CREATE.batches(XapiConnector)
    assert not CREATE.batches(LocalConnector)  # its create_user_completions is per item: not a batch


def test_a_round_sends_batches_within_the_concurrency_limit() -> None:
    lrs = FakeLrs(bad=set())
    outcomes, failure = _round(lrs, 100, DeliveryPolicy(concurrency=2, batch_size=25))
    assert failure is None and {o.outcome for o in outcomes} == {"delivered"}
    assert sorted(len(c) for c in lrs.calls) == [25, 25, 25, 25] and lrs.most_in_flight <= 2
    assert outcomes[7].result == {"id": "u7", "remote_id": "u7"}


def test_a_refused_batch_is_sent_again_one_by_one() -> None:
    lrs = FakeLrs(bad={"u3"})
    outcomes, failure = _round(lrs, 10, DeliveryPolicy(concurrency=3, batch_size=5))
    assert failure is None
    assert [o.seq for o in outcomes if o.outcome == "dead"] == [3]
    assert outcomes[3].status == 400 and outcomes[3].number == 1  # the refused batch is no attempt
    assert {o.outcome for o in outcomes if o.seq != 3} == {"delivered"}
    assert sorted(len(c) for c in lrs.calls) == [1, 1, 1, 1, 1, 5, 5] and lrs.most_in_flight <= 3


def test_a_passing_failure_is_every_items_and_pauses_the_account() -> None:
    lrs = FakeLrs(bad=set(), down=True)
    outcomes, failure = _round(lrs, 4, DeliveryPolicy(concurrency=1, batch_size=4))
    assert failure is not None and failure.status == 502
    assert [o.outcome for o in outcomes] == ["retry"] * 4 and len(lrs.calls) == 1
    assert len({id(o.error) for o in outcomes}) == 4  # each its own error (giving up edits it)


def test_a_write_waiting_behind_one_in_backoff_is_not_due(tmp_path: Any) -> None:
    """``next_due`` skips a due write held back by an older write of its ordering key that waits
    for its retry: else the drain would be asked to run again at once, over and over."""
    from datetime import timedelta

    from lmsgate.store.db import create_db_engine, upgrade
    from lmsgate.store.deliveries import DeliveryStore

    engine = create_db_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(engine)
    store = DeliveryStore(engine)
    now = datetime.now(UTC)
    later = now + timedelta(minutes=10)

    def row(n: int, due: datetime) -> dict[str, Any]:
        return {"id": f"d{n}", "project_id": "p", "account_id": "acc", "operation": "create_user_completion",
                "method": "POST", "path": "/x", "request": {}, "ordering_key": "k", "status": "pending",
                "attempts": 0, "round_attempts": 0, "round_started_at": now, "next_attempt_at": due,
                "created_at": now, "updated_at": now}

    store.add([row(1, later), row(2, now)])  # the first waits for its retry; the second is behind it
    assert store.claim("acc", now, 10) == []
    assert store.next_due("acc") == later
    assert store.queue_depth() == 2
    engine.dispose()
