"""linked account fields: origin_username and label, for the linked-accounts API

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 08:56:26.304977
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin_username', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('label', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('label')
        batch_op.drop_column('origin_username')
