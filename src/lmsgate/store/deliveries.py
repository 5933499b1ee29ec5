"""All SQL for background deliveries, their attempts and the per-account delivery state.

Rows in, rows out; the rules (when to retry, when to give up) live in :mod:`lmsgate.delivery`.
Every method runs in its own transaction. The worker side (:meth:`DeliveryStore.claim`,
:meth:`DeliveryStore.record`) assumes one drainer per account at a time, which the job engine's
per-account lock (or the embedded runner) guarantees.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from lmsgate.store import tables as t
from lmsgate.store.db import writing

Row = dict[str, Any]

PENDING, DELIVERING, DELIVERED, DEAD = "pending", "delivering", "delivered", "dead"
STATUSES = (PENDING, DELIVERING, DELIVERED, DEAD)
_OPEN = (PENDING, DELIVERING)

d = t.deliveries.c
a = t.delivery_attempts.c
s = t.delivery_accounts.c


@dataclass(slots=True)
class AccountState:
    settings: dict[str, Any]
    paused_until: datetime | None
    failures: int
    tokens: float | None
    tokens_at: float | None


@dataclass(slots=True)
class Outcome:
    """What one attempt of a claimed delivery came to; written by :meth:`DeliveryStore.record`."""

    seq: int
    number: int
    """The attempt's number (the delivery's attempts after it)."""
    round_attempts: int
    started_at: datetime
    finished_at: datetime
    outcome: str
    """``delivered``, ``retry`` or ``dead``."""
    status: int | None
    error: dict[str, Any] | None
    result: dict[str, Any] | None = None
    next_attempt_at: datetime | None = None


@dataclass(slots=True)
class DeliveryFilter:
    status: str | None = None
    account_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None

    def where(self, project_id: str) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = [d.project_id == project_id]
        if self.status is not None:
            out.append(d.status == self.status)
        if self.account_id is not None:
            out.append(d.account_id == self.account_id)
        if self.created_after is not None:
            out.append(d.created_at > self.created_after)
        if self.created_before is not None:
            out.append(d.created_at < self.created_before)
        if self.updated_after is not None:
            out.append(d.updated_at > self.updated_after)
        return out


def _not_behind() -> ColumnElement[bool]:
    """The delivery has no older open (pending or delivering) delivery with its ordering key."""
    e = t.deliveries.alias("e")
    earlier = (select(e.c.seq).where(e.c.account_id == d.account_id, e.c.ordering_key == d.ordering_key,
                                     e.c.status.in_(_OPEN), e.c.seq < d.seq).exists())
    return or_(d.ordering_key.is_(None), ~earlier)


class DeliveryStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(table)

    # ------------------------------------------------------------ enqueue (API side)

    def add(self, rows: Sequence[Row]) -> list[None]:
        """Insert new deliveries in one transaction (a group commit of many requests)."""
        if rows:
            with writing(self.engine) as conn:
                conn.execute(insert(t.deliveries), list(rows))
        return [None] * len(rows)

    def add_with_attempt(self, row: Row, attempt: Row) -> None:
        """Insert a delivery whose first attempt already happened (``fallback_to_async``)."""
        with writing(self.engine) as conn:
            seq = conn.execute(insert(t.deliveries).values(**row).returning(d.seq)).scalar_one()
            conn.execute(insert(t.delivery_attempts).values(delivery_seq=seq, **attempt))

    # ------------------------------------------------------------ per-account settings and state

    def state(self, account_id: str) -> AccountState:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.delivery_accounts).where(s.account_id == account_id)).first()
        if row is None:
            return AccountState({}, None, 0, None, None)
        return AccountState(dict(row.settings or {}), row.paused_until, row.failures, row.tokens, row.tokens_at)

    def settings(self, account_id: str) -> dict[str, Any]:
        return self.state(account_id).settings

    def _upsert_state(self, account_id: str, values: Row, now: datetime) -> None:
        with writing(self.engine) as conn:
            done = conn.execute(update(t.delivery_accounts).where(s.account_id == account_id)
                                .values(**values, updated_at=now)).rowcount
            if not done:
                stmt = self._insert(t.delivery_accounts).values(
                    account_id=account_id, settings=values.get("settings", {}), failures=values.get("failures", 0),
                    updated_at=now, **{k: v for k, v in values.items() if k not in ("settings", "failures")})
                conn.execute(stmt.on_conflict_do_update(index_elements=["account_id"],
                                                        set_={**values, "updated_at": now}))

    def save_settings(self, account_id: str, settings: dict[str, Any], now: datetime) -> None:
        self._upsert_state(account_id, {"settings": settings}, now)

    def save_state(self, account_id: str, *, paused_until: datetime | None, failures: int,
                   tokens: float | None, tokens_at: float | None, now: datetime) -> None:
        self._upsert_state(account_id, {"paused_until": paused_until, "failures": failures,
                                        "tokens": tokens, "tokens_at": tokens_at}, now)

    # ------------------------------------------------------------ the worker side

    def reset_orphans(self, account_id: str, now: datetime) -> int:
        """Put deliveries left ``delivering`` by a worker that died back to ``pending``.

        Only safe while the caller is the account's only drainer. Their attempt may or may not
        have reached the provider: they are sent again (at least once; the connectors' writes
        are idempotent on the provider, such as xAPI statements with fixed ids).
        """
        with writing(self.engine) as conn:
            return conn.execute(update(t.deliveries).where(d.account_id == account_id, d.status == DELIVERING)
                                .values(status=PENDING, updated_at=now)).rowcount

    def claim(self, account_id: str, now: datetime, limit: int) -> list[Row]:
        """Up to ``limit`` due deliveries of the account, oldest first, marked ``delivering``.

        A delivery whose ``ordering_key`` has an older open (pending or delivering) delivery is
        left for later: writes about one learner and learning object go out in order.
        """
        q = (select(t.deliveries)
             .where(d.account_id == account_id, d.status == PENDING, d.next_attempt_at <= now, _not_behind())
             .order_by(d.seq).limit(limit))
        with writing(self.engine) as conn:
            rows = [dict(r) for r in conn.execute(q).mappings()]
            if rows:
                conn.execute(update(t.deliveries).where(d.seq.in_([r["seq"] for r in rows]))
                             .values(status=DELIVERING, updated_at=now))
        return rows

    def release(self, seqs: Iterable[int], now: datetime) -> None:
        """Give claimed deliveries back unattempted (the account was paused meanwhile)."""
        seqs = list(seqs)
        if seqs:
            with writing(self.engine) as conn:
                conn.execute(update(t.deliveries).where(d.seq.in_(seqs), d.status == DELIVERING)
                             .values(status=PENDING, updated_at=now))

    def record(self, outcomes: Sequence[Outcome], account_id: str | None = None) -> None:
        """Write attempts and the deliveries' new states, all in one transaction. ``account_id``:
        the one account all of them belong to, when the caller knows it (saves a query)."""
        if not outcomes:
            return
        status_of = {"delivered": DELIVERED, "retry": PENDING, "dead": DEAD}
        updates = [{
            "b_seq": o.seq, "status": status_of[o.outcome], "attempts": o.number,
            "round_attempts": o.round_attempts, "updated_at": o.finished_at,
            "next_attempt_at": o.next_attempt_at or o.finished_at,
            "delivered_at": o.finished_at if o.outcome == "delivered" else None,
            "result": o.result, "last_error": o.error,
        } for o in outcomes]
        attempts = [{
            "delivery_seq": o.seq, "number": o.number, "account_id": "", "started_at": o.started_at,
            "finished_at": o.finished_at, "outcome": o.outcome, "status": o.status, "error": o.error,
        } for o in outcomes]
        stmt = (update(t.deliveries).where(d.seq == bindparam("b_seq"))
                .values(status=bindparam("status"), attempts=bindparam("attempts"),
                        round_attempts=bindparam("round_attempts"), updated_at=bindparam("updated_at"),
                        next_attempt_at=bindparam("next_attempt_at"), delivered_at=bindparam("delivered_at"),
                        result=bindparam("result"), last_error=bindparam("last_error")))
        with writing(self.engine) as conn:
            if account_id is None:
                accounts = dict(conn.execute(select(d.seq, d.account_id)
                                             .where(d.seq.in_([o.seq for o in outcomes]))).all())
            for row in attempts:
                row["account_id"] = (account_id if account_id is not None
                                     else accounts.get(row["delivery_seq"], ""))
            conn.execute(stmt.execution_options(synchronize_session=False), updates)
            conn.execute(insert(t.delivery_attempts), attempts)

    def next_due(self, account_id: str) -> datetime | None:
        """When the account's next pending delivery is due; None when none is pending.

        One waiting behind an older write of its ordering key does not count (it goes when
        that one is done): else a due write behind one in backoff would keep the account busy.
        """
        with self.engine.connect() as conn:
            return conn.execute(select(func.min(d.next_attempt_at))
                                .where(d.account_id == account_id, d.status == PENDING, _not_behind())).scalar()

    def queue_depth(self) -> int:
        """Deliveries not yet delivered nor dead (pending or being delivered), all projects."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t.deliveries)
                                    .where(d.status.in_(_OPEN))).scalar_one())

    def accounts_with_work(self, now: datetime, limit: int = 10_000) -> list[str]:
        """Accounts with a pending delivery due by ``now``, or one left ``delivering``."""
        q = (select(d.account_id).where(or_(and_(d.status == PENDING, d.next_attempt_at <= now),
                                            d.status == DELIVERING))
             .group_by(d.account_id).limit(limit))
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    # ------------------------------------------------------------ the Delivery API

    def get(self, project_id: str, delivery_id: str) -> Row | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.deliveries).where(d.project_id == project_id, d.id == delivery_id)).first()
        return dict(row._mapping) if row else None

    def attempts_of(self, seq: int) -> list[Row]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.delivery_attempts).where(a.delivery_seq == seq).order_by(a.number))
            return [dict(r._mapping) for r in rows]

    def list(self, project_id: str, where: DeliveryFilter, after_seq: int | None, limit: int) -> list[Row]:
        q = select(t.deliveries).where(*where.where(project_id))
        if after_seq is not None:
            q = q.where(d.seq > after_seq)
        q = q.order_by(d.seq).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def seq_of(self, project_id: str, delivery_id: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(d.seq).where(d.project_id == project_id, d.id == delivery_id)).scalar()

    def retry(self, project_id: str, where: DeliveryFilter, now: datetime, delivery_id: str | None = None,
              limit: int | None = None) -> list[tuple[str, str]]:
        """Queue dead (or waiting) deliveries again at once, with a fresh attempt budget.

        Their accounts' pauses end too: an operator retries once the provider is fixed, and a
        retried delivery must not wait out a pause of up to several minutes first.

        Returns ``(delivery id, account id)`` of each delivery queued again. Delivered ones and
        ones being delivered right now are left alone.
        """
        conds = where.where(project_id)
        conds.append(d.status.in_((DEAD, PENDING)))
        if delivery_id is not None:
            conds.append(d.id == delivery_id)
        q = select(d.seq, d.id, d.account_id).where(*conds).order_by(d.seq)
        if limit is not None:
            q = q.limit(limit)
        with writing(self.engine) as conn:
            rows = conn.execute(q).all()
            if rows:
                for seqs in _chunks([r.seq for r in rows]):
                    conn.execute(update(t.deliveries)
                                 .where(d.seq.in_(seqs), d.status.in_((DEAD, PENDING)))
                                 .values(status=PENDING, next_attempt_at=now, round_attempts=0,
                                         round_started_at=now, updated_at=now))
                for accounts in _chunks(sorted({r.account_id for r in rows})):
                    conn.execute(update(t.delivery_accounts)
                                 .where(s.account_id.in_(accounts), s.paused_until.is_not(None))
                                 .values(paused_until=None, failures=0, updated_at=now))
        return [(r.id, r.account_id) for r in rows]


def _chunks(values: list[Any], size: int = 1000) -> Iterator[list[Any]]:
    """``values`` in slices of ``size``: an ``IN`` list of at most that many."""
    for i in range(0, len(values), size):
        yield values[i:i + size]
