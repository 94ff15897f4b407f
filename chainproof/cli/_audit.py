"""Reading the record: ``runs``, ``pending``, ``show``, ``verify``, ``replay``, ``export``.

Everything here but ``replay`` reads the audit store only (:func:`chainproof.cli.read_store`):
no graph is compiled, no checkpointer opened, so a run whose graph cannot be loaded never breaks
these commands for the other runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

import chainproof.cli as cli
from chainproof.cli import _views as views
from chainproof.cli import app, console
from chainproof.errors import InputError


@app.command()
def runs(limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 20) -> None:
    """List runs with their status."""
    from chainproof._locks import lock_is_free

    with cli.read_store(missing_is_empty=True) as (settings, store):
        rows = store.list_runs(limit=limit)
        # a run "running now" whose process no longer holds its lock stopped without saying so
        rows = [(run, f"{status} (its process ended; chainproof resume {run.run_id})"
                 if status in ("started", "resumed")
                 and lock_is_free(settings.home, run.run_id, settings.resolved_database_url) else status, at)
                for run, status, at in rows]
        views.print_runs(console, rows, store.decisions_by_run([run.run_id for run, _, _ in rows]))


@app.command()
def pending(limit: Annotated[int, typer.Option(min=1, help="How many requests at most, newest runs first.")] = 50) -> None:
    """List open approval requests across runs (from the audit record: requests without a
    decision, on runs that are paused); like `runs`, the newest first, up to --limit."""
    with cli.read_store(missing_is_empty=True) as (_, store):
        views.print_pending(console, store.open_requests(), limit)


@app.command()
def show(
    run_id: str,
    step: Annotated[Optional[int], typer.Option(help="Show one step in full (its model and tool calls).")] = None,
) -> None:
    """Print a run's audited trace: every step with node, effort, model, tokens and time."""
    from chainproof.checkpoints.corrections import corrected_steps, corrections_of
    from chainproof.cli._correct import print_corrections

    with cli.read_store() as (s, store):
        run = cli.get_run(store, run_id, s.resolved_database_url)
        events = store.records_of(run_id, "events")
        corrections = corrections_of(events)  # shown corrected and marked, with the original listed
        trace = views.Trace(run=run, status=store.run_status(run_id), approvals=store.records_of(run_id, "approvals"),
                            steps=corrected_steps(store.records_of(run_id, "steps"), corrections), events=events,
                            step_no=step)
        if step is not None:
            trace.tool_calls = [t for t in store.records_of(run_id, "tool_calls") if t.step_no == step]
            trace.model_calls = [m for m in store.records_of(run_id, "model_calls") if m.step_no == step]
    views.print_trace(console, trace)
    print_corrections(console, corrections, step)


@app.command()
def verify(
    run_id: Annotated[Optional[str], typer.Argument(help="The run to verify.")] = None,
    all_runs: Annotated[bool, typer.Option("--all", help="Verify every run in the audit store.")] = False,
    against: Annotated[Optional[Path], typer.Option(help="A signed tree head (from `chainproof log head --out`): "
                                                     "prove the current log extends it.")] = None,
    public_key: Annotated[Optional[Path], typer.Option(help="With --against: the log's public key (PEM) to check "
                                                       "the head with (default: log.public_keys_dir).")] = None,
) -> None:
    """Recompute a run's hash chain and report the first broken link (edited, deleted, inserted,
    reordered record), check that the whole log extends the latest head published to each head sink
    (naming the first missing or changed leaf: truncation, deleted runs), and report every grant row
    (account, token, approver key, policy, store setting) not countersigned by a trusted operator key; or, with --against HEAD.json, prove with an RFC 9162 consistency proof that
    the whole log extends that signed head, naming the first record that differs or is missing.
    Exit code 1 when a chain is broken, the log does not extend a head, or a grant is refused or not recorded."""
    from chainproof.checkpoints.grant_events import unrecorded
    from chainproof.checkpoints.grants import hint as grant_hint
    from chainproof.checkpoints.grants import problems as grant_problems
    from chainproof.checkpoints.purge_check import purged_problems
    from chainproof.checkpoints.verify import verify_all, verify_run
    from chainproof.cli._log import verify_published

    if against is not None:
        if run_id or all_runs:
            raise InputError("verify: --against checks the whole log; give it without RUN_ID or --all")
        from chainproof.cli._log import verify_against

        if not verify_against(against, public_key):
            raise typer.Exit(1)
        return
    if bool(run_id) == all_runs:
        raise InputError("verify: give a RUN_ID, --all or --against HEAD.json")
    with cli.read_store() as (s, store):
        if run_id is not None and purged_problems(store, run_id) == (None, []):  # a purged run verifies as such
            cli.get_run(store, run_id, s.resolved_database_url)
        results = [verify_run(store, run_id)] if run_id else verify_all(store)  # exactly one of the two, checked above
        untrusted = grant_problems(store.engine)
        why = grant_hint(store.engine) if untrusted else ""
        unaccounted = unrecorded(store.engine)
        views.print_verify(console, results)
        log_ok = verify_published(s, store)
    for table, row, problem in untrusted:
        console.print(f"[red]grant not countersigned by a trusted operator key[/red]: {table}, row {escape(row)}: "
                      f"{escape(problem)}", highlight=False)
    if untrusted:
        console.print(f"{len(untrusted)} grant row(s) refused: {why}", highlight=False)
    for table, row, problem in unaccounted:
        console.print(f"[red]grant not recorded in the audit[/red]: {table}, row {escape(row)}: {escape(problem)}",
                      highlight=False)
    if not all(r.ok for r in results) or untrusted or unaccounted or not log_ok:
        raise typer.Exit(1)


@app.command()
def replay(
    run_id: str,
    step: Annotated[Optional[int], typer.Option(help="Show one step of the replay in full: recorded against replayed.")] = None,
) -> None:
    """Re-run a recorded run with every model and tool result served from the record (no model
    calls, no tool side effects, nothing written) and report the first divergence or "identical".
    Exit code 1 when it diverges, 3 when zero data retention left steps it cannot reproduce."""
    with cli._engine() as engine:
        report = engine.replay(run_id)
    if step is not None:
        try:
            chosen = report.step(step)
        except ValueError as exc:  # the report's documented "no such step" (graphs/replay.py)
            raise InputError(str(exc)) from None
        views.print_replay_step(console, chosen)
    else:
        views.print_replay(console, report)
    if report.outcome != "identical":
        raise typer.Exit(1 if report.outcome == "divergent" else 3)


FORMATS = ("json", "html")


@app.command()
def export(
    run_id: str,
    fmt: Annotated[str, typer.Option("--format", help="json (for tools) or html (one self-contained file for an auditor).")] = "json",
    out: Annotated[Optional[Path], typer.Option(help="File to write (default: print to standard output).")] = None,
    force: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Export a run: every record, totals and the verify result, as JSON or one HTML file."""
    import json

    from chainproof.checkpoints.export import export_data

    if fmt not in FORMATS:
        raise InputError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    with cli.read_store() as (s, store):
        cli.get_run(store, run_id, s.resolved_database_url)
        data = export_data(store, run_id)
    if fmt == "html":
        from chainproof.cli._html import export_html

        text = export_html(data)
    else:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is None:
        sys.stdout.write(text)
        return
    cli.write_out(out, text, f"{fmt} export of run {run_id}", force=force)
