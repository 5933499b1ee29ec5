"""Keyset pagination and opaque, signed cursors.

A cursor names the last id of the page it ends, the account and the resource it belongs
to, and carries an HMAC so it cannot be forged or replayed against another account. A page
is then ``WHERE id > :last ORDER BY id LIMIT n``: page 5,000 costs what page 1 costs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from lmsgate.errors import BadRequest


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a list call asks for, already parsed and checked by the API layer."""

    page_size: int
    after_id: str | None = None
    offset: int | None = None
    updated_after: datetime | None = None
    filters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Page:
    items: list[Any]
    last_id: str | None
    has_more: bool

    @classmethod
    def cut(cls, rows: list[Any], page_size: int, id_of: Callable[[Any], str]) -> Page:
        """The page from up to ``page_size + 1`` rows read in id order: the extra row, if it
        came, only says that more follow."""
        items = rows[:page_size]
        return cls(items=items, last_id=id_of(items[-1]) if items else None, has_more=len(rows) > page_size)


class CursorCodec:
    """Encodes and checks ``next`` cursors with an instance secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes) -> str:
        mac = hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def encode(self, account_id: str, resource: str, last_id: str) -> str:
        payload = orjson.dumps({"a": account_id, "r": resource, "k": last_id})
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._sign(payload)}"

    def decode(self, cursor: str, account_id: str, resource: str) -> str:
        """Return the last id named by ``cursor``; 400 if it is not one of ours for this list."""
        try:
            body, sig = cursor.split(".", 1)
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            # bytes, not str: compare_digest refuses non-ASCII str (a 500 found by fuzzing)
            valid = hmac.compare_digest(sig.encode(), self._sign(payload).encode())
            data = orjson.loads(payload) if valid else None
        except (ValueError, orjson.JSONDecodeError):
            data = None
        if (
            not isinstance(data, dict)
            or data.get("a") != account_id
            or data.get("r") != resource
            or not isinstance(data.get("k"), str)
        ):
            raise BadRequest("next: not a valid cursor for this list; start again without next")
        return data["k"]
