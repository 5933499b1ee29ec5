"""When to retry a provider call, and how long to wait first.

* Retried whatever the method: 429 and 503 (the provider says it did not do the work), and
  failures to connect (nothing was sent).
* Retried only when the request is idempotent (GET, HEAD, PUT, DELETE, OPTIONS, or a write the
  connector marks idempotent, such as an xAPI statement with a fixed id): 408, 500, 502, 504,
  and connections that broke after the request went out (reset, closed, read timeout).
* The wait is the provider's ``Retry-After`` when it sends one (seconds or an HTTP-date), else
  exponential backoff with jitter: ``base · 2ⁿ`` capped at ``cap``, then a random factor in
  [0.5, 1] ("equal jitter"), so many clients retrying together spread out.
* The budget is per unified request: at most ``max_retries`` retries, all inside ``lifetime``
  seconds. A retry whose wait would end past the lifetime is not attempted; the caller gets
  408 at once rather than after a pointless sleep.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["IDEMPOTENT_METHODS", "RetryPolicy", "parse_retry_after"]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
ALWAYS_RETRIED = frozenset({429, 503})
RETRIED_WHEN_IDEMPOTENT = frozenset({408, 500, 502, 504})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (RFC 9110 §10.2.3), or ``None`` if unusable.

    A date in the past means "now" (0). Negative or non-numeric seconds are ignored.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # not str.isdigit alone: '²' is a digit to it
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 5
    lifetime: float = 60.0
    """Seconds one unified request may spend on provider calls, waits included."""
    base: float = 0.5
    cap: float = 30.0

    def retryable_status(self, status: int, idempotent: bool) -> bool:
        return status in ALWAYS_RETRIED or (idempotent and status in RETRIED_WHEN_IDEMPOTENT)

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Wait before retry ``retry_number`` (0 for the first retry), without Retry-After."""
        ceiling = min(self.cap, self.base * (2 ** retry_number))
        return ceiling * (0.5 + 0.5 * (rng or random).random())
