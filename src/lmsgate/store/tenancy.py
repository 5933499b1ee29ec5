"""Projects, API keys and linked accounts: who may call, and on which account."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, Integer, Text, cast, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from lmsgate.ids import new_id
from lmsgate.store import tables as t
from lmsgate.store.db import hold_write_lock, writing

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
    origin_username: str | None = None
    label: str | None = None
    credentials: str | None = field(default=None, repr=False)
    """The vault-sealed credentials (ciphertext), or None; decrypted only by the vault."""
    created_at: datetime | None = None
    updated_at: datetime | None = None


def account_from_row(row: Any) -> Account:
    return Account(
        id=row.id, project_id=row.project_id, provider=row.provider, status=row.status,
        config=row.config or {}, origin_owner_id=row.origin_owner_id,
        origin_owner_name=row.origin_owner_name, origin_username=row.origin_username,
        label=row.label, credentials=row.credentials, created_at=row.created_at,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    project_id: str
    secret: str
    """The full key. Shown once; only its hash is stored."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """An API key as it can be shown: its id, name and first characters, never the key."""

    id: str
    project_id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


MIN_KEY_LENGTH = 16


def check_key_secret(secret: str) -> None:
    """Refuse a pinned key too short to be a secret (ValueError, saying why)."""
    if len(secret) < MIN_KEY_LENGTH:
        raise ValueError(f"an API key must be at least {MIN_KEY_LENGTH} characters long")


def display_prefix(key: str) -> str:
    """The first characters of a key, kept so people can tell their keys apart."""
    return key[:12]


def now() -> datetime:
    return datetime.now(timezone.utc)


ACCOUNT_CACHE_SECONDS = 2.0
"""How long a process may answer from its memory of an account. Changes made by this process
take effect at once; changes made by another process (scale-out) within this many seconds."""


class Tenancy:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._accounts: dict[str, tuple[Account, float]] = {}
        self.on_forget: list[Callable[[str | None], None]] = []
        """Called with what :meth:`forget_account` forgets: other caches of account facts in
        this process (the store's account keys) follow it."""

    def forget_account(self, account_id: str | None = None) -> None:
        """Drop cached accounts (one, or all); call after any change to an account row."""
        if account_id is None:
            self._accounts.clear()
        else:
            self._accounts.pop(account_id, None)
        for forget in self.on_forget:
            forget(account_id)

    # ---------------------------------------------------------------- instance
    def instance_secret(self, name: str) -> bytes:
        """A random per-instance secret, created on first use and kept in the database.

        Every process on the database must get the same one (a cursor signed by one server is
        read by another). Processes started together on a new database may all find none:
        the first insert wins, and the others, refused, read the winner's."""
        for attempt in range(5):
            try:
                with writing(self.engine) as conn:
                    row = conn.execute(select(t.instance.c.value).where(t.instance.c.key == name)).first()
                    if row:
                        return bytes.fromhex(row[0])
                    value = secrets.token_hex(32)
                    conn.execute(insert(t.instance).values(key=name, value=value))
                    return bytes.fromhex(value)
            except DBAPIError:  # PostgreSQL: a duplicate key; SQLite: a snapshot older than the insert
                if attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------- projects
    def create_project(self, name: str) -> str:
        pid = new_id()
        with writing(self.engine) as conn:
            conn.execute(insert(t.projects).values(id=pid, name=name, created_at=now()))
        return pid

    def list_projects(self) -> list[tuple[str, str, datetime, int, int]]:
        """Every project, oldest first: (id, name, created, its accounts, its unrevoked keys)."""
        accounts = (select(func.count()).select_from(t.accounts)
                    .where(t.accounts.c.project_id == t.projects.c.id).scalar_subquery())
        keys = (select(func.count()).select_from(t.api_keys)
                .where(t.api_keys.c.project_id == t.projects.c.id, t.api_keys.c.revoked_at.is_(None))
                .scalar_subquery())
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.projects.c.id, t.projects.c.name, t.projects.c.created_at, accounts, keys)
                                .order_by(t.projects.c.created_at, t.projects.c.id))
            return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

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
        check_key_secret(secret)
        kid = new_id()
        with writing(self.engine) as conn:
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
        with writing(self.engine) as conn:
            res = conn.execute(
                update(t.api_keys).where(t.api_keys.c.id == key_id).values(revoked_at=now())
            )
        return res.rowcount > 0

    def list_keys(self, project_id: str | None = None, key_id: str | None = None) -> list[KeyInfo]:
        """API keys, oldest first: what is known of them, never the keys themselves."""
        c = t.api_keys.c
        q = select(c.id, c.project_id, c.name, c.prefix, c.created_at, c.revoked_at).order_by(c.created_at, c.id)
        if project_id is not None:
            q = q.where(c.project_id == project_id)
        if key_id is not None:
            q = q.where(c.id == key_id)
        with self.engine.connect() as conn:
            return [KeyInfo(*row) for row in conn.execute(q)]

    def project_exists(self, project_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(t.projects.c.id).where(t.projects.c.id == project_id)).first() is not None

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
        origin_username: str | None = None,
        label: str | None = None,
        credentials: str | None = None,
        status: str = "active",
    ) -> Account:
        """Insert an account. ``credentials`` must already be sealed by the vault."""
        ts = now()
        acc = Account(
            id=account_id or new_id(), project_id=project_id, provider=provider, status=status,
            config=config or {}, origin_owner_id=origin_owner_id, origin_owner_name=origin_owner_name,
            origin_username=origin_username, label=label, credentials=credentials,
            created_at=ts, updated_at=ts,
        )
        with writing(self.engine) as conn:
            conn.execute(
                insert(t.accounts).values(
                    key=self._next_account_key(conn),
                    id=acc.id, project_id=project_id, provider=provider, status=acc.status,
                    config=acc.config, origin_owner_id=origin_owner_id,
                    origin_owner_name=origin_owner_name, origin_username=origin_username, label=label,
                    credentials=credentials, created_at=ts, updated_at=ts,
                )
            )
        self.forget_account(acc.id)
        return acc

    @staticmethod
    def _next_account_key(conn: Connection) -> int:
        """A key no account has had (see ``tables.accounts``): one more than the last given.
        The update locks the counter until the new account commits."""
        value = cast(cast(t.instance.c.value, Integer) + 1, Text)
        return int(conn.execute(
            update(t.instance).where(t.instance.c.key == "last_account_key").values(value=value)
            .returning(t.instance.c.value)
        ).scalar_one())

    def first_account(self, project_id: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.accounts.c.id)
                .where(t.accounts.c.project_id == project_id)
                .order_by(t.accounts.c.created_at)
                .limit(1)
            ).scalar()

    def get_account(self, account_id: str) -> Account | None:
        """The account, from a short-lived cache (see ``ACCOUNT_CACHE_SECONDS``): every API
        call resolves its account, and this keeps that off the database."""
        cached = self._accounts.get(account_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        account = self._load_account(account_id)
        if account is None:  # misses are not remembered: another process may create it now
            return None
        if len(self._accounts) > 10_000:
            self._accounts.clear()
        self._accounts[account_id] = (account, time.monotonic() + ACCOUNT_CACHE_SECONDS)
        return account

    def _load_account(self, account_id: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.accounts).where(t.accounts.c.id == account_id)).first()
        if row is None:
            return None
        return account_from_row(row)

    def set_account_status(self, account_id: str, status: str) -> None:
        self.forget_account(account_id)
        with writing(self.engine) as conn:
            conn.execute(
                update(t.accounts)
                .where(t.accounts.c.id == account_id)
                .values(status=status, updated_at=now())
            )

    # ---------------------------------------------------------------- linked-accounts API
    def list_accounts(
        self,
        project_id: str,
        *,
        providers: list[str] | None = None,
        origin_owner_ids: list[str] | None = None,
        account_ids: list[str] | None = None,
        statuses: list[str] | None = None,
        offset: int = 0,
        limit: int = 25,
    ) -> list[Account]:
        """A project's accounts, oldest first, filtered and paged by offset."""
        c = t.accounts.c
        q = select(t.accounts).where(c.project_id == project_id)
        if providers:
            q = q.where(c.provider.in_(providers))
        if origin_owner_ids:
            q = q.where(c.origin_owner_id.in_(origin_owner_ids))
        if account_ids:
            q = q.where(c.id.in_(account_ids))
        if statuses:
            q = q.where(c.status.in_(statuses))
        q = q.order_by(c.created_at, c.id).offset(offset).limit(limit)
        with self.engine.connect() as conn:
            return [account_from_row(r) for r in conn.execute(q)]

    def update_account(self, account_id: str, **values: Any) -> Account | None:
        """Change columns of an account (``credentials`` sealed already); None if it is gone."""
        allowed = {"status", "config", "origin_owner_id", "origin_owner_name", "origin_username",
                   "label", "credentials"}
        unknown = set(values) - allowed
        if unknown:
            raise ValueError(f"not account columns: {sorted(unknown)}")
        self.forget_account(account_id)
        with writing(self.engine) as conn:
            conn.execute(update(t.accounts).where(t.accounts.c.id == account_id)
                         .values(**values, updated_at=now()))
        self.forget_account(account_id)
        return self._load_account(account_id)

    def delete_account(self, account_id: str) -> bool:
        """Delete an account with everything stored under it (the embedded LMS's records)."""
        from sqlalchemy import delete

        self.forget_account(account_id)
        with writing(self.engine) as conn:
            hold_write_lock(conn)
            # Locked first (SQLite: the database's write lock, taken just above). On
            # PostgreSQL a record's insert checks its account with a share lock on the row: the
            # delete waits for writes in flight, and writes that come after wait for it, then
            # find the account gone (404). Without it, a record committed after the records'
            # delete made the account's delete fail (a 500).
            key = conn.execute(select(t.accounts.c.key).where(t.accounts.c.id == account_id)
                               .with_for_update()).scalar()
            for table in reversed(t.metadata.sorted_tables):
                if table is not t.accounts and "account_id" in table.c:
                    conn.execute(delete(table).where(table.c.account_id == account_id))
                elif "account_key" in table.c and key is not None:
                    conn.execute(delete(table).where(table.c.account_key == key))
            res = conn.execute(delete(t.accounts).where(t.accounts.c.id == account_id))
        self.forget_account(account_id)
        return res.rowcount > 0

    def holds_sealed_credentials(self) -> bool:
        """Whether any account has sealed credentials (so a vault key exists somewhere)."""
        c = t.accounts.c
        with self.engine.connect() as conn:
            return conn.execute(select(c.id).where(c.credentials.is_not(None)).limit(1)).first() is not None

    def sealed_credentials(self) -> list[tuple[str, str]]:
        """Every (account id, sealed credentials) pair, for key rotation."""
        c = t.accounts.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.id, c.credentials).where(c.credentials.is_not(None)).order_by(c.id))
            return [(r.id, r.credentials) for r in rows]

    def replace_credentials(self, account_id: str, old: str, new: str) -> bool:
        """Swap sealed credentials only if they are still ``old`` (safe against concurrent edits)."""
        c = t.accounts.c
        self.forget_account(account_id)
        with writing(self.engine) as conn:
            res = conn.execute(update(t.accounts).where(c.id == account_id, c.credentials == old)
                               .values(credentials=new))
        self.forget_account(account_id)
        return res.rowcount > 0
