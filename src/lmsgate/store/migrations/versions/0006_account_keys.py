"""record tables name their account by a small integer key, not by its 26-character id

Each account gets ``accounts.key`` (1, 2, … in the order the accounts were created; the last
key given is kept in ``instance`` under ``last_account_key``, so a deleted account's key is
never given again). Every record table swaps ``account_id`` for ``account_key``, in its
primary key and in every index.

SQLite cannot change a primary key in place, so each record table is copied into a new one;
PostgreSQL alters the tables where they are. Both rewrite every row: on a big store this
takes a while, and the server should be stopped while it runs (``lmsgate migrate``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 21:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Per record table: the primary key after the account, unique keys and indexes (each after
# the account), as they stood at revision 0005.
TABLES = {
    "lms_users": (["id"], [], [["email"], ["external_reference"], ["updated_at"]]),
    "content": (["id"], [["external_reference"]], [["updated_at"]]),
    "courses": (["id"], [["external_reference"]], [["updated_at"]]),
    "categories": (["id"], [], [["name"], ["updated_at"]]),
    "skills": (["id"], [], [["name"], ["updated_at"]]),
    "completions": (["id"], [["dedupe_key"]], [["user_id", "id"], ["updated_at"]]),
    "assignments": (["id"], [["dedupe_key"]], [["user_id", "id"], ["status_value", "id"], ["updated_at"]]),
    "course_content": (["course_id", "content_external_reference"], [], [["content_external_reference"]]),
}


def upgrade() -> None:
    conn = op.get_bind()
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        op.execute("ALTER TABLE accounts ADD COLUMN key INTEGER")
    else:  # SQLite adds a NOT NULL column only with a default; every row gets its key below
        op.execute("ALTER TABLE accounts ADD COLUMN key INTEGER NOT NULL DEFAULT 0")
    op.execute("UPDATE accounts SET key = (SELECT n FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n "
               "FROM accounts) AS numbered WHERE numbered.id = accounts.id)")
    if postgres:
        op.execute("ALTER TABLE accounts ALTER COLUMN key SET NOT NULL")
    op.create_index("ix_accounts_key", "accounts", ["key"], unique=True)
    last = conn.execute(sa.text("SELECT coalesce(max(key), 0) FROM accounts")).scalar_one()
    conn.execute(sa.text("INSERT INTO instance (key, value) VALUES ('last_account_key', :v)"), {"v": str(last)})

    for name, (primary, uniques, indexes) in TABLES.items():
        if postgres:
            _alter_in_place(name, primary, uniques, indexes)
        else:
            _copy(conn, name, primary, uniques, indexes)


def _alter_in_place(name: str, primary: list[str], uniques: list[list[str]], indexes: list[list[str]]) -> None:
    op.execute(f"ALTER TABLE {name} ADD COLUMN account_key INTEGER")
    op.execute(f"UPDATE {name} SET account_key = accounts.key FROM accounts WHERE accounts.id = {name}.account_id")
    # Dropping the column drops its primary key, unique keys, foreign key and indexes with it.
    op.execute(f"ALTER TABLE {name} DROP COLUMN account_id CASCADE")
    op.execute(f"ALTER TABLE {name} ALTER COLUMN account_key SET NOT NULL")
    cols = ["account_key"]
    op.create_primary_key(f"pk_{name}", name, cols + primary)
    op.create_foreign_key(f"fk_{name}_account_key_accounts", name, "accounts", ["account_key"], ["key"])
    for unique in uniques:
        op.create_unique_constraint(f"uq_{name}_{'_'.join(cols + unique)}", name, cols + unique)
    for index in indexes:
        op.create_index(f"ix_{name}_{'_'.join(cols + index)}", name, cols + index)


def _copy(conn: sa.Connection, name: str, primary: list[str], uniques: list[list[str]], indexes: list[list[str]]) -> None:
    old = sa.Table(name, sa.MetaData(), autoload_with=conn)
    kept = [c for c in old.columns if c.name != "account_id"]
    metadata = sa.MetaData(naming_convention=NAMING)
    sa.Table("accounts", metadata, sa.Column("key", sa.Integer))  # for the foreign key only
    new = sa.Table(
        name, metadata,
        sa.Column("account_key", sa.Integer, sa.ForeignKey("accounts.key"), nullable=False),
        *[sa.Column(c.name, c.type, nullable=c.nullable) for c in kept],
        sa.PrimaryKeyConstraint("account_key", *primary),
        *[sa.UniqueConstraint("account_key", *u) for u in uniques],
        *[sa.Index(None, "account_key", *i) for i in indexes],
    )
    op.execute(f"ALTER TABLE {name} RENAME TO {name}_before_0006")
    new.create(conn)
    columns = ", ".join(f'"{c.name}"' for c in kept)
    copied = ", ".join(f'o."{c.name}"' for c in kept)
    op.execute(f"INSERT INTO {name} (account_key, {columns}) SELECT accounts.key, {copied} "
               f"FROM {name}_before_0006 AS o JOIN accounts ON accounts.id = o.account_id")
    op.execute(f"DROP TABLE {name}_before_0006")


def downgrade() -> None:
    raise NotImplementedError("revision 0005 cannot be downgraded either; restore a backup instead")
