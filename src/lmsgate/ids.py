"""Identifiers: time-ordered, URL-safe, 26 characters (Crockford base32, lower case).

Ids sort roughly by creation time, which keeps B-tree inserts local and makes the id a
stable key for keyset pagination.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
"""Every 10-bit value as two base32 characters: 13 lookups encode an id."""
_SHIFTS = tuple(range(120, -1, -10))


def new_id() -> str:
    """48 bits of milliseconds since the epoch, then 80 random bits, as 26 characters."""
    return encode((time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big"))


def encode(value: int) -> str:
    """A 128-bit number as 26 base32 characters, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in _SHIFTS])
