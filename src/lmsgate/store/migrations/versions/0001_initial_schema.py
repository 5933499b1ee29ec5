"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 08:38:46.719304
"""
from alembic import op
import sqlalchemy as sa
import lmsgate.store.tables


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('instance',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_instance'))
    )
    op.create_table('projects',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects'))
    )
    op.create_table('accounts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('origin_owner_id', sa.String(length=200), nullable=True),
    sa.Column('origin_owner_name', sa.String(length=200), nullable=True),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('credentials', sa.Text(), nullable=True),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('updated_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_accounts_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_project_id'), ['project_id'], unique=False)

    op.create_table('api_keys',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('revoked_at', lmsgate.store.tables.UtcDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_api_keys_project_id_projects')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('hash', name=op.f('uq_api_keys_hash'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_project_id'), ['project_id'], unique=False)

    op.create_table('assignments',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('updated_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('learning_object_id', sa.String(length=255), nullable=True),
    sa.Column('learning_object_external_reference', sa.String(length=255), nullable=False),
    sa.Column('learning_object_type', sa.String(length=32), nullable=True),
    sa.Column('status_value', sa.String(length=64), nullable=True),
    sa.Column('status_source_value', sa.JSON(), nullable=True),
    sa.Column('progress', sa.Float(), nullable=True),
    sa.Column('assigned_at', lmsgate.store.tables.UtcDateTime(), nullable=True),
    sa.Column('due_date', lmsgate.store.tables.UtcDateTime(), nullable=True),
    sa.Column('completed_at', lmsgate.store.tables.UtcDateTime(), nullable=True),
    sa.Column('passthrough', sa.JSON(), nullable=True),
    sa.Column('dedupe_key', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_assignments_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_assignments')),
    sa.UniqueConstraint('account_id', 'dedupe_key', name=op.f('uq_assignments_account_id_dedupe_key'))
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignments_account_id_status_value_id'), ['account_id', 'status_value', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignments_account_id_updated_at'), ['account_id', 'updated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignments_account_id_user_id_id'), ['account_id', 'user_id', 'id'], unique=False)

    op.create_table('categories',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('updated_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('doc', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_categories_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_categories'))
    )
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_categories_account_id_name'), ['account_id', 'name'], unique=False)
        batch_op.create_index(batch_op.f('ix_categories_account_id_updated_at'), ['account_id', 'updated_at'], unique=False)

    op.create_table('completions',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('updated_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('learning_object_id', sa.String(length=255), nullable=True),
    sa.Column('learning_object_external_reference', sa.String(length=255), nullable=False),
    sa.Column('learning_object_type', sa.String(length=32), nullable=True),
    sa.Column('completed_at', lmsgate.store.tables.UtcDateTime(), nullable=True),
    sa.Column('time_spent', sa.String(length=64), nullable=True),
    sa.Column('time_spent_seconds', sa.Numeric(precision=20, scale=6), nullable=True),
    sa.Column('time_spent_months', sa.Integer(), nullable=True),
    sa.Column('result_value', sa.String(length=64), nullable=True),
    sa.Column('result_source_value', sa.JSON(), nullable=True),
    sa.Column('score_percentage', sa.Float(), nullable=True),
    sa.Column('score_raw_value', sa.String(length=255), nullable=True),
    sa.Column('passthrough', sa.JSON(), nullable=True),
    sa.Column('dedupe_key', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_completions_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_completions')),
    sa.UniqueConstraint('account_id', 'dedupe_key', name=op.f('uq_completions_account_id_dedupe_key'))
    )
    with op.batch_alter_table('completions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_completions_account_id_updated_at'), ['account_id', 'updated_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_completions_account_id_user_id_id'), ['account_id', 'user_id', 'id'], unique=False)

    op.create_table('content',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('updated_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('external_reference', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Integer(), nullable=True),
    sa.Column('doc', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_content_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_content')),
    sa.UniqueConstraint('account_id', 'external_reference', name=op.f('uq_content_account_id_external_reference'))
    )
    with op.batch_alter_table('content', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_content_account_id_updated_at'), ['account_id', 'updated_at'], unique=False)

    op.create_table('course_content',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('course_id', sa.String(length=64), nullable=False),
    sa.Column('content_external_reference', sa.String(length=255), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_course_content_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'course_id', 'content_external_reference', name=op.f('pk_course_content'))
    )
    with op.batch_alter_table('course_content', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_course_content_account_id_content_external_reference'), ['account_id', 'content_external_reference'], unique=False)

    op.create_table('courses',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('updated_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('external_reference', sa.String(length=255), nullable=False),
    sa.Column('doc', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_courses_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_courses')),
    sa.UniqueConstraint('account_id', 'external_reference', name=op.f('uq_courses_account_id_external_reference'))
    )
    with op.batch_alter_table('courses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_courses_account_id_updated_at'), ['account_id', 'updated_at'], unique=False)

    op.create_table('lms_users',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('updated_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('external_reference', sa.String(length=255), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('doc', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_lms_users_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_lms_users'))
    )
    with op.batch_alter_table('lms_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lms_users_account_id_email'), ['account_id', 'email'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_users_account_id_external_reference'), ['account_id', 'external_reference'], unique=False)
        batch_op.create_index(batch_op.f('ix_lms_users_account_id_updated_at'), ['account_id', 'updated_at'], unique=False)

    op.create_table('skills',
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('created_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('updated_at', lmsgate.store.tables.UtcDateTime(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('doc', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_skills_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'id', name=op.f('pk_skills'))
    )
    with op.batch_alter_table('skills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_skills_account_id_name'), ['account_id', 'name'], unique=False)
        batch_op.create_index(batch_op.f('ix_skills_account_id_updated_at'), ['account_id', 'updated_at'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('skills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_skills_account_id_updated_at'))
        batch_op.drop_index(batch_op.f('ix_skills_account_id_name'))

    op.drop_table('skills')
    with op.batch_alter_table('lms_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lms_users_account_id_updated_at'))
        batch_op.drop_index(batch_op.f('ix_lms_users_account_id_external_reference'))
        batch_op.drop_index(batch_op.f('ix_lms_users_account_id_email'))

    op.drop_table('lms_users')
    with op.batch_alter_table('courses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_courses_account_id_updated_at'))

    op.drop_table('courses')
    with op.batch_alter_table('course_content', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_course_content_account_id_content_external_reference'))

    op.drop_table('course_content')
    with op.batch_alter_table('content', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_content_account_id_updated_at'))

    op.drop_table('content')
    with op.batch_alter_table('completions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_completions_account_id_user_id_id'))
        batch_op.drop_index(batch_op.f('ix_completions_account_id_updated_at'))

    op.drop_table('completions')
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_categories_account_id_updated_at'))
        batch_op.drop_index(batch_op.f('ix_categories_account_id_name'))

    op.drop_table('categories')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignments_account_id_user_id_id'))
        batch_op.drop_index(batch_op.f('ix_assignments_account_id_updated_at'))
        batch_op.drop_index(batch_op.f('ix_assignments_account_id_status_value_id'))

    op.drop_table('assignments')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_project_id'))

    op.drop_table('api_keys')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_project_id'))

    op.drop_table('accounts')
    op.drop_table('projects')
    op.drop_table('instance')

