"""Rich renderings for the CLI: live steps, the approval pause, run lists and traces.

Every function gets the data it shows (records, results) and never queries a store.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chainproof.errors import InputError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chainproof.checkpoints.audit_read import Record
    from chainproof.types import ProgressEvent


@dataclass
class Trace:
    """What ``chainproof show`` prints: the run header, its status (latest lifecycle event), its
    steps, approvals and events; with ``step_no`` set, that step's tool and model calls too."""

    run: Record
    status: str | None
    steps: list[Record]
    approvals: list[Record]
    events: list[Record]
    step_no: int | None = None
    tool_calls: list[Record] = field(default_factory=list)
    model_calls: list[Record] = field(default_factory=list)


def _cells(*values: Any) -> list[Any]:
    """Table cells: recorded text (titles, names, comments) is shown as written, never parsed as
    Rich markup ("[legal]" would vanish, "[/]" would raise)."""
    return [v if isinstance(v, Text) else escape(str(v)) for v in values]


class LiveSteps:
    """Prints one line per finished step (step, node, title, effort, tokens, seconds) and shows a
    spinner with the elapsed time while the next step runs."""

    def __init__(self, console: Console):
        self.console = console
        self._status = console.status("starting…")
        self._t0 = time.perf_counter()

    def __enter__(self) -> LiveSteps:
        self._status.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._status.__exit__(*exc)

    def update(self, event: ProgressEvent) -> None:
        if event.kind == "budget_alert":
            self.console.print(Text("! " + budget_alert_text(event.value), style="yellow"), highlight=False)
            return
        ok = event.get("status") == "ok"
        effort = event.get("effort") or "-"
        tokens = event.get("tokens") or 0
        reasoning = f" ({event['reasoning_tokens']} reasoning)" if event.get("reasoning_tokens") else ""
        line = Text("✓ " if ok else "✗ ", style="green" if ok else "red")
        cost = f" usd={_usd(event.get('cost_usd'))}" if event.get("model") else ""
        hits = f" cache-hits={event['cache_hits']}" if event.get("cache_hits") else ""
        line.append(
            f"step {event['step']:>3}  {event['node']:<8} {event['title'][:60]:<60} "
            f"effort={effort:<6} tokens={tokens}{reasoning}{cost}{hits}  {event['elapsed_s']:.1f}s"
        )
        self.console.print(line, highlight=False)
        total = time.perf_counter() - self._t0
        self._status.update(f"working on step {event['step'] + 1}… ({total:.0f}s so far)")


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.6f}"


def budget_alert_text(alert: Mapping[str, Any]) -> str:
    """One line for a ``budget_alert`` event's detail."""
    lower = f" (at least: {alert['unpriced_calls']} calls have no price)" if alert.get("unpriced_calls") else ""
    return (f"budget alert: {alert['share']:.0%} of the {alert['scope']} budget of {alert['budget_usd']:.4f} USD "
            f"spent ({alert['spent_usd']:.6f} USD{lower})")


def print_costs(console: Console, rows: list[Any], total: Any, *, title: str, alerts: list[dict[str, Any]],
                budget_usd: float | None = None) -> None:
    """The ``chainproof costs`` table: one row per (node, effort), then the total."""
    table = Table(title=f"Costs · {title}", box=None, pad_edge=False, header_style="bold")
    for name in ("node", "effort", "calls", "hits", "in", "cached", "out", "reasoning", "saved", "USD"):
        table.add_column(name, no_wrap=True, justify="left" if name in ("node", "effort") else "right")
    for r in [*rows, total]:
        table.add_row(r.node, r.effort or "", str(r.calls), str(r.cache_hits), str(r.input_tokens),
                      str(r.cached_input_tokens), str(r.output_tokens), str(r.reasoning_tokens), str(r.saved_tokens),
                      _usd(r.usd), style="bold" if r is total else None)
    console.print(table if total.calls else f"No model calls for {title}.")
    if total.calls:
        console.print("tokens: in includes cached, out includes reasoning; hits = reasoning-cache hits, "
                      "saved = their tokens (not used, not paid); USD unknown = a model without a price", highlight=False)
    if budget_usd is not None:
        spent = "unknown" if total.usd is None else f"{total.usd:.6f} USD ({total.usd / budget_usd:.0%})"
        console.print(f"monthly budget {budget_usd:.4f} USD · spent {spent}", highlight=False)
    for alert in alerts:
        console.print(budget_alert_text(alert), style="yellow", highlight=False)


