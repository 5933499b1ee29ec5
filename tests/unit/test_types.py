"""Exact date-time and ISO 8601 duration handling."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmsgate.schema.types import Duration, format_datetime, parse_datetime


@pytest.mark.parametrize(
    ("text", "months", "seconds", "normal"),
    [
        ("PT1H30M45S", 0, "5445", "PT1H30M45S"),
        ("PT90M", 0, "5400", "PT1H30M"),
        ("P1W", 0, "604800", "PT168H"),
        ("P1DT0.5S", 0, "86400.5", "PT24H0.5S"),
        ("PT0.001S", 0, "0.001", "PT0.001S"),
        ("PT0,5S", 0, "0.5", "PT0.5S"),
        ("P1Y", 12, "0", "P1Y"),
        ("P14M", 14, "0", "P1Y2M"),
        ("P0D", 0, "0", "PT0S"),
        ("PT1.5M", 0, "90", "PT1M30S"),
        ("P1.5Y", 18, "0", "P1Y6M"),
    ],
)
def test_duration_parse_and_normal_form(text: str, months: int, seconds: str, normal: str) -> None:
    d = Duration.parse(text)
    assert (d.months, d.seconds) == (months, Decimal(seconds))
    assert d.isoformat() == normal
    assert Duration.parse(normal) == d  # the normal form reads back to the same value


@pytest.mark.parametrize("bad", ["", "P", "PT", "T1H", "P1H", "PT1D", "PT-1S", "P1.3Y", "P0.5M", "PT1.5H1M", "1H", "PT1H ", " ",
                                 "PT\u0663H", "PT\uff11H", "P\u0661D"])  # Arabic-Indic and fullwidth digits
def test_duration_rejects(bad: str) -> None:
    if bad.strip() != bad and bad.strip():
        assert Duration.parse(bad).isoformat() == "PT1H"  # surrounding space is tolerated
        return
    with pytest.raises(ValueError):
        Duration.parse(bad)


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=999_999))
def test_duration_round_trips_any_seconds(whole: int, micros: int) -> None:
    seconds = Decimal(whole) + Decimal(micros) / Decimal(10**6)
    d = Duration.from_seconds(seconds)
    assert Duration.parse(d.isoformat()).seconds == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-07-21T14:00:00Z", datetime(2021, 7, 21, 14, tzinfo=timezone.utc)),
        ("2021-07-21t14:00:00z", datetime(2021, 7, 21, 14, tzinfo=timezone.utc)),
        ("2021-07-21 14:00:00", datetime(2021, 7, 21, 14, tzinfo=timezone.utc)),
        ("2021-07-21T14:00:00+0530", datetime(2021, 7, 21, 8, 30, tzinfo=timezone.utc)),
        ("2021-07-21T14:00:00.123456789Z", datetime(2021, 7, 21, 14, 0, 0, 123456, tzinfo=timezone.utc)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("bad", ["2021-07-21", "2021-02-30T00:00:00Z", "2021-07-21T25:00:00Z", 0, None, "now",
                                 "\uff12\uff10\uff12\uff11-07-21T14:00:00Z", "2021-07-21T14:00:0\u0660Z"])  # digits beyond 0-9
def test_parse_datetime_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_datetime(bad)


def test_format_datetime_always_has_z_and_milliseconds() -> None:
    assert format_datetime(datetime(2021, 7, 21, 14, tzinfo=timezone.utc)) == "2021-07-21T14:00:00.000Z"
    assert format_datetime(datetime(2021, 7, 21, 14)) == "2021-07-21T14:00:00.000Z"
    assert format_datetime(datetime(2021, 7, 21, 14, 0, 0, 1500, tzinfo=timezone.utc)) == "2021-07-21T14:00:00.001500Z"
