"""``chainproof watch RUN_ID``: a run's live events in the terminal, read from the audit store.

The same events, in the same order and with the same ids (audit ``seq``), as the web app's SSE
stream (both come from :mod:`chainproof._live`), so a run started anywhere — the web app, another
terminal, a worker — can be followed from any shell that reaches the store; ``--after SEQ``
resumes after the last event seen, as ``Last-Event-ID`` does. Read-only: opens the audit store
alone, imports no graph.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.text import Text

import chainproof.cli as cli
from chainproof._live import MAX_SEQ
from chainproof.cli import app, console
from chainproof.cli._views import budget_alert_text


def _usd(value: float | None) -> str:
    return "usd=unknown" if value is None else f"usd={value:.6f}"


def live_text(event: Any) -> Text:
    """One terminal line for a :data:`chainproof._live.LiveEvent` (the seq first, as an id)."""
    d = event.data()
    head = f"{event.seq:>5}  "
    if event.type == "started":
        return Text(f"{head}started {d['graph']} by {d['started_by'] or '-'}", style="bold")
    if event.type == "step_started":
        return Text(f"{head}… step {d['step_no']:>3}  {d['node']:<8} {(d['title'] or '')[:60]}  effort={d['effort'] or '-'}",
                    style="dim")
    if event.type == "step_finished":
        ok = d["status"] == "ok"
        t = d["tokens"]
        line = Text(head)
        line.append("✓ " if ok else "✗ ", style="green" if ok else "red")
        line.append(f"step {d['step_no']:>3}  {d['node']:<8} {d['title'][:60]:<60} effort={d['effort'] or '-':<6} "
                    f"tokens={t['input']}+{t['output']} ({t['reasoning']} reasoning) {_usd(d['cost_usd'])}  {d['seconds']:.1f}s")
        return line
    if event.type == "review":
        return Text(f"{head}review after step {d['step_no']}: {d['decision']} ({d['reason']})")
    if event.type == "paused":
        if d["why"] != "approval":
            return Text(f"{head}paused: {d['why']} {json.dumps(d['detail'], default=str)}", style="yellow")
        asks = "; ".join(f"{r['request_id']}: {r['question'] or ''}" for r in d["requests"])
        return Text(f"{head}paused for approval: {asks}", style="yellow")
    if event.type == "resumed":
        return Text(f"{head}resumed {json.dumps(d, default=str)}")
    if event.type == "budget_alert":
        return Text(f"{head}! {budget_alert_text(d)}", style="yellow")
    if event.type == "failed":
        return Text(f"{head}failed: {d.get('error', '')}", style="red")
    return Text(f"{head}completed" + (f" · report {d['report_path']}" if d.get("report_path") else ""), style="bold green")


@app.command()
def watch(
    run_id: Annotated[str, typer.Argument(help="The run to follow.")],
    after: Annotated[int, typer.Option(min=0, max=MAX_SEQ, help="Show only events after this seq (the last one seen).")] = 0,
    follow: Annotated[bool, typer.Option(help="Wait for new events until the run completes.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line: id, event, data.")] = False,
) -> None:
    """A run's live events (started, step started/finished, review, paused, resumed, completed,
    failed) as the web app streams them; waits for new ones until the run completes (Ctrl-C to stop)."""
    from chainproof._live import LiveReader
    from chainproof._live import follow as follow_events

    with cli.read_store() as (s, store):
        cli.get_run(store, run_id, s.resolved_database_url)
        events = follow_events(store, run_id, after) if follow else iter(LiveReader(store, run_id, after).batch())
        for event in events:
            if as_json:
                sys.stdout.write(json.dumps({"id": event.seq, "event": event.type, "data": event.data()}) + "\n")
                sys.stdout.flush()
            else:
                console.print(live_text(event), highlight=False)