def _cmd(*parts: str) -> str:
    return " ".join(shlex.quote(p) if " " in p or not p else p for p in parts)


def print_pause(console: Console, result: Any, *, signing: list[str] | None = None) -> None:
    """The pause panel and the commands that answer it; ``signing``: the run's policy requires
    signed decisions, and this heading and these commands (``cli/_signed_pause.py``: the steps
    still missing to sign) are printed too."""
    cost = result.cost_stop
    if cost:
        console.print(Panel(Text(cost["question"]), title=f"Cost budget reached · run {result.run_id}", expand=False))
        console.print("The run is paused and saved; the call was not made. To continue:", highlight=False)
        if cost["field"] == "budget_usd":
            need = cost["spent_usd"] + cost["projected_usd"]
            console.print(f"  chainproof resume {result.run_id} --budget-usd {max(need * 1.5, cost['budget_usd'] * 1.5):.4f}",
                          highlight=False, markup=False)
        else:
            console.print(f"  raise {cost['field']} in chainproof.toml, then: chainproof resume {result.run_id}",
                          highlight=False, markup=False)
        return
    stop = result.budget_stop
    if stop:
        console.print(Panel(Text(stop["question"]), title=f"Step budget reached · run {result.run_id}", expand=False))
        console.print("The run is paused and saved. To continue with a larger budget:", highlight=False)
        console.print(f"  chainproof resume {result.run_id} --max-steps {stop['done_count'] + stop['remaining']}",
                      highlight=False, markup=False)
        return
    for request in result.requests:
        proposed = request["proposed"]
        shown = json.dumps({k: v for k, v in proposed.items() if not k.startswith("_")}, indent=2)
        why = "".join(f"\n  · {r}" for r in request.get("reasons", []))
        body = Text(request["question"], style="bold") + Text(("\nWhy approval is needed:" + why if why else "") + "\n\n" + shown)
        console.print(Panel(body, title=f"Approval needed · run {result.run_id} · request {request['request_id']}", expand=False))
    multiple = len(result.requests) > 1
    console.print("The run is paused and saved. To decide, from any shell:", highlight=False)
    for request in result.requests if multiple else result.requests[:1]:
        req = ["--request", request["request_id"]] if multiple else []
        if multiple:
            console.print(f"  # {request['question']}", highlight=False, markup=False)
        console.print("  " + _cmd("chainproof", "approve", result.run_id, "--as", "Your Name", *req, "--comment", "optional note"), highlight=False, markup=False)
        console.print("  " + _cmd("chainproof", "reject", result.run_id, "--as", "Your Name", *req, "--comment", "why"), highlight=False, markup=False)
        console.print("  " + _cmd("chainproof", "edit", result.run_id, "--as", "Your Name", *req, "--set", "field=value"), highlight=False, markup=False)
    console.print(f"  chainproof show {result.run_id}   # the audited trace so far", highlight=False, markup=False)
    if signing:  # the policy requires a signed decision: what is still missing to sign (cli/_signed_pause.py)
        console.print(signing[0], highlight=False, markup=False, soft_wrap=True)  # it may name a key file
        for line in signing[1:]:
            console.print("  " + line, highlight=False, markup=False, soft_wrap=True)  # copyable: never wrapped


def print_completed(console: Console, result: Any) -> None:
    approval = result.state.get("approval") or {}
    decisions = result.state.get("approvals") or []
    if approval:
        verdict = f"{approval['action']} by {approval['approver']}"
    else:
        verdict = f"{len(decisions)} approval decision(s)" if decisions else "no approval needed"
    console.print(f"[bold green]Run {result.run_id} completed[/] ({escape(verdict)}).")
    if result.report_path:
        console.print(f"Report: {result.report_path}", highlight=False)
    console.print(f"Trace:  chainproof show {result.run_id}", highlight=False, markup=False)


