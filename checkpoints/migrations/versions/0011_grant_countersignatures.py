"""countersignature and operator_key_id on grant rows: the operator key as trust anchor

Every grant row (``accounts``, ``credentials``, ``approver_keys``, ``approval_policies``,
``store_settings``) gets the operator's Ed25519 countersignature (base64) and the key id it was
made with (:mod:`chainproof.checkpoints.grants`). Rows that exist get NULL: they are refused until
the operator countersigns them once with ``chainproof keys anchor`` (README "Threat model"). A
store this upgrade creates has its initial settings countersigned by
:func:`chainproof.checkpoints.audit_db.upgrade_schema` with its creator's operator key.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

"""
from collections.abc import Sequence
from typing import Union

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: Union[str, Sequence[str], None] = '0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

GRANT_TABLES = ('accounts', 'credentials', 'approver_keys', 'approval_policies', 'store_settings')


def upgrade() -> None:
    """Upgrade schema."""
    for table in GRANT_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('countersignature', sa.String(length=88), nullable=True))
            batch_op.add_column(sa.Column('operator_key_id', sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    for table in reversed(GRANT_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('operator_key_id')
            batch_op.drop_column('countersignature')
