"""completion dedupe keys start with the completion time, so that new keys land at the end
of their index instead of all over it

A key was the SHA-256 of learner, learning object and completed_at, as 64 hex digits. It is
now completed_at as YYYYMMDDHHMMSS (UTC) followed by the first 50 of those digits; a
completion without completed_at keeps the 64 digits. The old key's digits are kept, so no
hash needs computing here: one UPDATE rewrites every key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 17:45:00
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        prefix = "to_char(completed_at, 'YYYYMMDDHH24MISS')"
    else:
        prefix = "strftime('%Y%m%d%H%M%S', completed_at)"
    op.execute(f"UPDATE completions SET dedupe_key = {prefix} || substr(dedupe_key, 1, 50) "
               "WHERE completed_at IS NOT NULL")


def downgrade() -> None:
    raise NotImplementedError("the hash digits dropped from the keys cannot be recovered")
