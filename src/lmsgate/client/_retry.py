"""When the client sends a request again, and how long it waits first."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import httpx

from lmsgate.http import parse_retry_after

__all__ = ["Retry"]

_RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError,
              httpx.WriteError)
"""Connection failures after which sending again is sensible."""
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
"""Failures before the request left: sending it again cannot repeat it."""


@dataclass(frozen=True)
class Retry:
    """The retry policy of a client, or of one call.

    A request is sent again when the answer's status is in ``statuses`` (408 and 429, as the
    official SDKs do) or, with ``connection_errors``, when the connection failed before an
    answer came. The wait is the server's ``Retry-After`` when it sends one; otherwise
    ``backoff_initial * backoff_factor ** n`` seconds (n = retries so far) plus up to
    ``jitter`` seconds at random, at most ``backoff_max``. Retrying stops after
    ``max_retries`` retries, or when the next wait would end more than ``max_elapsed``
    seconds after the first attempt; the last answer is then returned or raised.

    A connection that broke after the request left (reset, closed without an answer) may
    have been served: only a request that is harmless to repeat is sent again then. Reads
    are; so are the unified LMS API's synchronous writes (the same completion posted twice is
    stored once; an upsert writes the same record). A write with ``Prefer: respond-async``
    (each one makes a delivery) or a delete (a repeat answers 404) is sent again only with an
    ``Idempotency-Key``. ``Retry.none()`` turns retrying off.

    ``wait_out_rate_limits``: a 429 is waited out however many times it comes, as long as the
    server asks (at least ``backoff_initial``, at most ``backoff_max`` at a time): neither
    ``max_retries`` nor ``max_elapsed`` ends it. Other answers and failed connections keep their
    limits, counted over every retry of the call, the 429s included. For long jobs (a backfill)
    that share a key's rate limit with others, where giving up after a few tries would stop work
    that a slow refill lets through.
    """

    max_retries: int = 5
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({408, 429}))
    connection_errors: bool = True
    backoff_initial: float = 0.5
    backoff_factor: float = 2.0
    backoff_max: float = 60.0
    jitter: float = 0.5
    max_elapsed: float = 300.0
    wait_out_rate_limits: bool = False

    @classmethod
    def none(cls) -> Retry:
        """A policy that never retries."""
        return cls(max_retries=0, connection_errors=False)

    def backoff(self, retries: int) -> float:
        """Seconds to wait before retry number ``retries + 1`` when the server named no wait."""
        wait = self.backoff_initial * self.backoff_factor ** retries
        return min(self.backoff_max, wait + random.uniform(0, self.jitter))

    def wait_after(self, response: httpx.Response, retries: int, elapsed: float) -> float | None:
        """Seconds to wait before sending again after ``response``, or None to give up."""
        if response.status_code not in self.statuses:
            return None
        if response.status_code == 429 and self.wait_out_rate_limits:
            asked = parse_retry_after(response.headers.get("retry-after"))
            # without a Retry-After, the backoff stops growing where the last retry's would be;
            # with one, at least backoff_initial (a "0", or a date past, looped without a pause)
            # and at most backoff_max (a huge one overflowed the sync client's sleep)
            if asked is None:
                return self.backoff(min(retries, max(self.max_retries - 1, 0)))
            return min(max(asked, self.backoff_initial), self.backoff_max)
        if retries >= self.max_retries:
            return None
        asked = parse_retry_after(response.headers.get("retry-after"))
        wait = asked if asked is not None else self.backoff(retries)
        return wait if elapsed + wait <= self.max_elapsed else None

    def wait_after_error(self, error: httpx.TransportError, retries: int, elapsed: float, *,
                         repeatable: bool = True) -> float | None:
        """Seconds to wait before sending again after a failed connection, or None to give up.

        A read timeout is not retried: the server may still be working on the request. With
        ``repeatable=False`` (the request must not take effect twice), only a connection that
        failed before the request left is retried.
        """
        if not self.connection_errors or retries >= self.max_retries or not isinstance(error, _RETRYABLE):
            return None
        if not repeatable and not isinstance(error, _NOTHING_SENT):
            return None
        wait = self.backoff(retries)
        return wait if elapsed + wait <= self.max_elapsed else None
