"""Retention and purges: ``retention show|set`` and ``purge`` (``checkpoints/retention.py``).

The retention is held in the audit store and only an admin changes it (a ``retention_changed``
auth event); ``purge`` is admin-only too, except ``--dry-run``, which lists what a purge would
delete and why each other run is kept. A purge deletes the records of finished runs older than
the retention, keeps their leaves and a tombstone each (``run_purged`` auth events), and deletes
their LangGraph checkpoints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

import chainproof.cli as cli
from chainproof.cli import app, console
from chainproof.cli._keys import admin_store
from chainproof.errors import InputError

retention_app = typer.Typer(no_args_is_help=True, help="How long finished runs are kept (admin; at least 6 months).")
app.add_typer(retention_app, name="retention")


def _now() -> datetime:
    """The purge's clock (UTC)."""
    return datetime.now(UTC)


def _stored(store: Any) -> Any:
    from chainproof.checkpoints.retention import RetentionStore

    return RetentionStore(store.engine).current()


@retention_app.command("show")
def retention_show() -> None:
    """The retention in force: version, who set it and when."""
    from chainproof.errors import StoreMissing

    try:
        with cli.read_store() as (_, store):
            current = _stored(store)
    except StoreMissing:  # nothing recorded yet, so nothing set either
        current = None
    if current is None:
        console.print("No retention is set: nothing is purged (an admin sets one: chainproof retention set '6 months').",
                      highlight=False)
        return
    console.print(f"retention {current.retention} (version {current.version}, set {current.created_at:%Y-%m-%d %H:%M} "
                  f"UTC by {current.created_by}): finished runs are purgeable that long after they ended",
                  highlight=False, markup=False)


@retention_app.command("set", context_settings={"ignore_unknown_options": True})  # '-1 years' is a value, not an option
def retention_set(value: Annotated[str, typer.Argument(help="N days|months|years, 6 months to 100 years (e.g. '7 years').")]) -> None:
    """Set how long finished runs are kept (admin; recorded as retention_changed)."""
    from chainproof.checkpoints.retention import Retention, RetentionStore

    retention = Retention.parse(value)  # refused before anything is opened
    with admin_store("changes how long records are kept") as (store, actor):
        stored = RetentionStore(store.engine).set(retention, actor=actor)
    console.print(f"retention: {'version ' + str(stored.version) + ', ' + str(stored.retention) if stored else 'unchanged'}",
                  highlight=False)


def _before(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--before: expected a date YYYY-MM-DD (UTC), got {value!r}") from None
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def _print_plan(plan: list[Any]) -> None:
    table = Table("run", "graph", "status", "ended (UTC)", "records", "purge")
    for c in plan:
        table.add_row(c.run_id, c.graph, c.status or "-", f"{c.ended_at:%Y-%m-%d}" if c.ended_at else "-",
                      str(c.records), "yes" if c.kept is None else f"kept: {c.kept}")
    console.print(table if plan else "No runs in the audit store.")


def _forget_checkpoints(url: str, run_ids: list[str]) -> None:
    """Delete the purged runs' LangGraph threads (their state holds the same content)."""
    from chainproof.checkpoints.saver import is_postgres_url

    if not run_ids or (not is_postgres_url(url) and not Path(url).expanduser().is_file()):
        return
    from chainproof.checkpoints.saver import forget_thread, open_checkpointer

    with open_checkpointer(url) as saver:
        for run_id in run_ids:
            forget_thread(saver, run_id)


@app.command()
def purge(
    before: Annotated[Optional[str], typer.Option(help="Only runs that ended before this date (YYYY-MM-DD, UTC); "
                                                  "not later than the retention allows.")] = None,
    run: Annotated[Optional[list[str]], typer.Option("--run", help="Only this run (repeatable); refused when it is "
                                                     "not purgeable.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be purged; delete nothing.")] = False,
) -> None:
    """Delete the records of completed and failed runs older than the store's retention (admin),
    keeping each record's Merkle leaf and a tombstone per run, so `verify` and `verify --against`
    still hold; paused, running and younger runs are never purged."""
    from chainproof.checkpoints.retention import plan_purge, purge_run

    when = _before(before)

    def plan_of(store: Any) -> tuple[Any, list[Any]]:
        current = _stored(store)
        if current is None:
            raise InputError("retention: not set for this store, so nothing is purged; an admin sets it first: "
                             "chainproof retention set '6 months' (at least 6 months)")
        return current.retention, plan_purge(store, current.retention, now=_now(), before=when, run_ids=run)

    if dry_run:
        with cli.read_store() as (_, reader):
            _, plan = plan_of(reader)
        _print_plan(plan)
        doomed = [c for c in plan if c.kept is None]
        console.print(f"dry run: {len(doomed)} runs ({sum(c.records for c in doomed)} records) would be purged; "
                      "nothing was deleted", highlight=False)
        return
    with admin_store("deletes records") as (store, actor):
        retention, plan = plan_of(store)
        purged = []
        for c in (c for c in plan if c.kept is None):
            try:
                stone = purge_run(store.engine, c, retention, actor=actor, before=when)
            except InputError as exc:  # resumed or appended to since it was planned: kept, the others go on
                console.print(f"kept {exc}", highlight=False, markup=False)
                continue
            purged.append(c.run_id)
            console.print(f"purged {c.run_id} ({stone['records']} records; leaves and tombstone kept, last chain hash "
                          f"{stone['head_hash'][:16]}…)", highlight=False)
        url = cli.store_settings().resolved_checkpoint_url
    _forget_checkpoints(url, purged)
    kept = len(plan) - len(purged)
    console.print(f"{len(purged)} run{'' if len(purged) == 1 else 's'} purged under the retention of {retention}, {kept} kept "
                  "(chainproof purge --dry-run lists why)", highlight=False)