def print_runs(console: Console, rows: list[tuple[Any, str | None, Any]],
               decisions: dict[str, list[Any]] | None = None) -> None:
    """Runs with status and, from the audit store, the human decisions taken (action by whom)."""
    decisions = decisions or {}
    table = Table("run", "graph", "company", "status", "decision", "started", "by")
    for run, status, _ in rows:
        inputs = run.inputs if isinstance(run.inputs, dict) else {}  # a garbled row shows no as-of
        decided = "; ".join(f"{d.action} by {d.approver}" for d in decisions.get(run.run_id, [])) or "-"
        if getattr(run, "parent_run_id", None):
            status = f"{status or '-'} (fork of {run.parent_run_id} @ step {run.forked_at_step})"
        table.add_row(*_cells(run.run_id, run.graph, str(run.company or "-") + (f" @ {inputs['as_of']}" if inputs.get("as_of") else ""),
                      status or "-", decided, run.created_at.strftime("%Y-%m-%d %H:%M:%S"), run.started_by or "-"))
    console.print(table if rows else "No runs yet.")


def print_pending(console: Console, rows: list[tuple[Any, list[Record]]], limit: int | None = None) -> None:
    """Open approval requests: ``(run, requested rows)`` as read from the audit store, newest run
    first; each row's payload is the request the approver sees. At most ``limit`` requests are
    shown, with a line saying how many more there are."""
    table = Table("run", "request", "subject", "question", "proposed", "why", "created")
    everything = [(run, rec) for run, requests in rows for rec in requests]
    for run, rec in everything[:limit]:
        r = rec.payload if isinstance(rec.payload, dict) else {}
        raw = r.get("proposed")
        shown: dict[str, Any] = raw if isinstance(raw, dict) else {}
        # the decision field when the schema has one (due diligence), else the proposal in short
        proposed = shown.get("decision") if "decision" in shown else json.dumps(shown, default=str)[:80]
        listed = r.get("reasons")
        reasons = listed if isinstance(listed, list) else []
        table.add_row(*_cells(run.run_id, rec.request_id, r.get("subject", "decision"), r.get("question", "-"),
                      str(proposed), "; ".join(map(str, reasons)),
                      str(r.get("created_at") or f"{rec.created_at:%Y-%m-%d %H:%M:%S}")[:19]))
    console.print(table if everything else "No pending approval requests.")
    if limit is not None and len(everything) > limit:
        console.print(f"{len(everything) - limit} more open requests on older runs (chainproof pending --limit N)",
                      highlight=False, markup=False)


