"""runs.parent_run_id and runs.forked_at_step: a fork's link to the run it was forked from

Both are NULL on every run that is not a fork, and the run-header hash includes them only when
set (``audit_hashing.RUN_HEADER_OPTIONAL_FIELDS``), so runs written before this revision keep
their header hash and still verify.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_run_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('forked_at_step', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_runs_parent_run_id'), ['parent_run_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_parent_run_id'))
        batch_op.drop_column('forked_at_step')
        batch_op.drop_column('parent_run_id')
