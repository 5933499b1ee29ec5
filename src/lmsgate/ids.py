"""Identifiers: time-ordered, URL-safe, 26 characters (Crockford base32, lower case).

Ids sort roughly by creation time, which keeps B-tree inserts local and makes the id a
stable key for keyset pagination.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id() -> str:
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    out = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))
