"""When a delivery is tried again, when it is given up, and how an account is paced.

* **Per delivery:** after a failure that may pass (the provider timed out, was unreachable,
  answered 429 or 5xx, refused the credentials), the next attempt waits
  ``base · 2ⁿ⁻¹`` seconds, capped, times a random factor in [0.5, 1] ("equal jitter"), or the
  provider's ``Retry-After`` when that is longer. A delivery that fails ``max_attempts`` times,
  or is still failing ``max_age`` seconds after it was accepted (or retried by hand), is
  dead-lettered with its last error.
* **Per account:** the same failure also pauses the whole account, because a provider that is
  down is down for every write: nothing is sent until the pause ends, then one round probes it.
  The pause doubles with each failing round (from half the base, capped at ``pause_cap``),
  or is the provider's ``Retry-After``. The first success ends it.
* **Permanent failures** (the provider judged the write invalid: 400, 404, 409, 422; the
  connector cannot do it: 501) are dead-lettered at once; trying again cannot help until
  someone fixes the data or the provider, then retries by hand (``POST /deliveries/retry``).
* **Limits:** ``concurrency`` provider calls in flight and ``rate`` calls per second for each
  account, across every worker: an account is drained by one worker at a time. Where a
  connector writes several deliveries in one call (xAPI statement batches, up to
  ``batch_size``), that call counts once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from lmsgate.errors import LmsGateError
from lmsgate.http import parse_retry_after
from lmsgate.settings import Settings

ACCOUNT_SETTINGS = ("fallback_to_async", "max_concurrency", "max_requests_per_second", "max_attempts",
                    "max_age_seconds")
"""The per-account delivery settings (``PATCH /accounts/{id}/delivery``)."""


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    max_attempts: int = 30
    max_age: float = 3 * 86400.0
    base: float = 1.0
    cap: float = 1800.0
    pause_cap: float = 300.0
    concurrency: int = 8
    rate: float = 0.0
    """Provider calls per second; 0 for no limit."""
    batch_size: int = 1
    """Deliveries one provider call may carry, for the operations a connector sends in batches."""

    @classmethod
    def for_account(cls, settings: Settings, account: dict[str, Any]) -> DeliveryPolicy:
        def pick(name: str, default: Any) -> Any:
            value = account.get(name)
            return default if value is None else value

        return cls(
            max_attempts=int(pick("max_attempts", settings.delivery_max_attempts)),
            max_age=float(pick("max_age_seconds", settings.delivery_max_age_seconds)),
            base=settings.delivery_backoff_base_seconds,
            cap=settings.delivery_backoff_cap_seconds,
            pause_cap=settings.delivery_pause_cap_seconds,
            concurrency=int(pick("max_concurrency", settings.delivery_account_concurrency)),
            rate=float(pick("max_requests_per_second", settings.delivery_account_rate_per_second)),
            batch_size=settings.delivery_batch_size,
        )

    def backoff(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds before the next attempt of a delivery that has failed ``attempts`` times."""
        ceiling = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        return ceiling * (0.5 + 0.5 * (rng or random).random())

    def pause(self, failures: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Seconds to pause an account after ``failures`` failing rounds in a row."""
        ceiling = min(self.pause_cap, self.base / 2 * 2 ** max(0, failures - 1))
        wait = ceiling * (0.5 + 0.5 * (rng or random).random())
        return max(wait, retry_after or 0.0)


@dataclass(frozen=True, slots=True)
class Failure:
    transient: bool
    status: int
    error: dict[str, Any]
    retry_after: float | None


PERMANENT_STATUSES = frozenset({400, 404, 409, 413, 422, 501})


def classify(exc: BaseException) -> Failure:
    """What a failed attempt means. ``error`` is what the delivery shows: secrets were already
    masked by the HTTP policy in the message and ``provider_errors``."""
    if isinstance(exc, LmsGateError):
        error: dict[str, Any] = {"status": exc.status, "message": exc.message}
        if exc.provider_errors:
            error["provider_errors"] = exc.provider_errors
        retry_after = parse_retry_after(exc.headers.get("Retry-After"))
        return Failure(exc.status not in PERMANENT_STATUSES, exc.status, error, retry_after)
    # A fault of lmsgate itself (a bug, the database): worth another try; the log has the trace.
    return Failure(True, 500, {"status": 500, "message": f"lmsgate failed to deliver: {type(exc).__name__}"},
                   None)
