"""The tables of retention and purges (revision 0009), on the audit store's one ``metadata``.

Kept apart from :mod:`chainproof.checkpoints.audit_tables` (which imports this module at its end,
so every table is defined whenever the metadata is used). None of them is chained: a purge's
audit event is an ``auth_events`` row, and what a purge keeps is checked against it
(:mod:`chainproof.checkpoints.purge_check`).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Integer, SmallInteger, String, Table, UniqueConstraint

from chainproof.checkpoints.audit_tables import metadata, utcnow

_TS = DateTime(timezone=True)

store_settings = Table(
    "store_settings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),  # e.g. "retention"
    Column("version", Integer, nullable=False),
    Column("value", JSON, nullable=False),
    Column("created_at", _TS, nullable=False, default=utcnow),
    Column("created_by", String(200), nullable=False),
    Column("countersignature", String(88)),  # the operator's Ed25519 countersignature, base64 (checkpoints/grants.py)
    Column("operator_key_id", String(16)),
    UniqueConstraint("name", "version", name="uq_store_settings_name_version"),
)
"""Versioned settings held in the store, changed only by an admin (``chainproof retention set``):
the newest version of a name is in force; rows are never updated or deleted."""

purged_runs = Table(
    "purged_runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("graph", String(100), nullable=False),
    Column("status", String(16), nullable=False),  # completed | failed, when purged
    Column("run_created_at", _TS, nullable=False),
    Column("ended_at", _TS, nullable=False),  # the run's last lifecycle event
    Column("records", Integer, nullable=False),  # chained records deleted (= leaves kept)
    Column("head_seq", Integer, nullable=False),
    Column("head_hash", String(64), nullable=False),  # the last record's record_hash (the chain's head)
    Column("leaves_root", String(64), nullable=False),  # RFC 9162 root of the run's leaf hashes, by leaf index
    Column("retention", JSON, nullable=False),  # the retention in force: {"amount", "unit"}
    Column("purged_at", _TS, nullable=False, default=utcnow),
    Column("purged_by", String(200), nullable=False),
)
"""A purged run's tombstone: what was deleted, its chain's head, when and by whom."""

purged_leaves = Table(
    "purged_leaves", metadata,
    Column("idx", Integer, primary_key=True, autoincrement=False),  # the merkle_leaves row it keeps
    Column("record_table", SmallInteger, nullable=False),  # LEAF_TABLE_CODES
    Column("record_id", Integer, nullable=False),  # the deleted record's id in that table
    Column("run_id", String(64), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("record_hash", String(64), nullable=False),
)
"""For every leaf of a purged record: the leaf data (run, table, seq, ``record_hash``), so the
leaf hash is still computed and the Merkle log still verifies after the record is gone. The
``merkle_leaves`` row stays, so leaf indexes never move."""

__all__ = ["purged_leaves", "purged_runs", "store_settings"]
