"""Audit records and engine results as JSON for the API (values as the export writes them)."""

from __future__ import annotations

import json
from typing import Any

from chainproof.checkpoints.audit_hashing import canonical_json


def jsonable(data: Any) -> Any:
    """``data`` with datetimes as ISO 8601 UTC and stored values in their JSON form."""
    return json.loads(canonical_json(data))


def record(rec: Any) -> dict[str, Any]:
    """One audit record with its table name."""
    return jsonable({"table": rec.__tablename__, **rec.as_dict()})


def run_summary(run: Any, status: str | None) -> dict[str, Any]:
    """A run header as the run list shows it."""
    return jsonable({"run_id": run.run_id, "graph": run.graph, "subject": run.company, "goal": run.goal,
                     "department": run.department, "started_by": run.started_by, "created_at": run.created_at,
                     "status": status, "zdr": run.zdr, "parent_run_id": run.parent_run_id,
                     "forked_at_step": run.forked_at_step})


__all__ = ["jsonable", "record", "run_summary"]
