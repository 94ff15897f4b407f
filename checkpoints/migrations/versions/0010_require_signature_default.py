"""require_signature in store_settings: signed decisions by default for new stores

Version 1 of ``require_signature`` is written here. A store this upgrade creates (the upgrade
started from an empty database) records its creator's choice, ``approvals.require_signature`` in
their settings (default true), which :func:`chainproof.checkpoints.audit_db.upgrade_schema` passes
in ``config.attributes``; a store that existed before this revision records false, so its typed-name
decisions keep working until an admin turns signatures on (``chainproof policy set --store``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

"""
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Union

import sqlalchemy as sa
from alembic import context, op

# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: Union[str, Sequence[str], None] = '0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    table = sa.table('store_settings', sa.column('name', sa.String), sa.column('version', sa.Integer),
                     sa.column('value', sa.JSON), sa.column('created_at', sa.DateTime(timezone=True)),
                     sa.column('created_by', sa.String))  # created by revision 0009
    attributes = context.config.attributes
    if attributes.get("store_created"):
        value = bool(attributes.get("require_signature", True))
        by = "store creation (approvals.require_signature)"
    else:
        value, by = False, "migration 0010 (a store created before signed decisions were the default)"
    op.bulk_insert(table, [{"name": "require_signature", "version": 1, "value": value,
                            "created_at": datetime.now(UTC), "created_by": by}])


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DELETE FROM store_settings WHERE name = 'require_signature'")
