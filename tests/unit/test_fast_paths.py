"""Hot paths rewritten for speed must answer exactly what the plain versions answered."""

from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from lmsgate.connectors.local.finishing import finish, finish_page
from lmsgate.ids import encode, new_id
from lmsgate.schema.common import find_nul
from lmsgate.schema.types import Duration
from lmsgate.store import tables as t
from lmsgate.store.bulk import bind_processor

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode_by_division(value: int) -> str:
    out = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_id_encoding_is_plain_base32(value: int) -> None:
    assert encode(value) == _encode_by_division(value)


def test_ids_are_26_characters_and_sort_by_time() -> None:
    first = new_id()
    assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", first)
    assert int(_ALPHABET.index(first[0])) <= 7  # 128 bits in 130: the top character is small


def test_an_id_is_the_time_in_milliseconds_then_80_random_bits() -> None:
    before = time.time_ns() // 1_000_000
    made = [new_id() for _ in range(5_000)]
    after = time.time_ns() // 1_000_000
    values = [sum(_ALPHABET.index(c) << (5 * (25 - i)) for i, c in enumerate(m)) for m in made]
    assert all(before <= v >> 80 <= after for v in values)
    assert [encode(v) for v in values] == made
    assert made == sorted(made, key=lambda m: m[:10])  # time-ordered
    assert len(set(made)) == len(made)
    # The random half uses every character about equally often (80,000 draws, 2,500 expected each).
    counts = Counter(c for m in made for c in m[10:])
    assert set(counts) == set(_ALPHABET)
    assert all(2_000 < n < 3_000 for n in counts.values())


def test_threads_never_share_an_id() -> None:
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: [new_id() for _ in range(2_000)], range(8)))
    flat = [m for batch in made for m in batch]
    assert len(set(flat)) == len(flat) == 16_000


def _walk(value: Any, path: str = "") -> str | None:
    """The definition: the path of the first string or key holding a NUL."""
    if isinstance(value, str):
        return (path or "<value>") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return sub
            found = _walk(item, sub)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _walk(item, f"{path}[{i}]")
            if found:
                return found
    return None


texts = st.text(alphabet=st.sampled_from(["a", "\x00", "\\", "u", "0", "é"]), max_size=8)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts | st.integers(), inner, max_size=4),
    max_leaves=12,
)


@given(json_like)
@settings(max_examples=400)
def test_finding_nul_characters_agrees_with_the_definition(value: Any) -> None:
    assert find_nul(value) == _walk(value)


@given(st.sampled_from(["PT1H30M", "P1Y2M3DT4H5M6.5S", "PT90M", "P0D", "PT0.000001S", "P1.5Y", "PT1X", "P",
                        "pt1h", " PT1H ", "P0.5M", "PT1.5H30M"]))
def test_parsed_durations_are_shared_but_equal_to_a_fresh_parse(text: str) -> None:
    try:
        fresh = Duration._parse(text)
    except ValueError as exc:
        fresh_error = str(exc)
        try:
            Duration.parse(text)
        except ValueError as cached_exc:
            assert str(cached_exc) == fresh_error
        else:
            raise AssertionError(f"{text!r} parsed from the cache but not fresh")
    else:
        assert Duration.parse(text) == fresh and Duration.parse(text).isoformat() == fresh.isoformat()


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       st.sampled_from([None, timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]))
@settings(max_examples=400)
def test_sqlite_datetimes_are_bound_as_sqlalchemy_binds_them(value: datetime, tz: timezone | None) -> None:
    dialect = sqlite.dialect()
    column = t.completions.c.completed_at
    plain = column.type.dialect_impl(dialect).bind_processor(dialect)
    fast = bind_processor(column, dialect)
    assert fast is not plain
    value = value.replace(tzinfo=tz)
    assert fast(value) == plain(value)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([None, timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                                               timezone(-timedelta(hours=11))])))
def test_rendered_date_times_have_milliseconds_or_microseconds_and_z(value: datetime) -> None:
    from lmsgate.schema.types import format_datetime

    utc = value.astimezone(timezone.utc) if value.tzinfo else value
    fraction = f"{utc.microsecond // 1000:03d}" if utc.microsecond % 1000 == 0 else f"{utc.microsecond:06d}"
    assert format_datetime(value) == (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
                                      f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{fraction}Z")


_SHAPED = st.lists(st.sampled_from("0123456789WwTtZz+-:.x "), min_size=24, max_size=24).map(
    lambda cs: "".join(cs[:4]) + "-" + "".join(cs[5:7]) + "-" + "".join(cs[8:10]) + "T" + "".join(cs[11:13]) + ":"
    + "".join(cs[14:16]) + ":" + "".join(cs[17:19]) + "." + "".join(cs[20:23]) + "Z")


@given(st.one_of(_SHAPED, st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
    lambda d: d.isoformat(timespec="milliseconds") + "Z")))
def test_the_usual_date_time_form_parses_as_the_pattern_does(text: str) -> None:
    """A leading space takes the slow path (the pattern, on the stripped text)."""
    from lmsgate.schema.types import parse_datetime

    try:
        expected: object = parse_datetime(" " + text)
    except ValueError:
        expected = ValueError
    try:
        got: object = parse_datetime(text)
    except ValueError:
        got = ValueError
    assert got == expected
    if isinstance(got, datetime):
        assert got.tzinfo is timezone.utc


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
    lambda d: d.replace(tzinfo=timezone.utc)))
