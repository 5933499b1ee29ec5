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


def _forget_random_block() -> None:
    _local.__dict__.clear()


# A forked child starts with a copy of its parent's unused random bytes: without this, parent
# and child (a bulk import's worker processes) would make the same ids.
os.register_at_fork(after_in_child=_forget_random_block)


def _random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS's random source, read a block at a time: one system call per
    few hundred ids (a call per id showed in the request profile)."""
    state = _local.__dict__
    block, at = state.get("block", b""), state.get("at", 0)
    if at + n > len(block):
        block, at = os.urandom(_RANDOM_BLOCK), 0
        state["block"] = block
    state["at"] = at + n
    return block[at:at + n]


def random_hex(nbytes: int = 16) -> str:
    """``nbytes`` random bytes as lower-case hex (a request id, say)."""
    return _random_bytes(nbytes).hex()


def new_id() -> str:
    """48 bits of milliseconds since the epoch, then 80 random bits, as 26 characters."""
    return encode((time.time_ns() // 1_000_000) << 80 | int.from_bytes(_random_bytes(10), "big"))


def encode(value: int) -> str:
    """A 128-bit number as 26 base32 characters, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in _SHIFTS])
