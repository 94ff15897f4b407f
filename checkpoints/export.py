"""Export a run for auditors: one JSON document for tools, one self-contained HTML file for people.

JSON shape (``format: chainproof-run-export``, ``version: 1``)::

    {"format", "version", "exported_at",
     "run": {run_id, graph, goal, inputs, company, department, started_by, created_at, zdr, status},
     "verify": VerifyResult.as_dict(),
     "totals": {steps, model_calls, tool_calls, input_tokens, cached_input_tokens, output_tokens,
                reasoning_tokens, cost_usd (null = unknown: some call is unpriced), cache_hits, duration_s},
     "records": [{"table": ..., every column ...}, ...]}   # the whole chain in seq order

Every record keeps ``seq``, ``prev_hash`` and ``record_hash``, so the chain can be re-checked
outside Chainproof from the export alone (hash = SHA-256 of the canonical JSON of the record's
columns minus ``id`` and ``record_hash``, plus ``table``; see ``checkpoints/audit_hashing.py``).

The HTML file has inline CSS and no scripts or external assets; every recorded text is escaped
(it is untrusted model output).
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect

from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_hashing import RUN_HEADER_FIELDS, canonical_json
from chainproof.checkpoints.audit_schema import (
    ApprovalRecord,
    Chained,
    EventRecord,
    ModelCallRecord,
    ReviewRecord,
    Step,
    ToolCallRecord,
)
from chainproof.checkpoints.verify import VerifyResult, verify_run

FORMATS = ("json", "html")


def _columns(row: Any) -> dict[str, Any]:
    # optional columns (added by later migrations) appear only when set, as in the hashed content
    optional: frozenset[str] = getattr(type(row), "__optional_columns__", frozenset())
    return {c.key: getattr(row, c.key) for c in inspect(type(row)).column_attrs
            if not (c.key in optional and getattr(row, c.key) is None)}


def _jsonable(data: Any) -> Any:
    return json.loads(canonical_json(data))


def totals(records: list[Chained]) -> dict[str, Any]:
    """Sums over a run's records: counts, tokens (from the ``steps`` rows, which already sum
    their model calls), ``cost_usd`` (USD; None — unknown — when any call is unpriced; cache hits
    cost 0), ``cache_hits`` and ``duration_s``."""
    steps = [r for r in records if isinstance(r, Step)]
    calls = [r for r in records if isinstance(r, ModelCallRecord)]
    costs = [c.cost_usd for c in calls]
    out: dict[str, Any] = {
        "steps": len(steps), "model_calls": len(calls),
        "tool_calls": sum(isinstance(r, ToolCallRecord) for r in records),
    }
    for key in ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens"):
        out[key] = sum(getattr(s, key) for s in steps)
    known = [c for c in costs if c is not None]
    out["cost_usd"] = None if len(known) < len(costs) else round(sum(known), 6)
    out["cache_hits"] = sum(bool(c.cache_hit) for c in calls)
    out["duration_s"] = round(sum(s.duration_s for s in steps), 3)
    return out


def export_data(store: AuditStore, run_id: str, verified: VerifyResult | None = None) -> dict[str, Any]:
    """The JSON export of ``run_id`` (shape in the module docstring). Raises ``LookupError`` for an
    unknown run."""
    run = store.get_run(run_id)
    if run is None:
        raise LookupError(f"no run {run_id!r} in the audit store")
    verified = verified or verify_run(store, run_id)
    records = store.records(run_id)
    header = {k: getattr(run, k) for k in RUN_HEADER_FIELDS} | {"status": store.run_status(run_id)}
    return _jsonable({
        "format": "chainproof-run-export", "version": 1, "exported_at": datetime.now(UTC),
        "run": header, "verify": verified.as_dict(), "totals": totals(records),
        "records": [{"table": type(r).__tablename__, **_columns(r)} for r in records],
    })


def export_json(store: AuditStore, run_id: str) -> str:
    """:func:`export_data` as indented JSON text."""
    return json.dumps(export_data(store, run_id), indent=2, ensure_ascii=False)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2329;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d8dee4}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #d8dee4;padding:4px 6px;
text-align:left;vertical-align:top}th{background:#f3f5f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{background:#e6f4ea;border:1px solid #34a853;padding:.6rem 1rem}.bad{background:#fce8e6;
border:1px solid #d93025;padding:.6rem 1rem}pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;
padding:.5rem;margin:.3rem 0;font-size:12px}details{margin:.3rem 0}summary{cursor:pointer}
.muted{color:#5f6b76}code{font-size:12px}dl{display:grid;grid-template-columns:max-content auto;gap:2px 1rem}
dt{font-weight:600}dd{margin:0}
"""


