"""The database schema, as SQLAlchemy Core tables. Alembic migrations mirror this file.

Every learning record belongs to one linked account, and every linked account to one
project: a project's API keys can only reach its own accounts.

Record tables name their account by ``account_key``, a small integer the account gets when
it is created (``accounts.key``), not by its 26-character id. The account is the first
column of the table and of every one of its indexes, so the id was stored five times a
completion. With the key, a SQLite store of 1,000,000 completions went from 601 to 427 MB
(after ``VACUUM``), and the import benchmark's bare inserts of prepared rows ran at
55,599–59,340 rows/s against 44,705 before, the same afternoon (``docs/operations.md``).
The store turns account ids into keys (``LmsStore.account_key``); nothing outside
``lmsgate.store`` sees them.

Rich, nested resources (content, courses, users, categories, skills) keep their unified body
in a JSON ``doc`` column beside the columns that lists filter and page on. Completions and
assignments, the records lmsgate exists for, are fully columnar.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """A UTC instant. Stored naive (SQLite has no zones) and read back aware."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


ID = String(64)

instance = Table(
    "instance",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
"""Instance-wide values created on first run, such as the cursor-signing secret."""

projects = Table(
    "projects",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)
"""API keys: only a SHA-256 of the key is kept, plus its first characters for display."""

accounts = Table(
    "accounts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("project_id", ID, ForeignKey("projects.id"), nullable=False, index=True),
    Column("provider", String(64), nullable=False),
    Column("status", String(16), nullable=False, default="active"),
    Column("origin_owner_id", String(200)),
    Column("origin_owner_name", String(200)),
    # In the order the migrations leave them: a new database gets the same table either way.
    Column("config", JSON, nullable=False, default=dict),
    Column("credentials", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("origin_username", String(200)),
    Column("label", String(200)),
    Column("key", Integer, nullable=False,
           doc="What record tables name the account by (account_key); never given to another account."),
    Index(None, "key", unique=True),  # an index, not a constraint: SQLite can add one to a table
)
"""Linked accounts. ``config`` holds the non-secret settings (``setup_information``);
``credentials`` holds the secret ones as vault ciphertext only (see ``lmsgate.vault``)."""


def _record_columns() -> list[Column]:  # type: ignore[type-arg]
    return [
        Column("account_key", Integer, ForeignKey("accounts.key"), primary_key=True, autoincrement=False),
        Column("id", ID, primary_key=True),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
    ]


users = Table(
    "lms_users",
    metadata,
    *_record_columns(),
    Column("external_reference", String(255)),
    Column("email", String(320)),
    Column("doc", JSON, nullable=False),
    Index(None, "account_key", "email"),
    Index(None, "account_key", "external_reference"),
    Index(None, "account_key", "updated_at"),
)

content = Table(
    "content",
    metadata,
    *_record_columns(),
    Column("external_reference", String(255), nullable=False),
    Column("active", Integer),
    Column("doc", JSON, nullable=False),
    UniqueConstraint("account_key", "external_reference"),
    Index(None, "account_key", "updated_at"),
)

courses = Table(
    "courses",
    metadata,
    *_record_columns(),
    Column("external_reference", String(255), nullable=False),
    Column("doc", JSON, nullable=False),
    UniqueConstraint("account_key", "external_reference"),
    Index(None, "account_key", "updated_at"),
)

categories = Table(
    "categories",
    metadata,
    *_record_columns(),
    Column("name", String(255)),
    Column("doc", JSON, nullable=False),
    Index(None, "account_key", "name"),
    Index(None, "account_key", "updated_at"),
)

skills = Table(
    "skills",
    metadata,
    *_record_columns(),
    Column("name", String(255)),
    Column("doc", JSON, nullable=False),
    Index(None, "account_key", "name"),
    Index(None, "account_key", "updated_at"),
)

completions = Table(
    "completions",
    metadata,
    *_record_columns(),
    Column("user_id", ID, nullable=False),
    Column("learning_object_id", String(255)),
    Column("learning_object_external_reference", String(255), nullable=False),
    Column("learning_object_type", String(32)),
    Column("completed_at", UtcDateTime),
    Column("time_spent", String(64), doc="The ISO 8601 duration exactly as sent."),
    Column("time_spent_seconds", Numeric(20, 6), doc="Exact seconds part of time_spent."),
    Column("time_spent_months", Integer, doc="Calendar months part of time_spent."),
    Column("result_value", String(64)),
    Column("result_source_value", JSON),
    Column("score_percentage", Float),
    Column("score_raw_value", String(255)),
    Column("passthrough", JSON),
    Column(
        "dedupe_key",
        String(64),
        nullable=False,
        doc="completed_at, then SHA-256 of user, learning object and completed_at: a repeat post "
        "finds the first (see ``mapping.completion_key``).",
    ),
    UniqueConstraint("account_key", "dedupe_key"),
    Index(None, "account_key", "user_id", "id"),
    Index(None, "account_key", "updated_at"),
)

assignments = Table(
    "assignments",
    metadata,
    *_record_columns(),
    Column("user_id", ID, nullable=False),
    Column("learning_object_id", String(255)),
    Column("learning_object_external_reference", String(255), nullable=False),
    Column("learning_object_type", String(32)),
    Column("status_value", String(64)),
    Column("status_source_value", JSON),
    Column("progress", Float),
    Column("assigned_at", UtcDateTime),
    Column("due_date", UtcDateTime),
    Column("completed_at", UtcDateTime),
    Column("passthrough", JSON),
    Column(
        "dedupe_key",
        String(64),
        nullable=False,
        doc="SHA-256 of user, learning object and assigned_at: a repeat post finds the first.",
    ),
    UniqueConstraint("account_key", "dedupe_key"),
    Index(None, "account_key", "user_id", "id"),
    Index(None, "account_key", "status_value", "id"),
    Index(None, "account_key", "updated_at"),
)

course_content = Table(
    "course_content",
    metadata,
    Column("account_key", Integer, ForeignKey("accounts.key"), primary_key=True, autoincrement=False),
    Column("course_id", ID, primary_key=True),
    Column("content_external_reference", String(255), primary_key=True),
    Column("position", Integer, nullable=False, default=0),
    Index(None, "account_key", "content_external_reference"),
)
"""Which content (by external reference) each course contains, in order."""

rate_limit_buckets = Table(
    "rate_limit_buckets",
    metadata,
    Column("bucket", String(96), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", Float, nullable=False, doc="Unix time, in seconds, of the last count."),
)
"""Token buckets shared by every API process (``lmsgate.api.ratelimit``): one row per API key
(by its SHA-256, never the key) or per client address. On PostgreSQL the table is UNLOGGED:
no write-ahead log, and emptied after a crash, which only hands out a fresh allowance."""

request_logs = Table(
    "request_logs",
    metadata,
    Column("id", ID, primary_key=True, doc="Time-ordered: the request's start."),
    Column("project_id", ID, nullable=False),
    Column("linked_account_id", ID,
           doc="Not named account_id so that deleting an account keeps its audit trail."),
    Column("request_id", String(128), nullable=False),
    Column("method", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("operation", String(128)),
    Column("resource", String(64)),
    Column("provider", String(64)),
    Column("status", Integer, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("source_ip", String(64)),
    Column("detail", JSON, nullable=False, doc="Request, response and provider calls, secrets masked."),
    Index(None, "project_id", "id"),
    Index(None, "started_at"),
)
"""What each authenticated API call did (``GET /requests/logs``); kept for the retention period."""


# ---------------------------------------------------------------- reliable write-back (issue 6)
# No foreign keys to ``accounts`` here: a worker may still be finishing a delivery of an account
# that is being deleted, and ``Tenancy.delete_account`` removes these rows by ``account_id``.

SEQ = BigInteger().with_variant(Integer(), "sqlite")
"""An autoincrementing integer key (SQLite only autoincrements ``INTEGER PRIMARY KEY``)."""

deliveries = Table(
    "deliveries",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True,
           doc="Insertion order: deliveries with the same ordering_key go out in this order."),
    Column("id", ID, nullable=False, unique=True, doc="The public id (GET /deliveries/{id})."),
    Column("project_id", ID, nullable=False),
    Column("account_id", ID, nullable=False),
    Column("operation", String(64), nullable=False, doc="The connector operation, e.g. create_user_completion."),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("request", JSON, nullable=False, doc="The operation's arguments and validated body."),
    Column("ordering_key", String(64), doc="Writes with the same key (learner + learning object) go in order."),
    Column("status", String(16), nullable=False, doc="pending, delivering, delivered or dead."),
    Column("attempts", Integer, nullable=False, default=0),
    Column("round_attempts", Integer, nullable=False, default=0,
           doc="Attempts since the delivery was created or last retried by hand: what max_attempts counts."),
    Column("round_started_at", UtcDateTime, nullable=False, doc="What max_age counts from."),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    Column("result", JSON, doc="The provider's answer once delivered: the record's id and remote_id."),
    Column("last_error", JSON, doc="The last failure: status, message, provider_errors (secrets masked)."),
    Index(None, "account_id", "status", "seq"),
    Index(None, "account_id", "ordering_key", "seq"),
    Index(None, "project_id", "seq"),
    Index(None, "status", "next_attempt_at"),
)
"""Writes accepted with ``Prefer: respond-async`` (or kept by ``fallback_to_async``), delivered
to the provider in the background (``lmsgate.delivery``)."""

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("delivery_seq", SEQ, primary_key=True, autoincrement=False),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("account_id", ID, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=False),
    Column("outcome", String(16), nullable=False, doc="delivered, retry or dead."),
    Column("status", Integer, doc="The HTTP status lmsgate would have answered a synchronous call with."),
    Column("error", JSON, doc="message and provider_errors, secrets masked."),
)
"""One row per attempt of a delivery: the audit trail behind ``GET /deliveries/{id}``."""

delivery_accounts = Table(
    "delivery_accounts",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("settings", JSON, nullable=False, doc="The account's delivery settings (fallback_to_async, …)."),
    Column("paused_until", UtcDateTime, doc="No attempt before this: the provider is down or said Retry-After."),
    Column("failures", Integer, nullable=False, default=0, doc="Provider failures in a row."),
    Column("tokens", Float, doc="Rate-limit bucket: tokens left at tokens_at."),
    Column("tokens_at", Float, doc="Unix time, in seconds, of the bucket's last count."),
    Column("updated_at", UtcDateTime, nullable=False),
)
"""Per linked account: delivery settings and the state every worker shares (pause, rate limit)."""

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("project_id", ID, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False, doc="SHA-256 of account, method, path and body."),
    Column("account_id", ID),
    Column("state", String(16), nullable=False, doc="in_flight or done."),
    Column("status", Integer),
    Column("headers", JSON),
    Column("body", LargeBinary),
    Column("created_at", UtcDateTime, nullable=False),
    Column("locked_until", UtcDateTime, nullable=False,
           doc="An in_flight key older than this was abandoned (its process died) and may be taken over."),
    Column("expires_at", UtcDateTime, nullable=False),
    Index(None, "expires_at"),
)
"""``Idempotency-Key`` records: the first response to a key, replayed to retries (``lmsgate.api.idempotency``)."""
