"""All SQL for ``Idempotency-Key`` records (see :mod:`lmsgate.api.idempotency` for the rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from lmsgate.store import tables as t
from lmsgate.store.db import writing

k = t.idempotency_keys.c


@dataclass(frozen=True, slots=True)
class Began:
    """This request holds the key now; it must :meth:`IdempotencyStore.finish` or ``release`` it."""


@dataclass(frozen=True, slots=True)
class InFlight:
    """The first request with this key is still running."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The key was used for another request (another account, method, path or body)."""


@dataclass(frozen=True, slots=True)
class Stored:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


Decision = Began | InFlight | Mismatch | Stored


class IdempotencyStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def begin(self, project_id: str, key: str, fingerprint: str, account_id: str | None, now: datetime,
              ttl: float, lock: float) -> Decision:
        """Take the key for a request, or say why not. Safe against concurrent requests: of two
        requests racing with one key, exactly one gets :class:`Began`."""
        values: dict[str, Any] = {
            "project_id": project_id, "key": key, "fingerprint": fingerprint, "account_id": account_id,
            "state": "in_flight", "status": None, "headers": None, "body": None, "created_at": now,
            "locked_until": now + timedelta(seconds=lock), "expires_at": now + timedelta(seconds=ttl),
        }
        for _ in range(5):
            with writing(self.engine) as conn:
                # RETURNING, not rowcount: psycopg reports -1 for INSERT … ON CONFLICT DO NOTHING
                taken = conn.execute(self._insert(t.idempotency_keys).values(**values)
                                     .on_conflict_do_nothing(index_elements=["project_id", "key"])
                                     .returning(k.key)).first()
                if taken is not None:
                    return Began()
                row = conn.execute(select(t.idempotency_keys)
                                   .where(k.project_id == project_id, k.key == key)).first()
                if row is None:
                    continue  # deleted meanwhile (released or purged): try again
                abandoned = row.state == "in_flight" and row.locked_until <= now
                if row.expires_at <= now or abandoned:
                    # Expired, or its request died: take it over, unless someone else just did.
                    took = conn.execute(update(t.idempotency_keys)
                                        .where(k.project_id == project_id, k.key == key,
                                               k.created_at == row.created_at, k.state == row.state)
                                        .values(**values)).rowcount
                    if took:
                        return Began()
                    continue
                if row.fingerprint != fingerprint:
                    return Mismatch()
                if row.state == "in_flight":
                    return InFlight()
                return Stored(row.status, [tuple(h) for h in row.headers or []], bytes(row.body or b""))
        return InFlight()

    def finish(self, project_id: str, key: str, status: int, headers: list[tuple[str, str]],
               body: bytes) -> None:
        with writing(self.engine) as conn:
            conn.execute(update(t.idempotency_keys)
                         .where(k.project_id == project_id, k.key == key, k.state == "in_flight")
                         .values(state="done", status=status, headers=[list(h) for h in headers], body=body))

    def release(self, project_id: str, key: str) -> None:
        """Forget a key whose request produced no answer worth replaying (a retry runs again)."""
        with writing(self.engine) as conn:
            conn.execute(delete(t.idempotency_keys)
                         .where(k.project_id == project_id, k.key == key, k.state == "in_flight"))

    def purge(self, now: datetime) -> int:
        """Delete expired keys."""
        with writing(self.engine) as conn:
            return conn.execute(delete(t.idempotency_keys).where(k.expires_at <= now)).rowcount