def _e(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        value = value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return html.escape(str(value), quote=True)


def _pre(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(_jsonable(value), indent=2, ensure_ascii=False)
    return f"<pre>{html.escape(text)}</pre>"


def _table(head: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(cells) + "</tr>" for cells in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _td(value: Any, numeric: bool = False) -> str:
    return f'<td class="n">{_e(value)}</td>' if numeric else f"<td>{_e(value)}</td>"


def _verify_banner(v: dict[str, Any]) -> str:
    head = f"{v['records']} records · head seq {v['head_seq']} · head hash <code>{_e(v['head_hash'])}</code>"
    notes = "".join(f"<br><span class='muted'>{_e(n)}</span>" for n in v["notes"])
    if v["ok"]:
        return f'<div class="ok"><strong>Chain verified: intact.</strong> {head}{notes}</div>'
    b = v["broken"]
    return (f'<div class="bad"><strong>Chain broken: {_e(b["kind"])}</strong> at {_e(b["table"])} seq {_e(b["seq"])} '
            f"(id {_e(b['id'])}): {_e(b['detail'])}<br>{head}{notes}</div>")


def _step_details(step: dict[str, Any], calls: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    parts = [f"<details><summary>inputs and output</summary>{_pre({'inputs': step['inputs'], 'output': step['output']})}</details>"]
    for t in tools:
        parts.append(f"<details><summary>tool call <code>{_e(t['tool'])}</code> · {_e(t['latency_s'])} s"
                     f"{' · error' if t['error'] else ''}</summary>"
                     f"{_pre({'args': t['args'], 'result': t['result'], 'error': t['error']})}</details>")
    for c in calls:
        prompt = "\n\n".join(f"[{m.get('type')}] {m.get('data', {}).get('content', '')}" for m in c["messages"])
        reasoning = f"<p>reasoning</p>{_pre(c['reasoning'])}" if c["reasoning"] else ""
        parts.append(
            f"<details><summary>model call · {_e(c['model'])} · effort {_e(c['effort'])} · attempt {_e(c['attempt'])} · "
            f"in {_e(c['input_tokens'])} / out {_e(c['output_tokens'])} (reasoning {_e(c['reasoning_tokens'])}) tokens · "
            f"{_e(c['latency_s'])} s</summary><p>prompt <code>sha256 {_e(c['prompt_hash'])}</code></p>{_pre(prompt)}"
            f"{reasoning}<p>output</p>{_pre(c['output'])}</details>")
    return "".join(parts)


def export_html(store: AuditStore, run_id: str) -> str:
    """One self-contained HTML page for an auditor: run header, verify result, totals, the
    timeline of steps (each expandable to its model and tool calls), reviews, approvals, events."""
    data = export_data(store, run_id)
    run, t, recs = data["run"], data["totals"], data["records"]
    of = lambda table: [r for r in recs if r["table"] == table]  # noqa: E731
    calls, tools = of(ModelCallRecord.__tablename__), of(ToolCallRecord.__tablename__)
    timeline = []
    for s in of(Step.__tablename__):
        no = s["step_no"]
        detail = _step_details(s, [c for c in calls if c["step_no"] == no], [x for x in tools if x["step_no"] == no])
        effort = f"{s['effort'] or '–'}" + (f" ({s['effort_reason']})" if s["effort_reason"] else "")
        timeline.append([_td(no, True), _td(s["node"]), f"<td>{_e(s['title'])}{detail}</td>", _td(effort),
                         _td(s["model"]), _td(s["input_tokens"], True), _td(s["output_tokens"], True),
                         _td(s["reasoning_tokens"], True), _td(s["cost_usd"], True), _td(s["duration_s"], True),
                         _td(s["status"])])
    reviews = [[_td(r["step_no"], True), _td(r["decision"]), _td(r["reason"]), _td(r["drift_assessment"]),
                _td(r["effort"]), _td(r["input_tokens"], True), _td(r["output_tokens"], True),
                _td(r["reasoning_tokens"], True)] for r in of(ReviewRecord.__tablename__)]
    approvals = [[_td(a["step_no"], True), _td(a["created_at"]), _td(a["action"]), _td(a["approver"]),
                  _td(a["comment"]), f"<td><code>{_e(a['proposed_hash'][:16])}…</code></td>"]
                 for a in of(ApprovalRecord.__tablename__)]
    events = [[_td(e["seq"], True), _td(e["created_at"]), _td(e["kind"]), f"<td>{_pre(e['detail'])}</td>"]
              for e in of(EventRecord.__tablename__)]
    cost = "unknown (a model without a price)" if t["cost_usd"] is None else f"{t['cost_usd']:.6f} USD"
    header = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in [
        ("graph", run["graph"]), ("goal", run["goal"]), ("company", run["company"]), ("department", run["department"]),
        ("started by", run["started_by"]), ("started", run["created_at"]), ("status", run["status"]),
        ("zero data retention", "yes" if run["zdr"] else "no"), ("exported", data["exported_at"])])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chainproof run {_e(run_id)}</title><style>{_CSS}</style></head><body>
<h1>Run {_e(run_id)}</h1><dl>{header}</dl>
<h2>Integrity</h2>{_verify_banner(data['verify'])}
<h2>Totals</h2>
{_table(["steps", "model calls", "tool calls", "input tokens", "cached input", "output tokens", "reasoning tokens", "cost", "step time (s)"],
        [[_td(t["steps"], True), _td(t["model_calls"], True), _td(t["tool_calls"], True), _td(t["input_tokens"], True),
          _td(t["cached_input_tokens"], True), _td(t["output_tokens"], True), _td(t["reasoning_tokens"], True),
          _td(cost), _td(t["duration_s"], True)]])}
<h2>Timeline</h2>
{_table(["step", "node", "title", "effort (why)", "model", "in", "out", "reasoning", "cost USD", "s", "status"], timeline)}
<h2>Goal reviews</h2>
{_table(["step", "decision", "reason", "drift", "effort", "in", "out", "reasoning"], reviews)}
<h2>Approvals</h2>
{_table(["step", "at", "action", "approver", "comment", "proposal sha256"], approvals)}
<h2>Run events</h2>
{_table(["seq", "at", "event", "detail"], events)}
<p class="muted">Inputs: </p>{_pre(run['inputs'])}
</body></html>
"""


def export_run(store: AuditStore, run_id: str, fmt: str) -> str:
    """The export of ``run_id`` in ``fmt`` (``json`` or ``html``). Raises ``ValueError`` naming
    the format otherwise, ``LookupError`` for an unknown run."""
    if fmt == "json":
        return export_json(store, run_id)
    if fmt == "html":
        return export_html(store, run_id)
    raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


__all__ = ["FORMATS", "export_data", "export_html", "export_json", "export_run", "totals"]