def print_trace(console: Console, trace: Trace) -> None:
    """A run's audited trace (every step, reviews, approvals, events), or one step in full."""
    run, steps = trace.run, trace.steps
    if trace.step_no is not None:
        _print_step(console, trace)
        return
    console.print(f"[bold]{escape(run.graph)}[/] run {run.run_id} · status {trace.status} · goal: {escape(run.goal)}", highlight=False)
    if getattr(run, "parent_run_id", None):
        console.print(f"fork of run {run.parent_run_id} after its step {run.forked_at_step}; steps up to "
                      f"{run.forked_at_step} are in that run (chainproof show {run.parent_run_id})", highlight=False, markup=False)
    table = Table("step", "node", "title", "effort", "model", "in", "out", "reasoning", "USD", "sec", "status")
    totals = [0, 0, 0]
    for s in steps:
        totals = [totals[0] + s.input_tokens, totals[1] + s.output_tokens, totals[2] + s.reasoning_tokens]
        attempt = (s.output or {}).get("attempt") if isinstance(s.output, dict) else None
        table.add_row(*_cells(f"{s.step_no} (attempt {attempt})" if attempt else str(s.step_no), s.node, s.title[:48], s.effort or "-", (s.model or "-")[:40],
                      str(s.input_tokens), str(s.output_tokens), str(s.reasoning_tokens),
                      _usd(s.cost_usd) if s.model else "-", f"{s.duration_s:.2f}", s.status))
    console.print(table)
    console.print(f"{len(steps)} steps · tokens in {totals[0]}, out {totals[1]} (of which reasoning {totals[2]})")
    for r in [s for s in steps if s.node == "review"]:
        out = r.output or {}
        extra = " (fallback)" if out.get("fallback") else ""
        console.print(f"review at step {r.step_no}: {out.get('decision')}{extra} — {out.get('reason', '')}"
                      + (f" · drift: {out['drift']}" if out.get("drift") else ""), highlight=False, markup=False)
    for b in [s for s in steps if s.kind == "branch"]:
        out = b.output or {}
        skipped = f" (skipped: {', '.join(out['skipped'])})" if out.get("skipped") else ""
        console.print(f"branch at step {b.step_no}: {'run' if out.get('taken') else 'skip'} {out.get('plan_step')} — "
                      f"{out.get('reason', '')}{skipped}" + (" [by the spec]" if out.get("by") == "spec" else ""),
                      highlight=False, markup=False)
    for e in trace.events:
        if e.kind == "step_reexecuted":
            console.print(reexecution_line(e.detail or {}), highlight=False, markup=False)
    print_approvals(console, trace.approvals)
    events = ", ".join(e.kind.removeprefix("run_") for e in trace.events)
    console.print(f"events: {events}", highlight=False)


def reexecution_line(detail: dict[str, Any]) -> str:
    """One line of ``show`` for a ``step_reexecuted`` event: which attempt, what happened to the
    earlier ones, the model requests sent again and the side-effect calls not run again."""
    earlier = ", ".join(f"{a['attempt']} ({'recorded' if a.get('recorded') else 'not recorded: stopped before its records'})"
                        for a in detail.get("earlier", []))
    effects = detail.get("side_effects") or {}
    extra = "".join(f"; side-effect calls {how}: {', '.join(names)}" for how, names in effects.items())
    return (f"step {detail.get('step_no')} ({detail.get('node')}) executed again as attempt {detail.get('attempt')} "
            f"after attempt {earlier}; model requests sent again: {detail.get('model_requests', 0)}{extra}")


def print_approvals(console: Console, rows: list[Record]) -> None:
    """Every approval request and decision of a run: request, subject, action, approver, time
    (UTC), comment, and the first characters of the hash of the decided content."""
    if not rows:
        return
    table = Table("request", "subject", "action", "approver", "time (UTC)", "comment", "content hash", title="approvals")
    for a in rows:
        payload = a.payload or {}
        digest = payload.get("decided_hash") if a.action != "requested" else a.proposed_hash
        table.add_row(*_cells(a.request_id, str(payload.get("subject", "decision")), a.action, a.approver or "-",
                      f"{a.created_at:%Y-%m-%d %H:%M:%S}", a.comment or ("; ".join(payload.get("reasons", [])) if a.action == "requested" else "-"),
                      (digest or "")[:12]))
    console.print(table)


def _print_step(console: Console, trace: Trace) -> None:
    step_no, steps = trace.step_no, trace.steps
    match = [s for s in steps if s.step_no == step_no]
    if not match:
        raise InputError(f"step: run {trace.run.run_id} has steps 1..{len(steps)}, not {step_no}")
    s = match[-1]
    console.print(Panel(Text(json.dumps({"node": s.node, "title": s.title, "effort": s.effort, "effort_reason": s.effort_reason,
                                    "model": s.model, "inputs": s.inputs, "output": s.output}, indent=2, default=str)),
                        title=f"step {step_no}"))
    for t in trace.tool_calls:
        if t.step_no == step_no:
            console.print(Panel(Text(json.dumps({"tool": t.tool, "args": t.args, "result": t.result, "error": t.error}, indent=2, default=str)), title="tool call"))
    for m in trace.model_calls:
        if m.step_no == step_no:
            prompt = "\n\n".join(f"[{msg['role']}] {msg.get('content', '')}" for msg in m.messages)
            console.print(Panel(Text(prompt), title=f"model call · {m.model} · attempt {m.attempt} · prompt"))
            if m.reasoning:
                console.print(Panel(Text(m.reasoning), title="reasoning"))
            source = "reasoning cache hit (saved)" if m.cache_hit else f"{m.latency_s:.2f}s"
            console.print(Panel(Text(m.output), title=f"output · in {m.input_tokens} / out {m.output_tokens} "
                                f"(reasoning {m.reasoning_tokens}) tokens · USD {_usd(m.cost_usd)} · {source}"))


