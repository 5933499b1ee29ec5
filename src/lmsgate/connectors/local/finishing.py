"""The last step of a completion rendered by the database (``rendering``): the fields it
cannot write the way Python does, added as text.

Apart from ``rendering`` (which builds the SQL with SQLAlchemy) so that a page reader
process (``store.page_readers``) finishes pages with only this, the standard library and
orjson loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import orjson

from lmsgate.durations import normalised_duration

__all__ = ["finish", "finish_page"]


@lru_cache(maxsize=4096)
def _time_spent_suffix(text: str | None) -> str:
    return ',"time_spent":' + orjson.dumps(normalised_duration(text)).decode() + "}"


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits
        return json.dumps(value)


def _result_text(result_value: str | None, result_source: Any) -> str:
    if isinstance(result_source, (int, float)):
        result_source = _json(result_source)
    elif isinstance(result_source, bytes):  # SQLite: an integer beyond 64 bits, kept as JSON text
        result_source = result_source.decode()
    if result_value is None and (result_source is None or result_source == "null"):
        return "null"
    return '{"value":' + _json(result_value) + ',"source_value":' + (result_source or "null") + "}"


def _score_text(score_percentage: float | None, score_raw_value: str | None) -> str:
    if score_percentage is None and score_raw_value is None:
        return "null"
    return '{"percentage":' + _json(score_percentage) + ',"raw_value":' + _json(score_raw_value) + "}"


def finish(rendered: str, time_spent: str | None, result_value: str | None, result_source: Any,
           score_percentage: float | None, score_raw_value: str | None) -> str:
    """Complete an object from ``completion_json`` with the columns ``completion_columns``
    reads before it. ``result_source`` is the stored JSON: text (``null`` for a None that was
    stored), or on SQLite a bare number."""
    return (rendered[:-1] + ',"result":' + _result_text(result_value, result_source)
            + ',"score":' + _score_text(score_percentage, score_raw_value) + _time_spent_suffix(time_spent))


_CACHED = 4096
_results: dict[tuple[str | None, str | None], str] = {}
_scores: dict[tuple[float | None, str | None], str] = {}


def finish_page(rows: Iterable[Sequence[Any]]) -> list[str]:
    """``finish`` for each ``(id, *completion_columns)`` row of a page, text for text.

    A page repeats a few results and scores (``Pass`` and ``null``, the same percentages):
    their texts are kept in two small dictionaries, which made a page of 100 cost 36-45 µs
    instead of 120 with rows all alike, and 74-97 µs instead of 150-173 with random durations
    and scores. Only keys whose equality means the same text are kept: a source stored as
    JSON text or none (a bare number's ``1`` and ``1.0`` are equal keys), and a percentage that
    is a float other than zero, or none (``0.0`` and ``-0.0`` are equal keys, and print
    differently)."""
    results, scores = _results, _scores
    out: list[str] = []
    for _, time_spent, result_value, result_source, percentage, raw_value, rendered in rows:
        if result_source is None or result_source.__class__ is str:
            result = results.get((result_value, result_source))
            if result is None:
                if len(results) >= _CACHED:
                    results.clear()
                result = results[(result_value, result_source)] = _result_text(result_value, result_source)
        else:
            result = _result_text(result_value, result_source)
        if percentage is None or (percentage.__class__ is float and percentage != 0):
            score = scores.get((percentage, raw_value))
            if score is None:
                if len(scores) >= _CACHED:
                    scores.clear()
                score = scores[(percentage, raw_value)] = _score_text(percentage, raw_value)
        else:
            score = _score_text(percentage, raw_value)
        out.append(f'{rendered[:-1]},"result":{result},"score":{score}{_time_spent_suffix(time_spent)}')
    return out
