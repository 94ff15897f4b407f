"""model_calls.cache_hit (answers served by the reasoning cache) and the reasoning_cache table

``cache_hit`` is nullable and NULL on every row written before this revision; the hash of a
chained row includes it only when set (``Chained.__optional_columns__``), so older rows still
verify. ``reasoning_cache`` is not an audit table (not chained; entries expire or are cleared).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('reasoning_cache',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('effort', sa.String(length=16), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('reasoning_cache', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reasoning_cache_expires_at'), ['expires_at'], unique=False)

    with op.batch_alter_table('model_calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cache_hit', sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('model_calls', schema=None) as batch_op:
        batch_op.drop_column('cache_hit')

    with op.batch_alter_table('reasoning_cache', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reasoning_cache_expires_at'))

    op.drop_table('reasoning_cache')