def print_verify(console: Console, results: list[Any]) -> None:
    """One line per run: intact (records, head hash) or the first broken link."""
    if not results:
        console.print("No runs yet.")
        return
    for r in results:
        if r.ok and r.purged:
            line = Text("✓ ", style="green")
            line.append(f"{r.run_id}: purged ({r.records} records, leaves kept) on {r.purged['purged_at']:%Y-%m-%d} by "
                        f"{r.purged['purged_by']}; tombstone matches, last chain hash {r.head_hash}")
        elif r.ok:
            line = Text("✓ ", style="green")
            line.append(f"{r.run_id}: chain intact, {r.records} records, head seq {r.head_seq} hash {r.head_hash}")
        else:
            b = r.broken
            where = b.table + (f" seq {b.seq}" if b.seq is not None else "") + \
                (f" (id {b.record_id})" if b.record_id is not None else "")
            line = Text("✗ ", style="red")
            line.append(f"{r.run_id}: chain broken — {b.kind} at {where}: {b.detail}", style="bold red")
        console.print(line, highlight=False)
        for note in r.notes:
            console.print(f"  note: {note}", highlight=False, markup=False)
    broken = sum(not r.ok for r in results)
    if len(results) > 1:
        console.print(f"{len(results)} runs verified, {broken} broken.", highlight=False)


_REPLAY_STYLE = {"identical": "green", "divergent": "bold red", "not-reproducible": "yellow", "not-replayed": "dim"}


def print_replay(console: Console, report: Any) -> None:
    """The per-step table of a replay and its verdict."""
    table = Table("step", "node", "title", "replay", "what differed")
    for s in report.steps:
        table.add_row(*_cells(str(s.step_no), s.node, s.title[:48], Text(s.status, style=_REPLAY_STYLE[s.status]),
                      Text("; ".join(s.differences)[:300])))
    console.print(table)
    served = (f"{report.model_calls_served} model answers and {report.tool_calls_served} tool results served from "
              f"the record, 0 model calls made, {report.duration_s:.2f}s")
    first = report.first_divergence
    if report.outcome == "identical":
        console.print(f"[bold green]identical[/]: all {len(report.steps)} steps reproduced exactly ({served}).", highlight=False)
    elif first is not None:
        line = Text("divergent", style="bold red")
        line.append(f" at step {first.step_no} ({first.node}: {first.title}): " + "; ".join(first.differences))
        console.print(line, highlight=False)
        console.print(f"({served}; details: chainproof replay {report.run_id} --step {first.step_no})", highlight=False, markup=False)
    else:
        missing = [str(s.step_no) for s in report.steps if s.status == "not-reproducible"]
        console.print(f"[bold yellow]not reproducible[/]: zero data retention kept no model output for steps "
                      f"{', '.join(missing)}; they cannot be replayed ({served}).", highlight=False)


def print_replay_step(console: Console, step: Any) -> None:
    """One step of a replay in full: its status, what differed, recorded and replayed records."""
    console.print(Text(f"step {step.step_no} · {step.node} · {step.title} · ") + Text(step.status, style="bold"), highlight=False)
    for d in step.differences:
        console.print(f"  - {d}", highlight=False, markup=False)
    for label, records in (("recorded", step.recorded), ("replayed", step.replayed)):
        for rec in records:
            console.print(Panel(Text(json.dumps(rec, indent=2, default=str)), title=f"{label} · {rec['table']}"))
        if not records:
            console.print(f"({label}: no records for this step)", highlight=False)
