"""request logs and shared rate-limit buckets

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:30:00
"""
from alembic import op
import sqlalchemy as sa
import lmsgate.store.tables


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rate-limit counts need no crash safety: on PostgreSQL the table skips the write-ahead log.
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table('rate_limit_buckets',
    sa.Column('bucket', sa.String(length=96), nullable=False),
    sa.Column('tokens', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('bucket', name=op.f('pk_rate_limit_buckets')),
    prefixes=unlogged,
    )
    op.create_table('request_logs',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('linked_account_id', sa.String(length=64), nullable=True),
    sa.Column('request_id', sa.String(length=128), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('operation', sa.String(length=128), nullable=True),
    sa.Column('resource', sa.String(length=64), nullable=True),
    sa.Column('provider', sa.String(length=64), nullable=True),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.Column('started_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('source_ip', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_request_logs'))
    )
    with op.batch_alter_table('request_logs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_logs_project_id_id'), ['project_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_request_logs_started_at'), ['started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('request_logs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_logs_started_at'))
        batch_op.drop_index(batch_op.f('ix_request_logs_project_id_id'))
    op.drop_table('request_logs')
    op.drop_table('rate_limit_buckets')
