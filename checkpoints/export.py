"""Export a run for auditors: one JSON document for tools (the HTML page for people is rendered
from this document by the shell, ``chainproof/cli/_html.py``).

JSON shape (``format: chainproof-run-export``, ``version: 1``)::

    {"format", "version", "exported_at",
     "run": {run_id, graph, goal, inputs, company, department, started_by, created_at, zdr, status},
     "verify": VerifyResult.as_dict(),
     "totals": {steps, model_calls, tool_calls, input_tokens, cached_input_tokens, output_tokens,
                reasoning_tokens, cost_usd (null = unknown: some call is unpriced), cache_hits, duration_s},
     "records": [{"table": ..., every column ...}, ...],   # the whole chain in seq order
     "corrections": [{seq, at, corrects_seq, corrects_hash, step_no, field, value, original, reason, by}, ...]}

A correction (``checkpoints/corrections.py``) is in ``records`` as the ``record_corrected`` event
it is, next to the untouched record it corrects; ``corrections`` lists them with both values.

Every record keeps ``seq``, ``prev_hash`` and ``record_hash``, so the chain can be re-checked
outside Chainproof from the export alone (hash = SHA-256 of the canonical JSON of the record's
columns minus ``id`` and ``record_hash``, plus ``table``; see ``checkpoints/audit_hashing.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chainproof.checkpoints.audit_hashing import canonical_json, run_header
from chainproof.checkpoints.audit_read import AuditReader
from chainproof.checkpoints.audit_tables import metadata
from chainproof.checkpoints.corrections import corrections_of
from chainproof.checkpoints.verify import VerifyResult, verify_run
from chainproof.errors import RunNotFound


def _columns(row: Any) -> dict[str, Any]:
    # optional columns (added by later migrations) appear only when set, as in the hashed content
    optional: frozenset[str] = getattr(type(row), "__optional_columns__", frozenset())
    return {c.key: getattr(row, c.key) for c in metadata.tables[row.__tablename__].columns
            if not (c.key in optional and getattr(row, c.key) is None)}


def _jsonable(data: Any) -> Any:
    return json.loads(canonical_json(data))


def totals(records: list[Any]) -> dict[str, Any]:
    """Sums over a run's records: counts, tokens (from the ``steps`` rows, which already sum
    their model calls), ``cost_usd`` (USD; None — unknown — when any call is unpriced; cache hits
    cost 0), ``cache_hits`` and ``duration_s``."""
    steps = [r for r in records if r.__tablename__ == "steps"]
    calls = [r for r in records if r.__tablename__ == "model_calls"]
    costs = [c.cost_usd for c in calls]
    out: dict[str, Any] = {
        "steps": len(steps), "model_calls": len(calls),
        "tool_calls": sum(r.__tablename__ == "tool_calls" for r in records),
    }
    for key in ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens"):
        out[key] = sum(getattr(s, key) for s in steps)
    known = [c for c in costs if c is not None]
    out["cost_usd"] = None if len(known) < len(costs) else round(sum(known), 6)
    out["cache_hits"] = sum(bool(c.cache_hit) for c in calls)
    out["duration_s"] = round(sum(s.duration_s for s in steps), 3)
    return out


@dataclass(frozen=True)
class RecordedChart:
    """One chart the run's report step wrote (its ``output.charts``: name -> path, SHA-256):
    ``svg`` holds the file's bytes when it is there and matches the recorded SHA-256, else None
    and ``problem`` says why (``missing``, or changed since the run wrote it)."""

    name: str
    path: str
    sha256: str
    svg: bytes | None
    problem: str | None


def recorded_charts(steps: list[Any]) -> list[RecordedChart]:
    """The charts recorded by the run's last ``report`` step (``steps``: step rows as records or
    dicts), each checked against its recorded SHA-256, in recorded order; [] when there is none.
    The HTML export and the web run page show only charts whose bytes match the record."""
    def get(step: Any, key: str) -> Any:
        return step.get(key) if isinstance(step, dict) else getattr(step, key, None)

    recorded = next((get(s, "output").get("charts") for s in reversed(steps)
                     if get(s, "node") == "report" and isinstance(get(s, "output"), dict)), None)
    out = []
    for name, meta in (recorded if isinstance(recorded, dict) else {}).items():
        if not isinstance(meta, dict) or not isinstance(meta.get("path"), str):
            out.append(RecordedChart(str(name), "", "", None, "recorded without a path"))
            continue
        path = Path(meta["path"])
        svg = path.read_bytes() if path.is_file() else None
        if svg is not None and hashlib.sha256(svg).hexdigest() != meta.get("sha256"):
            out.append(RecordedChart(str(name), str(path), str(meta.get("sha256")), None,
                                     "changed since the run wrote it (SHA-256 differs)"))
        else:
            out.append(RecordedChart(str(name), str(path), str(meta.get("sha256")), svg,
                                     "missing" if svg is None else None))
    return out


def export_data(store: AuditReader, run_id: str, verified: VerifyResult | None = None) -> dict[str, Any]:
    """The JSON export of ``run_id`` (shape in the module docstring). Raises ``RunNotFound`` for an
    unknown run."""
    run = store.get_run(run_id)
    if run is None:
        raise RunNotFound(f"no run {run_id!r} in the audit store")
    verified = verified or verify_run(store, run_id)
    records = store.records(run_id)
    header = run_header(run) | {"status": store.run_status(run_id)}
    return _jsonable({
        "format": "chainproof-run-export", "version": 1, "exported_at": datetime.now(UTC),
        "run": header, "verify": verified.as_dict(), "totals": totals(records),
        "records": [{"table": type(r).__tablename__, **_columns(r)} for r in records],
        "corrections": [c.as_dict() for c in corrections_of(records)],
    })


def export_json(store: AuditReader, run_id: str) -> str:
    """:func:`export_data` as indented JSON text."""
    return json.dumps(export_data(store, run_id), indent=2, ensure_ascii=False)


__all__ = ["export_data", "export_json", "totals"]
