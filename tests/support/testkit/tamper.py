"""Tampering as a careful attacker with database access would: edit a decision row and recompute
every hash and link of its run, so the run's chain itself is intact again (only the decision's
signature can tell)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from chainproof.checkpoints.audit_hashing import record_hash
from chainproof.checkpoints.audit_tables import GENESIS


def rechain_decision(audit: Any, run_id: str, request_id: str, **changes: Any) -> None:
    """Apply ``changes`` (column: value) to the decision on ``request_id`` in ``audit`` (an
    ``AuditStore``) and rehash ``run_id``'s chain after it."""
    records = audit.records(run_id)
    prev = GENESIS
    with audit.engine.begin() as conn:
        for rec in records:
            mine = changes if rec.__tablename__ == "approvals" and rec.request_id == request_id and rec.action != "requested" else {}
            new = rec.replace(**mine, prev_hash=prev)
            prev = record_hash(new)
            stored = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in mine.items()}
            sets = "".join(f"{k} = :{k}, " for k in stored)
            conn.execute(text(f"UPDATE {rec.__tablename__} SET {sets}prev_hash = :p, record_hash = :h WHERE id = :id"),
                         {"p": new.prev_hash, "h": prev, "id": rec.id, **stored})



def rechain(audit: Any, run_id: str) -> None:
    """Recompute every ``prev_hash`` and ``record_hash`` of ``run_id``'s chain as it now reads (after
    raw SQL edits), so the chain itself is intact again."""
    records, prev = audit.records(run_id), GENESIS
    with audit.engine.begin() as conn:
        for rec in records:
            new = rec.replace(prev_hash=prev)
            prev = record_hash(new)
            conn.execute(text(f"UPDATE {rec.__tablename__} SET prev_hash = :p, record_hash = :h WHERE id = :id"),
                         {"p": new.prev_hash, "h": prev, "id": rec.id})


__all__ = ["rechain", "rechain_decision"]
