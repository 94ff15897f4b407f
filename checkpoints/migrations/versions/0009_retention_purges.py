"""store_settings, purged_runs, purged_leaves: store-held retention and purges that keep the log

``store_settings`` holds versioned settings an admin changes (the retention); ``purged_runs`` a
tombstone per purged run (counts, its chain's last hash, the root of its leaves, when and by
whom); ``purged_leaves`` the leaf data of every purged record, so the Merkle log still verifies.
None is chained or touches the run records (their rows verify as before).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'store_settings',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('value', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', 'version', name='uq_store_settings_name_version'),
    )
    op.create_table(
        'purged_runs',
        sa.Column('run_id', sa.String(length=64), nullable=False),
        sa.Column('graph', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('run_created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('records', sa.Integer(), nullable=False),
        sa.Column('head_seq', sa.Integer(), nullable=False),
        sa.Column('head_hash', sa.String(length=64), nullable=False),
        sa.Column('leaves_root', sa.String(length=64), nullable=False),
        sa.Column('retention', sa.JSON(), nullable=False),
        sa.Column('purged_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('purged_by', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('run_id'),
    )
    op.create_table(
        'purged_leaves',
        sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('record_table', sa.SmallInteger(), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.String(length=64), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('record_hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('idx'),
    )
    with op.batch_alter_table('purged_leaves', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purged_leaves_run_id'), ['run_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('purged_leaves', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purged_leaves_run_id'))
    op.drop_table('purged_leaves')
    op.drop_table('purged_runs')
    op.drop_table('store_settings')
