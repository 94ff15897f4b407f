"""merkle_leaves: the RFC 9162 Merkle log over every chained record of every run

One row per leaf: its index and the record it covers (a table code and the record's id); the leaf
hash is computed from the record when the log is read. Existing records become leaves here, in a
deterministic order: runs by ``created_at`` then ``run_id``, each run's records by ``seq``. From
this revision on, the append path writes each record's leaf in the record's transaction.

Also drops the ``created_at`` indexes of the chained tables nobody queries by time (all but
``model_calls``, whose index serves a department's spend by month): each cost bytes on every
append. The downgrade restores them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# the table codes of merkle_leaves.record_table as this revision writes them (audit_tables.LEAF_TABLE_CODES)
CODES = {'steps': 1, 'model_calls': 2, 'tool_calls': 3, 'approvals': 4, 'reviews': 5, 'events': 6}
UNQUERIED_TIME_INDEXES = ('steps', 'tool_calls', 'approvals', 'reviews', 'events')


def upgrade() -> None:
    """Upgrade schema."""
    leaves = op.create_table(
        'merkle_leaves',
        sa.Column('idx', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('record_table', sa.SmallInteger(), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('idx'),
    )
    for table in UNQUERIED_TIME_INDEXES:
        op.drop_index(f'ix_{table}_created_at', table_name=table)
    conn = op.get_bind()
    order = {run_id: i for i, run_id in enumerate(conn.execute(sa.text(
        'SELECT run_id FROM runs ORDER BY created_at, run_id')).scalars())}
    found = []
    for table, code in CODES.items():
        for run_id, seq, record_id in conn.execute(sa.text(f'SELECT run_id, seq, id FROM {table}')):
            found.append((order.get(run_id, len(order)), run_id, seq, code, record_id))
    found.sort()
    rows = [{'idx': i, 'record_table': code, 'record_id': record_id}
            for i, (_, _, _, code, record_id) in enumerate(found)]
    for start in range(0, len(rows), 5000):
        op.bulk_insert(leaves, rows[start:start + 5000])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('merkle_leaves')
    for table in UNQUERIED_TIME_INDEXES:
        op.create_index(f'ix_{table}_created_at', table, ['created_at'], unique=False)
