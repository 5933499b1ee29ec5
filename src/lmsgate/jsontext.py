"""JSON text with integers of any size, as JSON itself allows.

orjson is fast, but it refuses to write an integer beyond 64 bits and reads one as a float,
losing digits. Such numbers are rare (a ``passthrough`` may hold one), so only they pay for the
standard library: text with 19 or more digits in a row is read again by it, and a value orjson
cannot write is written by it. Used for the store's JSON columns, the import's files, the
export, and the Python client's request bodies.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

_LONG_NUMBER = re.compile(r"\d{19}")
_LONG_NUMBER_BYTES = re.compile(rb"\d{19}")


def dumps(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # e.g. an integer beyond 64 bits
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    """``text`` (str from SQLite, bytes from psycopg or a file) read as JSON; raises
    ``orjson.JSONDecodeError`` (a ``ValueError``) for what is not JSON. Nested too deep for the
    standard library (it recurses), orjson's reading stands."""
    pattern = _LONG_NUMBER_BYTES if isinstance(text, bytes) else _LONG_NUMBER
    # first: a TypeError for what is no text, as the SQLite dialect expects (it hands a JSON
    # column holding a bare number over as that number, and keeps it when decoding refuses it)
    long_number = pattern.search(text)  # type: ignore[arg-type]
    value = orjson.loads(text)
    if long_number:
        try:
            return json.loads(text)
        except RecursionError:
            pass
    return value
