"""Identifiers: time-ordered, URL-safe, 26 characters (Crockford base32, lower case).

Ids sort roughly by creation time, which keeps B-tree inserts local and makes the id a
stable key for keyset pagination.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
"""Every 10-bit value as two base32 characters: 13 lookups encode an id."""
_SHIFTS = tuple(range(120, -1, -10))


_RANDOM_BLOCK = 4096
_local = threading.local()


def _random80() -> int:
    """80 bits from the OS's random source, read a block at a time (one system call per 409 ids)."""
    state = _local.__dict__
    block, at = state.get("block", b""), state.get("at", 0)
    if at + 10 > len(block):
        block, at = os.urandom(_RANDOM_BLOCK), 0
        state["block"] = block
    state["at"] = at + 10
    return int.from_bytes(block[at:at + 10], "big")


def new_id() -> str:
    """48 bits of milliseconds since the epoch, then 80 random bits, as 26 characters."""
    return encode((time.time_ns() // 1_000_000) << 80 | _random80())


def encode(value: int) -> str:
    """A 128-bit number as 26 base32 characters, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in _SHIFTS])
