"""Projects, API keys and linked accounts: who may call, and on which account."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, insert, select, update

from lmsgate.ids import new_id
from lmsgate.store import tables as t

KEY_PREFIX = "lmsg"


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    project_id: str
    provider: str
    status: str
    config: dict[str, Any]
    origin_owner_id: str | None = None
    origin_owner_name: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    project_id: str
    secret: str
    """The full key. Shown once; only its hash is stored."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


MIN_KEY_LENGTH = 16


def display_prefix(key: str) -> str:
    """The first characters of a key, kept so people can tell their keys apart."""
    return key[:12]


def now() -> datetime:
    return datetime.now(timezone.utc)


class Tenancy:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---------------------------------------------------------------- instance
    def instance_secret(self, name: str) -> bytes:
        """A random per-instance secret, created on first use and kept in the database."""
        with self.engine.begin() as conn:
            row = conn.execute(select(t.instance.c.value).where(t.instance.c.key == name)).first()
            if row:
                return bytes.fromhex(row[0])
            value = secrets.token_hex(32)
            conn.execute(insert(t.instance).values(key=name, value=value))
            return bytes.fromhex(value)

    # ---------------------------------------------------------------- projects
    def create_project(self, name: str) -> str:
        pid = new_id()
        with self.engine.begin() as conn:
            conn.execute(insert(t.projects).values(id=pid, name=name, created_at=now()))
        return pid

    def first_project(self) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.projects.c.id).order_by(t.projects.c.created_at).limit(1)
            ).scalar()

    # ---------------------------------------------------------------- keys
    def issue_key(self, project_id: str, name: str = "default", secret: str | None = None) -> IssuedKey:
        """Issue a key. ``secret`` pins its value (it must have the lmsg_ form)."""
        if secret is None:
            secret = f"{KEY_PREFIX}_{secrets.token_urlsafe(32)}"
        if len(secret) < MIN_KEY_LENGTH:
            raise ValueError(f"an API key must be at least {MIN_KEY_LENGTH} characters long")
        kid = new_id()
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.api_keys).values(
                    id=kid, project_id=project_id, name=name, prefix=display_prefix(secret),
                    hash=_hash(secret), created_at=now(),
                )
            )
        return IssuedKey(id=kid, project_id=project_id, secret=secret)

    def has_key(self, secret: str) -> bool:
        return self.authenticate(secret) is not None

    def authenticate(self, secret: str) -> str | None:
        """Return the project of a live key.

        Rows are found by the SHA-256 of the key, so the database never sees the key, and the
        stored hash is compared in constant time.
        """
        digest = _hash(secret)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.api_keys.c.project_id, t.api_keys.c.hash, t.api_keys.c.revoked_at).where(
                    t.api_keys.c.hash == digest
                )
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        return row.project_id if hmac.compare_digest(digest, row.hash) else None

    def revoke_key(self, key_id: str) -> bool:
        with self.engine.begin() as conn:
            res = conn.execute(
                update(t.api_keys).where(t.api_keys.c.id == key_id).values(revoked_at=now())
            )
        return res.rowcount > 0

    # ---------------------------------------------------------------- accounts
    def create_account(
        self,
        project_id: str,
        provider: str,
        *,
        account_id: str | None = None,
        config: dict[str, Any] | None = None,
        origin_owner_id: str | None = None,
        origin_owner_name: str | None = None,
    ) -> Account:
        acc = Account(
            id=account_id or new_id(), project_id=project_id, provider=provider, status="active",
            config=config or {}, origin_owner_id=origin_owner_id, origin_owner_name=origin_owner_name,
        )
        ts = now()
        with self.engine.begin() as conn:
            conn.execute(
                insert(t.accounts).values(
                    id=acc.id, project_id=project_id, provider=provider, status=acc.status,
                    config=acc.config, origin_owner_id=origin_owner_id,
                    origin_owner_name=origin_owner_name, created_at=ts, updated_at=ts,
                )
            )
        return acc

    def first_account(self, project_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.accounts.c.id)
                .where(t.accounts.c.project_id == project_id)
                .order_by(t.accounts.c.created_at)
                .limit(1)
            ).scalar()

    def get_account(self, account_id: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.accounts).where(t.accounts.c.id == account_id)).first()
        if row is None:
            return None
        return Account(
            id=row.id, project_id=row.project_id, provider=row.provider, status=row.status,
            config=row.config or {}, origin_owner_id=row.origin_owner_id,
            origin_owner_name=row.origin_owner_name,
        )

    def set_account_status(self, account_id: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.accounts)
                .where(t.accounts.c.id == account_id)
                .values(status=status, updated_at=now())
            )
