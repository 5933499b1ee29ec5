"""Client-side rate limits: lmsgate paces its own calls so a provider never has to say 429.

One token bucket per linked account, sized from the connector's declared limit: it holds
``requests`` tokens (the provider's window allows that burst) and refills at
``requests / per_seconds`` per second. A call takes a token, or reserves the next one and
sleeps until it is due; reservations are taken under a lock, so concurrent calls queue in
order instead of all waking at once. The buckets live in this process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AccountBuckets", "Bucket"]


@dataclass(slots=True)
class Bucket:
    capacity: float
    rate: float
    """Tokens per second."""
    tokens: float
    updated: float

    def reserve(self, now: float) -> float:
        """Take a token; return the seconds until it is really available (0 if now)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def give_back(self) -> None:
        self.tokens = min(self.capacity, self.tokens + 1.0)


class AccountBuckets:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[str, float, float], Bucket] = {}
        self._lock = threading.Lock()

    def reserve(self, account_id: str, rate: float, capacity: float) -> tuple[float, Bucket]:
        """Reserve a token for ``account_id``; returns (seconds to wait, bucket to give back to)."""
        key = (account_id, rate, capacity)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = Bucket(capacity, rate, capacity, now)
            return bucket.reserve(now), bucket

    def give_back(self, bucket: Bucket) -> None:
        """Return an unused reservation (the call was abandoned before it was sent)."""
        with self._lock:
            bucket.give_back()
