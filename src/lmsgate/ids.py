"""Identifiers: time-ordered, URL-safe, 26 characters (Crockford base32, lower case).

Ids sort roughly by creation time, which keeps B-tree inserts local and makes the id a
stable key for keyset pagination.

An id is 48 bits of milliseconds since the epoch, then 80 random bits. With the two leading
zero bits of 130, the first 10 characters are the time and the last 16 the random bits, so
the two halves are made apart: the time half once per millisecond, the random halves in
blocks straight from the OS's random bytes (a bulk import makes one id per row).
"""

from __future__ import annotations

import os
import threading
from time import time_ns

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
"""Every 10-bit value as two base32 characters: 13 lookups encode an id."""
_SHIFTS = tuple(range(120, -1, -10))
_LOW_FIVE_BITS = bytes(_ALPHABET.encode()[b & 31] for b in range(256))
"""Each byte to the base32 character of its low 5 bits: a uniform random byte gives a
uniform random character (256 is a multiple of 32)."""

_RANDOM_BLOCK = 4096
_PARTS_PER_BLOCK = 400
_local = threading.local()
_random_parts: list[str] = []
"""Random halves ready to use. ``list.pop`` is atomic, so threads never share one."""
_last_ms: tuple[int, str] = (-1, "")
"""The last millisecond an id was made in, and its 10 characters (replaced as one tuple)."""


def _forget_random_state() -> None:
    _local.__dict__.clear()
    _random_parts.clear()


# A forked child starts with a copy of its parent's unused random bytes: without this, parent
# and child (a bulk import's worker processes) would make the same ids.
os.register_at_fork(after_in_child=_forget_random_state)


def _random_bytes(n: int) -> bytes:
    """``n`` bytes from the OS's random source, read a block at a time, for :func:`random_hex`
    (request ids): one system call per few hundred (a call each showed in the request profile)."""
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


def _random_part() -> str:
    """16 random base32 characters (80 bits)."""
    try:
        return _random_parts.pop()
    except IndexError:
        text = os.urandom(16 * _PARTS_PER_BLOCK).translate(_LOW_FIVE_BITS).decode("ascii")
        _random_parts.extend([text[i:i + 16] for i in range(0, len(text), 16)])
        return _random_parts.pop()


def new_id() -> str:
    """48 bits of milliseconds since the epoch, then 80 random bits, as 26 characters: what
    ``encode(ms << 80 | random)`` gives, about five times faster."""
    global _last_ms
    ms = time_ns() // 1_000_000
    last = _last_ms
    if last[0] != ms:
        last = _last_ms = (ms, encode(ms << 80)[:10])
    return last[1] + _random_part()


def encode(value: int) -> str:
    """A 128-bit number as 26 base32 characters, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 0x3FF] for shift in _SHIFTS])
