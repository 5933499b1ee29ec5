"""ISO 8601 durations, exactly: :class:`Duration`.

Apart from ``schema.types`` (which re-exports it) so that a process that only writes
durations out, such as a page reader (``store.page_readers``), need not load pydantic and
the models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

__all__ = ["Duration", "normalised_duration"]

_DURATION = re.compile(
    r"^P(?!$)"
    r"(?:(?P<years>\d+(?:[.,]\d+)?)Y)?"
    r"(?:(?P<months>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?=\d)"
    r"(?:(?P<hours>\d+(?:[.,]\d+)?)H)?"
    r"(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?"
    r")?$",
    re.ASCII,  # \d is 0-9 only: 'PT٣H' was read as PT3H
)


@dataclass(frozen=True, slots=True)
class Duration:
    """An exact ISO 8601 duration: calendar ``months`` plus exact ``seconds``.

    Years count as 12 months. Weeks, days, hours and minutes are exact multiples of a second
    (a day is 24 hours: ``time_spent`` measures elapsed effort, not calendar days). Years and
    months cannot be turned into seconds without a calendar, so they are kept apart.

    The normal form (:meth:`isoformat`) writes years and months, then hours, minutes and
    seconds, dropping zero parts: ``PT90M`` becomes ``PT1H30M``, ``P1DT2H`` becomes ``PT26H``,
    and zero is ``PT0S``. Fractional seconds keep every digit given, minus trailing zeros.
    """

    months: int
    seconds: Decimal

    @classmethod
    def parse(cls, text: str) -> Duration:
        if not isinstance(text, str):
            raise ValueError("must be an ISO 8601 duration string such as PT1H30M45S")
        return _parse_duration(text)

    @classmethod
    def _parse(cls, text: str) -> Duration:
        m = _DURATION.match(text.strip().upper())
        if not m:
            raise ValueError(f"{text!r} is not an ISO 8601 duration (expected e.g. PT1H30M45S)")
        parts: dict[str, Decimal] = {}
        fractional = [k for k, v in m.groupdict().items() if v and ("." in v or "," in v)]
        if fractional and fractional[0] != [k for k, v in m.groupdict().items() if v][-1]:
            raise ValueError(f"{text!r}: only the smallest unit of a duration may have a fraction")
        for key, raw in m.groupdict().items():
            try:
                parts[key] = Decimal(raw.replace(",", ".")) if raw else Decimal(0)
            except InvalidOperation:  # pragma: no cover - the regex admits only digits
                raise ValueError(f"{text!r} is not an ISO 8601 duration") from None
        months = parts["years"] * 12 + parts["months"]
        if months != months.to_integral_value():
            raise ValueError(f"{text!r}: fractional months or years cannot be stored exactly")
        seconds = (
            parts["weeks"] * 604800
            + parts["days"] * 86400
            + parts["hours"] * 3600
            + parts["minutes"] * 60
            + parts["seconds"]
        )
        return cls(months=int(months), seconds=seconds)

    @classmethod
    def from_seconds(cls, seconds: Decimal | int) -> Duration:
        return cls(months=0, seconds=Decimal(seconds))

    def isoformat(self) -> str:
        out = "P"
        years, months = divmod(self.months, 12)
        if years:
            out += f"{years}Y"
        if months:
            out += f"{months}M"
        whole = int(self.seconds)
        frac = self.seconds - whole
        hours, rem = divmod(whole, 3600)
        minutes, secs = divmod(rem, 60)
        time = ""
        if hours:
            time += f"{hours}H"
        if minutes:
            time += f"{minutes}M"
        if secs or frac:
            s = Decimal(secs) + frac
            text = format(s.normalize(), "f") if frac else str(secs)
            time += f"{text}S"
        if time:
            out += "T" + time
        if out == "P":
            out = "PT0S"
        return out

    def __str__(self) -> str:
        return self.isoformat()


@lru_cache(maxsize=8192)
def _parse_duration(text: str) -> Duration:
    """Durations repeat a lot (a bulk import has a few thousand distinct ones at most), and a
    ``Duration`` is immutable, so parses are shared. Invalid text raises and is not cached."""
    return Duration._parse(text)


@lru_cache(maxsize=4096)
def _normalised(text: str) -> str:
    return Duration.parse(text).isoformat()


def normalised_duration(text: str | None) -> str | None:
    """The normal form of a stored duration (cached: the same few values repeat endlessly)."""
    return _normalised(text) if text else None
