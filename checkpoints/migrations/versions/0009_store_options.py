"""store_options: store-wide defaults, first require_signature (signed decisions by default)

Version 1 of ``require_signature`` is written here. A store this upgrade creates (the upgrade
started from an empty database) records its creator's choice, ``approvals.require_signature`` in
their settings (default true), which :func:`chainproof.checkpoints.audit_db.upgrade_schema` passes
in ``config.attributes``; a store that existed before this revision records false, so its typed-name
decisions keep working until an admin turns signatures on (``chainproof policy set --store``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

"""
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Union

import sqlalchemy as sa
from alembic import context, op

# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    table = op.create_table(
        'store_options',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('value', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name', 'version', name='uq_store_options_name_version'),
    )
    attributes = context.config.attributes
    if attributes.get("store_created"):
        value = bool(attributes.get("require_signature", True))
        by = "store creation (approvals.require_signature)"
    else:
        value, by = False, "migration 0009 (a store created before signed decisions were the default)"
    op.bulk_insert(table, [{"name": "require_signature", "version": 1, "value": value,
                            "created_at": datetime.now(UTC), "created_by": by}])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('store_options')
