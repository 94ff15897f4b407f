"""The ``chainproof`` command line (Typer + Rich).

Commands: ``run due-diligence``, ``approve``, ``reject``, ``edit``, ``resume``, ``pending``,
``runs``, ``show``, ``costs``, ``verify``, ``replay``, ``export``, ``cache clear``, ``dossier build``. Errors in input print one
line naming what is wrong (exit code 2), never a traceback; a run that fails on model access
(retries exhausted, endpoints down) prints the cause and the ``chainproof resume`` command (exit
code 1). ``verify`` exits 1 when a chain is broken; ``replay`` exits 1 when the replay diverges
and 3 when zero data retention left steps it cannot reproduce. ``CHAINPROOF_DEBUG=1`` shows the
traceback too.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from chainproof import _views as views

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Long-chain reasoning runs you can approve, audit and replay.")
run_app = typer.Typer(no_args_is_help=True, help="Start a run of a graph.")
dossier_app = typer.Typer(no_args_is_help=True, help="Dossiers: the input folders of due-diligence runs.")
cache_app = typer.Typer(no_args_is_help=True, help="The reasoning cache (model answers reused across runs).")
app.add_typer(run_app, name="run")
app.add_typer(dossier_app, name="dossier")
app.add_typer(cache_app, name="cache")
console = Console()
err = Console(stderr=True)

As = Annotated[str, typer.Option("--as", help="Your name, recorded as the approver.")]
RequestOpt = Annotated[Optional[str], typer.Option("--request", help="Request id (optional when only one is pending).")]


def _user_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    from chainproof.agents.local_weights import LocalModelUnavailable
    from chainproof.app import RunNotFound
    from chainproof.graphs.approval import ApprovalRefused

    return (ValueError, KeyError, LookupError, OSError, sqlite3.Error, SQLAlchemyError, ApprovalRefused, RunNotFound,
            LocalModelUnavailable)


def _fail(exc: BaseException, code: int = 2) -> None:
    if os.environ.get("CHAINPROOF_DEBUG"):
        raise exc
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, KeyboardInterrupt):
        message = "interrupted"
    if isinstance(exc, ValidationError):  # pydantic: one line, "field: problem; field: problem"
        message = "; ".join(f"{'.'.join(map(str, e['loc'])) or exc.title}: {e['msg']}" for e in exc.errors())
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    for note in getattr(exc, "__notes__", []):
        if "chainproof " in note:  # ours (how to resume), not LangGraph's task ids
            err.print(note, highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _run_errors() -> tuple[type[BaseException], ...]:
    """Failures of a run (not of the input): the run is recorded as failed and can be resumed."""
    from chainproof.errors import RunError

    return (RunError, KeyboardInterrupt)


def _engine():
    from chainproof.app import Chainproof

    return Chainproof()


def _finish(result: Any) -> None:
    if result.status == "paused":
        views.print_pause(console, result)
    else:
        views.print_completed(console, result)


@run_app.command("due-diligence")
def run_due_diligence(
    company: Annotated[str, typer.Option(help="Ticker of the company, e.g. MMM.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Analysis date, YYYY-MM-DD; only data up to it is used.")],
    dossier: Annotated[Optional[Path], typer.Option(help="Dossier folder (default: the bundled one for the ticker).")] = None,
    started_by: Annotated[Optional[str], typer.Option("--as", help="Your name, recorded as who started the run.")] = None,
    department: Annotated[Optional[str], typer.Option(help="Department or project, for cost reports.")] = None,
    effort: Annotated[Optional[str], typer.Option(help="Force one effort (low|medium|high) for every step.")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Step budget in plan steps (default: the graph's).")] = None,
    review_every: Annotated[Optional[int], typer.Option(help="Goal review every N plan steps (0 = never).")] = None,
    zdr: Annotated[bool, typer.Option("--zdr", help="Zero data retention: keep hashes and short redacted excerpts of prompts and outputs, not the text.")] = False,
    budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="Cost budget of this run in USD: alert at 80 %, pause before a call that would exceed it.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the reasoning cache in this run.")] = False,
) -> None:
    """Run the due-diligence chain on a company as of a date; it pauses for your approval."""
    try:
        with _engine() as engine:
            inputs = {"company": company, "as_of": as_of, "dossier": str(dossier) if dossier else None}
            with views.LiveSteps(console) as live:
                result = engine.start("due-diligence", inputs, started_by=started_by, department=department,
                                      effort=effort, max_steps=max_steps, review_every=review_every,
                                      zdr=zdr or None, budget_usd=budget_usd, cache=False if no_cache else None,
                                      on_progress=live.update)
            _finish(result)
    except _run_errors() as exc:
        _fail(exc, 1)
    except _user_errors() as exc:
        _fail(exc)


def _decide(run_id: str, action: str, approver: str, comment: str | None, request: str | None, **edit: Any) -> None:
    try:
        with _engine() as engine, views.LiveSteps(console) as live:
            result = engine.decide(run_id, action=action, approver=approver, comment=comment,
                                   request_id=request, on_progress=live.update, **edit)
        _finish(result)
    except _run_errors() as exc:
        _fail(exc, 1)
    except _user_errors() as exc:
        _fail(exc)


@app.command()
def approve(
    run_id: str,
    approver: As,
    comment: Annotated[Optional[str], typer.Option(help="Optional comment, kept in the audit trail.")] = None,
    request: RequestOpt = None,
) -> None:
    """Approve the pending decision of a paused run and resume it."""
    _decide(run_id, "approve", approver, comment, request)


@app.command()
def reject(
    run_id: str,
    approver: As,
    comment: Annotated[str, typer.Option(help="Why you reject it (required).")],
    request: RequestOpt = None,
) -> None:
    """Reject the pending decision of a paused run (with a reason) and resume it."""
    _decide(run_id, "reject", approver, comment, request)


@app.command()
def edit(
    run_id: str,
    approver: As,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="FIELD=VALUE (VALUE as JSON if it parses); repeatable.")] = None,
    file: Annotated[Optional[Path], typer.Option(help="A JSON file with the whole replacement proposal.")] = None,
    comment: Annotated[Optional[str], typer.Option(help="Optional comment, kept in the audit trail.")] = None,
    request: RequestOpt = None,
) -> None:
    """Replace (part of) the pending proposal, checked against its schema, approve it and resume."""
    try:
        if not set_ and file is None:
            raise ValueError("edit: give --set FIELD=VALUE (repeatable) and/or --file proposal.json")
        edited = None
        if file is not None:
            try:
                edited = json.loads(file.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ValueError(f"--file {file}: not valid JSON ({exc})") from None
            if not isinstance(edited, dict):
                raise ValueError(f"--file {file}: expected a JSON object, got {type(edited).__name__}")
    except _user_errors() as exc:
        _fail(exc)
    _decide(run_id, "edit", approver, comment, request, edited=edited, changes=set_ or None)


@app.command()
def resume(
    run_id: str,
    max_steps: Annotated[Optional[int], typer.Option(help="New step budget (plan steps) for a run stopped at its budget.")] = None,
    budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="New cost budget (USD) for a run paused at its cost budget.")] = None,
    by: Annotated[Optional[str], typer.Option("--as", help="Your name, recorded with the extension.")] = None,
) -> None:
    """Continue a run: after its step budget (with a larger --max-steps), at its cost budget (with a
    larger --budget-usd, or after raising the department's budget in the settings), after a failure,
    or to apply a decision that was recorded but never reached the run."""
    try:
        with _engine() as engine, views.LiveSteps(console) as live:
            result = engine.resume(run_id, max_steps=max_steps, budget_usd=budget_usd, by=by, on_progress=live.update)
        _finish(result)
    except _run_errors() as exc:
        _fail(exc, 1)
    except _user_errors() as exc:
        _fail(exc)


@app.command()
def pending() -> None:
    """List open approval requests across runs."""
    try:
        with _engine() as engine:
            views.print_pending(console, engine.pending_all())
    except _user_errors() as exc:
        _fail(exc)


@app.command()
def runs(limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 20) -> None:
    """List runs with their status."""
    try:
        with _engine() as engine:
            rows = engine.audit.list_runs(limit=limit)
            views.print_runs(console, rows, engine.audit.decisions_by_run([run.run_id for run, _, _ in rows]))
    except _user_errors() as exc:
        _fail(exc)


@app.command()
def show(
    run_id: str,
    step: Annotated[Optional[int], typer.Option(help="Show one step in full (its model and tool calls).")] = None,
) -> None:
    """Print a run's audited trace: every step with node, effort, model, tokens and time."""
    try:
        with _engine() as engine:
            engine._run(run_id)
            views.print_trace(console, engine.audit, run_id, step)
    except _user_errors() as exc:
        _fail(exc)


@app.command()
def costs(
    run_id: Annotated[Optional[str], typer.Argument(help="The run to report.")] = None,
    department: Annotated[Optional[str], typer.Option(help="Department or project (with --month).")] = None,
    month: Annotated[Optional[str], typer.Option(help="Calendar month YYYY-MM (UTC), with --department.")] = None,
) -> None:
    """Tokens (reasoning shown separately) and USD by node and effort, for a run or a department's month."""
    from chainproof.graphs.costs import cost_report

    try:
        if run_id is not None and (department or month):
            raise ValueError("costs: give a RUN_ID, or --department NAME and --month YYYY-MM (not both)")
        with _engine() as engine:
            if run_id is not None:
                engine._run(run_id)
            rows, total = cost_report(engine.audit, run_id=run_id, department=department, month=month)
            alerts = engine.audit.events_of(run_id, "budget_alert") if run_id else []
            budget = engine.settings.budgets.departments.get(department) if department else None
            views.print_costs(console, rows, total, title=f"run {run_id}" if run_id else f"{department} · {month}",
                              alerts=[a.detail for a in alerts], budget_usd=budget)
    except _user_errors() as exc:
        _fail(exc)


@cache_app.command("clear")
def cache_clear(
    expired: Annotated[bool, typer.Option("--expired", help="Delete only entries past their TTL.")] = False,
) -> None:
    """Delete the reasoning cache's entries (the audit trail is not touched)."""
    try:
        with _engine() as engine:
            removed = engine.reasoning_cache.clear(expired_only=expired)
        console.print(f"reasoning cache: {removed} {'expired ' if expired else ''}entr{'y' if removed == 1 else 'ies'} deleted",
                      highlight=False)
    except _user_errors() as exc:
        _fail(exc)


@app.command()
def verify(
    run_id: Annotated[Optional[str], typer.Argument(help="The run to verify.")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Verify every run in the audit store.")] = False,
) -> None:
    """Recompute a run's hash chain and report the first broken link (edited, deleted, inserted,
    reordered record). Exit code 1 when a chain is broken."""
    from chainproof.checkpoints.verify import verify_all, verify_run

    if bool(run_id) == all_runs:
        _fail(ValueError("verify: give a RUN_ID or --all (not both)"))
    try:
        with _engine() as engine:
            results = verify_all(engine.audit) if all_runs else [verify_run(engine.audit, run_id)]
        views.print_verify(console, results)
    except _user_errors() as exc:
        _fail(exc)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def replay(
    run_id: str,
    step: Annotated[Optional[int], typer.Option(help="Show one step of the replay in full: recorded against replayed.")] = None,
) -> None:
    """Re-run a recorded run with every model and tool result served from the record (no model
    calls, no tool side effects, nothing written) and report the first divergence or "identical".
    Exit code 1 when it diverges, 3 when zero data retention left steps it cannot reproduce."""
    try:
        with _engine() as engine:
            report = engine.replay(run_id)
        if step is not None:
            views.print_replay_step(console, report.step(step))
        else:
            views.print_replay(console, report)
    except _user_errors() as exc:
        _fail(exc)
    if report.outcome != "identical":
        raise typer.Exit(1 if report.outcome == "divergent" else 3)


@app.command()
def export(
    run_id: str,
    fmt: Annotated[str, typer.Option("--format", help="json (for tools) or html (one self-contained file for an auditor).")] = "json",
    out: Annotated[Optional[Path], typer.Option(help="File to write (default: print to standard output).")] = None,
) -> None:
    """Export a run: every record, totals and the verify result, as JSON or one HTML file."""
    from chainproof.checkpoints.export import export_run

    try:
        with _engine() as engine:
            engine._run(run_id)
            text = export_run(engine.audit, run_id, fmt)
        if out is None:
            sys.stdout.write(text)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text, encoding="utf-8")
            err.print(f"{fmt} export of run {run_id} written to {out}", highlight=False)
    except _user_errors() as exc:
        _fail(exc)


@dossier_app.command("build")
def dossier_build(
    bundle: Annotated[Path, typer.Option(help="Root of a data bundle laid out like the public data set described in the README (sec_10k_filings/, market_prices/, ...).")],
    ticker: Annotated[str, typer.Option(help="Company ticker.")],
    as_of: Annotated[str, typer.Option("--as-of", help="YYYY-MM-DD")],
    out: Annotated[Path, typer.Option(help="Folder to write the dossier into.")],
) -> None:
    """Build a dossier folder for a company from a data bundle."""
    from chainproof.tools.dossier_builder import build_dossier

    try:
        try:
            when = date.fromisoformat(as_of)
        except ValueError:
            raise ValueError(f"--as-of: expected a date as YYYY-MM-DD, got {as_of!r}") from None
        path = build_dossier(bundle, ticker.upper(), when, out)
        console.print(f"dossier written to {path}")
    except _user_errors() as exc:
        _fail(exc)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
