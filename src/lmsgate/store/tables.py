"""The database schema, as SQLAlchemy Core tables. Alembic migrations mirror this file.

Every learning record belongs to one linked account (``account_id``), and every linked
account to one project: a project's API keys can only reach its own accounts.

Rich, nested resources (content, courses, users, categories, skills) keep their unified body
in a JSON ``doc`` column beside the columns that lists filter and page on. Completions and
assignments, the records lmsgate exists for, are fully columnar.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
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
    Column("config", JSON, nullable=False, default=dict),
    Column("credentials", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
"""Linked accounts. ``credentials`` holds ciphertext only (see the vault)."""


def _record_columns() -> list[Column]:  # type: ignore[type-arg]
    return [
        Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
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
    Index(None, "account_id", "email"),
    Index(None, "account_id", "external_reference"),
    Index(None, "account_id", "updated_at"),
)

content = Table(
    "content",
    metadata,
    *_record_columns(),
    Column("external_reference", String(255), nullable=False),
    Column("active", Integer),
    Column("doc", JSON, nullable=False),
    UniqueConstraint("account_id", "external_reference"),
    Index(None, "account_id", "updated_at"),
)

courses = Table(
    "courses",
    metadata,
    *_record_columns(),
    Column("external_reference", String(255), nullable=False),
    Column("doc", JSON, nullable=False),
    UniqueConstraint("account_id", "external_reference"),
    Index(None, "account_id", "updated_at"),
)

categories = Table(
    "categories",
    metadata,
    *_record_columns(),
    Column("name", String(255)),
    Column("doc", JSON, nullable=False),
    Index(None, "account_id", "name"),
    Index(None, "account_id", "updated_at"),
)

skills = Table(
    "skills",
    metadata,
    *_record_columns(),
    Column("name", String(255)),
    Column("doc", JSON, nullable=False),
    Index(None, "account_id", "name"),
    Index(None, "account_id", "updated_at"),
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
        doc="SHA-256 of user, learning object and completed_at: a repeat post finds the first.",
    ),
    UniqueConstraint("account_id", "dedupe_key"),
    Index(None, "account_id", "user_id", "id"),
    Index(None, "account_id", "updated_at"),
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
    UniqueConstraint("account_id", "dedupe_key"),
    Index(None, "account_id", "user_id", "id"),
    Index(None, "account_id", "status_value", "id"),
    Index(None, "account_id", "updated_at"),
)

course_content = Table(
    "course_content",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id"), primary_key=True),
    Column("course_id", ID, primary_key=True),
    Column("content_external_reference", String(255), primary_key=True),
    Column("position", Integer, nullable=False, default=0),
    Index(None, "account_id", "content_external_reference"),
)
"""Which content (by external reference) each course contains, in order."""
