"""Costs, endpoint SLA and housekeeping: ``costs``, ``sla``, ``cache clear``, ``db upgrade``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

import chainproof.cli as cli
from chainproof.cli import _views as views
from chainproof.cli import app, cache_app, console, db_app
from chainproof.errors import InputError


@app.command()
def costs(
    run_id: Annotated[Optional[str], typer.Argument(help="The run to report.")] = None,
    department: Annotated[Optional[str], typer.Option(help="Department or project (with --month).")] = None,
    month: Annotated[Optional[str], typer.Option(help="Calendar month YYYY-MM (UTC), with --department.")] = None,
) -> None:
    """Tokens (reasoning shown separately) and USD by node and effort, for a run or a department's month."""
    from chainproof.checkpoints.audit_read import month_bounds
    from chainproof.graphs.costs import cost_report

    if run_id is not None and (department or month):
        raise InputError("costs: give a RUN_ID, or --department NAME and --month YYYY-MM (not both)")
    if run_id is None and not (department and month):
        raise InputError("costs: give a RUN_ID, or --department NAME and --month YYYY-MM")
    if month is not None:
        try:
            month_bounds(month)
        except ValueError as exc:  # its documented "month: expected YYYY-MM"
            raise InputError(str(exc)) from None
    with cli.read_store() as (s, store):
        if run_id is not None:
            cli.get_run(store, run_id, s.resolved_database_url)
        rows, total = cost_report(store, run_id=run_id, department=department, month=month)
        alerts = store.events_of(run_id, "budget_alert") if run_id else []
    budget = s.budgets.departments.get(department) if department else None
    views.print_costs(console, rows, total, title=f"run {run_id}" if run_id else f"{department} · {month}",
                      alerts=[a.detail for a in alerts], budget_usd=budget)


@app.command()
def sla(
    since: Annotated[str, typer.Option(help="The window ending now: 24h, 90m, 7d, 2w.")] = "24h",
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object.")] = False,
) -> None:
    """Model endpoints' availability, response time (p50/p95 of successful requests) and 429 share,
    from the attempts in the audit store (definitions: graphs/sla.py)."""
    import json
    import sys

    from chainproof.graphs.sla import parse_window, sla_report

    window = parse_window(since)  # InputError (exit 2) before the store is opened
    with cli.read_store() as (_, store):
        report = sla_report(store, window)
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
        return
    from chainproof.cli._views_sla import print_sla

    print_sla(console, report, since)


@cache_app.command("clear")
def cache_clear(
    expired: Annotated[bool, typer.Option("--expired", help="Delete only entries past their TTL.")] = False,
) -> None:
    """Delete the reasoning cache's entries (the audit trail is not touched)."""
    from chainproof.checkpoints.reasoning_cache import ReasoningCache

    s = cli.settings()
    store = cli.open_store(s, migrate=True)
    try:
        removed = ReasoningCache(store.engine, s.cache.ttl_s, redactor=store.redactor).clear(expired_only=expired)
    finally:
        store.close()
    console.print(f"reasoning cache: {removed} {'expired ' if expired else ''}entr{'y' if removed == 1 else 'ies'} deleted",
                  highlight=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the audit database's schema to this version's revision (Alembic; idempotent)."""
    from chainproof.checkpoints.audit_db import HEAD_REVISION, schema_revision

    s = cli.settings()
    store = cli.open_store(s, migrate=False)
    try:
        before = schema_revision(store.engine)
        if before != HEAD_REVISION:
            from chainproof.checkpoints.audit_db import upgrade_schema

            upgrade_schema(store.engine)
    finally:
        store.close()
    change = "already current" if before == HEAD_REVISION else f"upgraded from {before or 'an empty database'}"
    console.print(f"audit store {s.resolved_database_url}: schema revision {HEAD_REVISION} ({change})", highlight=False)
