"""effect_journal, worker_heartbeats: what a run did before a crash, and which workers live

(A super-step's attempts are numbered by its chained ``step_started`` events, not by a table:
:mod:`chainproof.checkpoints.journal`.) ``effect_journal`` holds each call of a ``side_effects=True`` tool,
started before it runs and done with its result after; ``worker_heartbeats`` when each worker last
showed it was alive. None is chained or touches the run records (their rows verify as before).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'effect_journal',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('run_id', sa.String(length=64), nullable=False),
        sa.Column('step_no', sa.Integer(), nullable=False),
        sa.Column('node', sa.String(length=64), nullable=False),
        sa.Column('call_key', sa.String(length=64), nullable=False),
        sa.Column('tool', sa.String(length=100), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('run_id', 'step_no', 'node', 'call_key', name='uq_effect_journal_key'),
    )
    op.create_table(
        'worker_heartbeats',
        sa.Column('executor_id', sa.String(length=200), nullable=False),
        sa.Column('host', sa.String(length=200), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recovered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('recovered_by', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('executor_id'),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('worker_heartbeats')
    op.drop_table('effect_journal')