def test_both_texts_of_a_date_time_come_from_one_isoformat(value: datetime) -> None:
    from lmsgate.schema.types import format_datetime
    from lmsgate.store.bulk import _sqlite_utc_datetime, sqlite_datetime_texts

    assert sqlite_datetime_texts(value) == (format_datetime(value), _sqlite_utc_datetime(value))


def test_the_timestamp_of_an_answer_is_the_current_millisecond() -> None:
    from lmsgate.api.responses import now_iso
    from lmsgate.schema.types import parse_datetime

    before = datetime.now(timezone.utc).replace(microsecond=0)
    text = now_iso()
    after = datetime.now(timezone.utc)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    assert before <= parse_datetime(text) <= after
    time.sleep(0.002)  # a later millisecond gives a later text
    assert now_iso() > text


_CELLS = st.none() | st.integers(-(2**70), 2**70) | st.text(max_size=8) | st.dictionaries(
    st.text(max_size=4), st.integers(), max_size=2) | st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(timezone.utc))


@settings(max_examples=60)
@given(st.lists(st.lists(_CELLS, min_size=len(t.completions.columns), max_size=len(t.completions.columns)),
                min_size=1, max_size=3), st.booleans())
def test_a_row_bound_alone_is_bound_as_in_a_batch(rows: list[list[Any]], shared: bool) -> None:
    """One posted completion is bound on its own path; a batch shares converted values between
    rows. Both must give what each column's processor gives."""
    from lmsgate.store.bulk import Bulk

    bulk = Bulk(sqlite.dialect())
    if shared:  # created_at and updated_at are often one object
        for row in rows:
            row[3] = row[2]
    processors = [bind_processor(c, sqlite.dialect()) for c in t.completions.columns]

    def plain(row: list[Any]) -> tuple[Any, ...]:
        try:
            return tuple(v if p is None else p(v) for p, v in zip(processors, row))
        except Exception as exc:  # a value its column cannot take
            return (type(exc),)

    def bound(batch: list[list[Any]]) -> list[tuple[Any, ...]]:
        try:
            return bulk.bind_rows(t.completions, batch)
        except Exception as exc:
            return [(type(exc),)] * len(batch)

    assert [bound([row])[0] for row in rows] == [plain(row) for row in rows]
    if all(len(plain(row)) > 1 for row in rows):
        assert bound(rows) == [plain(row) for row in rows]


def test_request_metrics_count_every_answer_under_its_labels() -> None:
    from lmsgate.api.metrics import Metrics

    metrics = Metrics()
    for status in (201, 201, 422):
        metrics.observe_request("lms_create_user_completion", "POST", status, 0.002)
    text = metrics.render().decode()
    assert 'lmsgate_http_requests_total{method="POST",operation="lms_create_user_completion",status="201"} 2.0' in text
    assert 'lmsgate_http_requests_total{method="POST",operation="lms_create_user_completion",status="422"} 1.0' in text
    assert 'lmsgate_http_request_duration_seconds_count{operation="lms_create_user_completion"} 3.0' in text


@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
       st.sampled_from(["", "https://lms.example.com", "http://h:8080"]))
def test_a_url_without_query_or_user_is_masked_as_a_split_one_is(path: str, origin: str) -> None:
    from lmsgate.http import Redactor

    redactor = Redactor(["s3cret-key", "tok"])
    url = origin + "/" + path
    try:
        expected = redactor._split_url(url)
    except ValueError:  # urlsplit refuses it (a bad IPv6 address); the shortcut may not
        return
    assert redactor.url(url) == expected


def test_the_server_tunes_the_collector_and_the_switch_interval() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import gc, sys; from lmsgate.cli.common import settle_gc; settle_gc(); "
         "print(sys.getswitchinterval(), gc.get_threshold()[0], gc.get_freeze_count() > 0)"],
        capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0.001", "50000", "True"]


_sources = (st.none() | st.just("null") | st.sampled_from(['"passed"', '{"grade": "A"}', "1", "1.0"])
            | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
            | st.sampled_from([0, 0.0, -0.0, 1, 1.0, True]) | st.binary(max_size=3).map(lambda b: b"1" + b.hex().encode()))
_percentages = st.none() | st.floats(0, 100) | st.sampled_from([0, 0.0, -0.0, 80, 80.0, 1 / 3])
_page_rows = st.lists(st.tuples(
    st.just("id"), st.none() | st.sampled_from(["PT1H", "PT90M", "P1W"]),
    st.none() | st.sampled_from(["Pass", "Fail", "unmapped_value"]), _sources, _percentages,
    st.none() | st.sampled_from(["80 / 100", "", "0"]), st.sampled_from(['{"id":"a"}', "{}"])), max_size=12)


@given(st.lists(_page_rows, min_size=1, max_size=4))
def test_a_page_is_finished_as_each_row_is_on_its_own(pages: list[list[tuple[Any, ...]]]) -> None:
    # pages in a row: the second meets the texts the first one left in the caches (values
    # that are equal keys but print differently, 1 and 1.0, 0.0 and -0.0, among them)
    for rows in pages:
        assert finish_page(rows) == [finish(text, *parts) for _, *parts, text in rows]
