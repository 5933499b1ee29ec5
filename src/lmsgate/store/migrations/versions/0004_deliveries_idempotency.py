"""reliable write-back: deliveries, their attempts, per-account delivery state, idempotency keys;
on PostgreSQL also the job tables of procrastinate, the engine that spreads deliveries over workers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:30:00
"""
import sqlalchemy as sa
from alembic import op

import lmsgate.store.tables

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('deliveries',
    sa.Column('seq', SEQ, autoincrement=True, nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('operation', sa.String(length=64), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('request', sa.JSON(), nullable=False),
    sa.Column('ordering_key', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('round_attempts', sa.Integer(), nullable=False),
    sa.Column('round_started_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('next_attempt_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('updated_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('delivered_at', lmsgate.store.tables.UtcDateTime(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('last_error', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('id', name=op.f('uq_deliveries_id'))
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_account_id_ordering_key_seq'),
                              ['account_id', 'ordering_key', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_account_id_status_seq'),
                              ['account_id', 'status', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_project_id_seq'), ['project_id', 'seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_status_next_attempt_at'),
                              ['status', 'next_attempt_at'], unique=False)

    op.create_table('delivery_attempts',
    sa.Column('delivery_seq', SEQ, autoincrement=False, nullable=False),
    sa.Column('number', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('started_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('finished_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('delivery_seq', 'number', name=op.f('pk_delivery_attempts'))
    )
    op.create_table('delivery_accounts',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('paused_until', lmsgate.store.tables.UtcDateTime(), nullable=True),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=True),
    sa.Column('tokens_at', sa.Float(), nullable=True),
    sa.Column('updated_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_delivery_accounts'))
    )
    op.create_table('idempotency_keys',
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('headers', sa.JSON(), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('locked_until', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('expires_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('project_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_expires_at'), ['expires_at'], unique=False)

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from lmsgate.delivery.schema import install_job_schema

        install_job_schema(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from lmsgate.delivery.schema import remove_job_schema

        remove_job_schema(bind)
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_expires_at'))
    op.drop_table('idempotency_keys')
    op.drop_table('delivery_accounts')
    op.drop_table('delivery_attempts')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_status_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_deliveries_project_id_seq'))
        batch_op.drop_index(batch_op.f('ix_deliveries_account_id_status_seq'))
        batch_op.drop_index(batch_op.f('ix_deliveries_account_id_ordering_key_seq'))
    op.drop_table('deliveries')
