"""Token buckets kept in the database, so several API processes share one allowance.

Same arithmetic as the in-process :class:`lmsgate.api.ratelimit.TokenBuckets`: a bucket holds
up to ``capacity`` tokens, regains ``rate`` tokens a second, and each allowed request takes
one. Each :meth:`SqlTokenBuckets.take` is one short transaction:

1. ``UPDATE … WHERE <refilled> >= 1 RETURNING`` takes a token if there is one. The row lock
   makes concurrent takes on one bucket, from any process, queue up and see each other.
2. If no row came back, ``INSERT … ON CONFLICT DO NOTHING`` creates a full bucket minus one.
3. If that found an existing row, the request is refused; the row says how long to wait.

Times are the API processes' wall clocks (Unix seconds), so processes on several machines
need roughly synchronised clocks; a clock that runs behind refills nothing, never more, and a
bucket's time only moves forward.
Buckets that would be full again are deleted now and then, so the table stays small.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Engine, text

from lmsgate.store.db import writing

_PRUNE_EVERY_SECONDS = 60.0


class SqlTokenBuckets:
    """Buckets in ``rate_limit_buckets``; names are prefixed with ``namespace``."""

    blocking = True
    """Calls touch the database: run them in a worker thread."""

    def __init__(self, engine: Engine, *, capacity: float, per_second: float, namespace: str,
                 clock: Callable[[], float] = time.time) -> None:
        if capacity < 1 or per_second <= 0:
            raise ValueError("a bucket needs a capacity of at least 1 and a positive refill rate")
        self.engine = engine
        self.capacity = float(capacity)
        self.rate = float(per_second)
        self.namespace = namespace
        self._clock = clock
        self._last_prune = 0.0
        if engine.dialect.name == "postgresql":
            least, greatest = "LEAST", "GREATEST"
        else:  # SQLite's scalar min() and max() take several arguments
            least, greatest = "MIN", "MAX"
        refilled = (f"{least}(:cap, tokens + {greatest}(0, :now - updated_at) * :rate)")
        # updated_at never moves back: a request that read the clock, then waited for the row
        # lock behind a later one, would otherwise count the same interval's refill twice.
        self._take = text(
            f"UPDATE rate_limit_buckets SET tokens = {refilled} - 1, updated_at = {greatest}(updated_at, :now) "
            f"WHERE bucket = :b AND {refilled} >= 1 RETURNING tokens")
        self._create = text(
            "INSERT INTO rate_limit_buckets (bucket, tokens, updated_at) VALUES (:b, :cap - 1, :now) "
            "ON CONFLICT (bucket) DO NOTHING RETURNING tokens")
        self._read = text("SELECT tokens, updated_at FROM rate_limit_buckets WHERE bucket = :b")
        self._prune = text("DELETE FROM rate_limit_buckets WHERE bucket LIKE :ns AND updated_at < :before")

    def _wait(self, tokens: float, updated_at: float, now: float) -> float:
        refilled = min(self.capacity, tokens + max(0.0, now - updated_at) * self.rate)
        return 0.0 if refilled >= 1.0 else (1.0 - refilled) / self.rate

    def take(self, key: str) -> float:
        """Take a token for ``key``. Returns 0 when allowed, else the seconds until one is free."""
        now = self._clock()
        params = {"b": f"{self.namespace}:{key}", "cap": self.capacity, "rate": self.rate, "now": now}
        with writing(self.engine) as conn:  # SQLite: in turn with the other writers, not polling
            for _ in range(2):  # a second round only if another process created the bucket meanwhile
                if conn.execute(self._take, params).first() is not None:
                    break
                if conn.execute(self._create, params).first() is not None:
                    break
                row = conn.execute(self._read, params).first()
                if row is not None:
                    wait = self._wait(row.tokens, row.updated_at, now)
                    if wait > 0:
                        return wait
            else:  # pragma: no cover - the row vanished twice (a prune raced us); allow
                pass
            if now - self._last_prune > _PRUNE_EVERY_SECONDS:
                self._last_prune = now
                full_after = self.capacity / self.rate
                conn.execute(self._prune, {"ns": f"{self.namespace}:%", "before": now - full_after})
        return 0.0

    def peek(self, key: str) -> float:
        """Seconds until ``key`` has a token (0 if it has one now); takes nothing."""
        now = self._clock()
        with self.engine.connect() as conn:
            row = conn.execute(self._read, {"b": f"{self.namespace}:{key}"}).first()
        return 0.0 if row is None else self._wait(row.tokens, row.updated_at, now)
