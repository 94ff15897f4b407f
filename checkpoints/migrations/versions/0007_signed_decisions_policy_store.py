"""approver_keys, approval_policies and approvals.signature: signed decisions, store-held policy

``approver_keys`` holds approvers' registered Ed25519 public keys (never a private key);
``approval_policies`` the versioned approval policy of each graph, changed only by an admin;
``approvals.signature`` a signed decision's key id, signature and signed fields (NULL for requests
and unsigned decisions, so rows written before keep their hash).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: Union[str, Sequence[str], None] = '0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'approver_keys',
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('approver', sa.String(length=100), nullable=False),
        sa.Column('public_key', sa.String(length=64), nullable=False),
        sa.Column('roles', sa.JSON(), nullable=False),
        sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('added_by', sa.String(length=200), nullable=False),
        sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('removed_by', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('key_id'),
    )
    with op.batch_alter_table('approver_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approver_keys_approver'), ['approver'], unique=False)
    op.create_table(
        'approval_policies',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('graph', sa.String(length=100), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('policy', sa.JSON(), nullable=False),
        sa.Column('policy_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('graph', 'version', name='uq_approval_policies_graph_version'),
    )
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signature', sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.drop_column('signature')
    op.drop_table('approval_policies')
    with op.batch_alter_table('approver_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_approver_keys_approver'))
    op.drop_table('approver_keys')
