"""Value types shared by every resource: date-times, ISO 8601 durations, ids.

Date-times
    Requests may carry any RFC 3339 date-time. A value without an offset is read as UTC.
    Responses always carry a ``Z`` suffix and at least millisecond precision, because the
    official SDK rejects a date-time without an offset (SDK reference, section 1).

Durations
    ``time_spent`` and content ``duration`` are ISO 8601 durations (``PnYnMnWnDTnHnMnS``).
    They are parsed exactly, with :class:`decimal.Decimal` seconds, so no float rounding ever
    touches a learner's time. See :class:`Duration` for the normal form.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from lmsgate.durations import Duration, _parse_duration  # noqa: F401  (here since the beginning)

__all__ = [
    "Duration",
    "DurationInput",
    "DurationStr",
    "UtcDateTime",
    "format_datetime",
    "parse_datetime",
]

_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?P<frac>\.\d+)?"
    r"(?P<tz>[Zz]|[+-]\d{2}:?\d{2})?$",
    re.ASCII,  # \d is 0-9 only: '٣' or '３' is no digit of a date
)


def parse_datetime(value: Any) -> datetime:
    """Parse an RFC 3339 date-time string into an aware UTC datetime.

    Raises ``ValueError`` (which pydantic reports against the field) for anything that is
    not a string of that form, including bare dates and epoch numbers.
    """
    if (type(value) is str and len(value) == 24 and value[23] == "Z" and value[10] == "T"
            and value[4] == value[7] == "-" and value[13] == value[16] == ":" and value[19] == "."):
        # The usual form, 2021-07-21T14:00:00.000Z: the C parser alone, without the pattern.
        # With these separators in place, it accepts digits only where the pattern does.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # the slow path words the error
    if isinstance(value, datetime):
        dt = value
    else:
        if not isinstance(value, str):
            raise ValueError("must be an RFC 3339 date-time string, e.g. 2021-07-21T14:00:00.000Z")
        m = _RFC3339.match(value.strip())
        if not m:
            raise ValueError(
                f"{value!r} is not an RFC 3339 date-time (expected e.g. 2021-07-21T14:00:00.000Z)"
            )
        frac = (m["frac"] or "")[1:7].ljust(6, "0") if m["frac"] else "000000"
        tz = m["tz"] or "Z"
        if tz in ("Z", "z"):
            tz = "+00:00"
        elif ":" not in tz:
            tz = f"{tz[:3]}:{tz[3:]}"
        try:
            dt = datetime.fromisoformat(f"{m['date']}T{m['time']}.{frac}{tz}")
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid date-time: {exc}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError:  # 0001-01-01T00:30:00+01:00, 9999-12-31T23:59:59-01:00
        raise ValueError(f"{value!r} falls outside the years 1 to 9999 once converted to UTC") from None


def format_datetime(dt: datetime) -> str:
    """Render a datetime as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (microseconds kept when present).

    A naive datetime is taken to be UTC. This runs for every date of every listed record, so
    it leans on ``isoformat`` (C) rather than ``strftime``.
    """
    tz = dt.tzinfo
    if tz is not timezone.utc and tz is not None and dt.utcoffset():
        dt = dt.astimezone(timezone.utc)
    # Plain isoformat() is cheaper than with ``timespec``; it leaves out a zero fraction.
    text, micro = dt.isoformat(), dt.microsecond
    if not micro:
        return text[:19] + ".000Z"
    return text[:23] + "Z" if micro % 1000 == 0 else text[:26] + "Z"


UtcDateTime = Annotated[
    datetime,
    BeforeValidator(parse_datetime),
    PlainSerializer(format_datetime, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An aware UTC datetime that parses RFC 3339 and serialises with a ``Z`` suffix."""


def _normalise_duration(value: Any) -> Any:
    if value is None:
        return None
    return Duration.parse(value).isoformat()


DurationStr = Annotated[
    str,
    BeforeValidator(_normalise_duration),
    WithJsonSchema({"type": "string", "format": "duration", "example": "PT1H30M45S"}),
]
"""A string holding an ISO 8601 duration, normalised on the way in (see :class:`Duration`)."""


MAX_DURATION_TEXT = 64
MAX_DURATION_MONTHS = 2**31 - 1
MAX_DURATION_SECONDS = Decimal("1e14")
"""What the store holds: the text in 64 characters, the months in a 32-bit integer, and the
seconds in ``NUMERIC(20, 6)``. Anything longer is refused here rather than by the database."""


def _validate_duration(value: Any) -> Any:
    if value is None:
        return None
    parsed = Duration.parse(value)
    text = value.strip()
    if len(text) > MAX_DURATION_TEXT:
        raise ValueError(f"at most {MAX_DURATION_TEXT} characters (got {len(text)})")
    if parsed.months > MAX_DURATION_MONTHS or parsed.seconds >= MAX_DURATION_SECONDS:
        raise ValueError(f"{text!r} is longer than can be stored: at most {MAX_DURATION_MONTHS:,} months "
                         f"and {MAX_DURATION_SECONDS - 1:,f} seconds")
    return text


DurationInput = Annotated[
    str,
    BeforeValidator(_validate_duration),
    WithJsonSchema({"type": "string", "format": "duration", "example": "PT1H30M45S"}),
]
"""A request duration: checked to be ISO 8601, kept exactly as sent so storage is lossless."""
