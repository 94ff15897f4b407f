"""The HTML export: one self-contained page for an auditor, rendered from the JSON export.

Inline CSS, no scripts or external assets; every recorded text is escaped (it is untrusted model
output). The data comes from ``chainproof.checkpoints.export.export_data``; the charts from the files the
report step recorded, checked against their SHA-256.
"""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from typing import Any

from chainproof._terminal import strip_controls

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
    return html.escape(strip_controls(str(value)), quote=True)


def _pre(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return f"<pre>{html.escape(strip_controls(text))}</pre>"


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


def _charts(steps: list[dict[str, Any]]) -> str:
    """The charts the report step wrote, embedded as ``data:`` images so the page stays
    self-contained; a file that is missing or no longer matches its recorded SHA-256 is named
    instead of shown (:func:`chainproof.checkpoints.export.recorded_charts`)."""
    from chainproof.checkpoints.export import recorded_charts

    parts = []
    for chart in recorded_charts(steps):
        if chart.svg is None:
            parts.append(f'<p class="bad">Chart {_e(chart.name)}: {_e(chart.path)} is {_e(chart.problem)}.</p>')
            continue
        src = "data:image/svg+xml;base64," + base64.b64encode(chart.svg).decode("ascii")
        parts.append(f'<figure><img alt="{_e(chart.name)} chart" src="{src}" style="max-width:100%">'
                     f"<figcaption class='muted'>{_e(chart.name)} · sha256 <code>{_e(chart.sha256[:16])}…</code>"
                     "</figcaption></figure>")
    return "<h2>Charts</h2>" + "".join(parts) if parts else ""


def export_html(data: dict[str, Any]) -> str:
    """One self-contained HTML page for an auditor from a run's JSON export ``data``
    (:func:`chainproof.checkpoints.export.export_data`): run header, verify result, totals, the
    timeline of steps (each expandable to its model and tool calls), reviews, approvals, corrections (the
    corrected and the original value), events, and
    the report's charts embedded (read from the files the report step recorded)."""
    run_id = data["run"]["run_id"]
    run, t, recs = data["run"], data["totals"], data["records"]
    of = lambda table: [r for r in recs if r["table"] == table]  # noqa: E731
    calls, tools = of("model_calls"), of("tool_calls")
    timeline = []
    for s in of("steps"):
        no = s["step_no"]
        detail = _step_details(s, [c for c in calls if c["step_no"] == no], [x for x in tools if x["step_no"] == no])
        effort = f"{s['effort'] or '–'}" + (f" ({s['effort_reason']})" if s["effort_reason"] else "")
        timeline.append([_td(no, True), _td(s["node"]), f"<td>{_e(s['title'])}{detail}</td>", _td(effort),
                         _td(s["model"]), _td(s["input_tokens"], True), _td(s["output_tokens"], True),
                         _td(s["reasoning_tokens"], True), _td(s["cost_usd"], True), _td(s["duration_s"], True),
                         _td(s["status"])])
    reviews = [[_td(r["step_no"], True), _td(r["decision"]), _td(r["reason"]), _td(r["drift_assessment"]),
                _td(r["effort"]), _td(r["input_tokens"], True), _td(r["output_tokens"], True),
                _td(r["reasoning_tokens"], True)] for r in of("reviews")]
    approvals = [[_td(a["step_no"], True), _td(a["created_at"]), _td(a["action"]), _td(a["approver"]),
                  _td(a["comment"]), f"<td><code>{_e(a['proposed_hash'][:16])}…</code></td>"]
                 for a in of("approvals")]
    events = [[_td(e["seq"], True), _td(e["created_at"]), _td(e["kind"]), f"<td>{_pre(e['detail'])}</td>"]
              for e in of("events")]
    corrections = [[_td(c["step_no"], True), _td(c["field"]), f"<td>{_pre(c['value'])}</td>",
                    f"<td>{_pre(c['original'])}</td>", _td(c["by"]), _td(c["at"]), _td(c["reason"])]
                   for c in data.get("corrections", [])]
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
{_charts(of("steps"))}
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
<h2>Corrections</h2>
{_table(["step", "field", "corrected to", "original", "by", "at", "reason"], corrections)}
<h2>Run events</h2>
{_table(["seq", "at", "event", "detail"], events)}
<p class="muted">Inputs: </p>{_pre(run['inputs'])}
</body></html>
"""


__all__ = ["export_html"]
