"""merkle_leaves: the RFC 9162 Merkle log over every chained record of every run

Existing records become leaves here, in a deterministic order: runs by ``created_at`` then
``run_id``, each run's records by ``seq`` (their stored ``record_hash``; a record edited before
this revision is therefore logged as it is now, and only its per-run chain shows the edit). From
this revision on, the append path writes each record's leaf in the record's transaction.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

from chainproof.checkpoints.merkle_log import record_leaf

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CHAINED = ('steps', 'model_calls', 'tool_calls', 'approvals', 'reviews', 'events')


def upgrade() -> None:
    """Upgrade schema."""
    leaves = op.create_table(
        'merkle_leaves',
        sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('leaf_hash', sa.String(length=64), nullable=False),
        sa.Column('run_id', sa.String(length=64), nullable=False),
        sa.Column('record_table', sa.String(length=32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('idx'),
    )
    op.create_index('ix_merkle_leaves_run_seq', 'merkle_leaves', ['run_id', 'seq'], unique=False)
    conn = op.get_bind()
    order = {run_id: i for i, run_id in enumerate(conn.execute(sa.text(
        'SELECT run_id FROM runs ORDER BY created_at, run_id')).scalars())}
    found = []
    for table in CHAINED:
        for run_id, seq, rec_hash in conn.execute(sa.text(f'SELECT run_id, seq, record_hash FROM {table}')):
            found.append((order.get(run_id, len(order)), run_id, seq, table, rec_hash))
    found.sort()
    rows = [{'idx': i, 'leaf_hash': record_leaf(table, run_id, seq, rec_hash), 'run_id': run_id,
             'record_table': table, 'seq': seq} for i, (_, run_id, seq, table, rec_hash) in enumerate(found)]
    for start in range(0, len(rows), 5000):
        op.bulk_insert(leaves, rows[start:start + 5000])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_merkle_leaves_run_seq', table_name='merkle_leaves')
    op.drop_table('merkle_leaves')
