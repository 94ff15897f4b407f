"""``chainproof worker``: this process advances runs taken from DBOS queues in PostgreSQL
(``chainproof.workers``); ``chainproof schedule add/list/remove`` (``chainproof._schedules``);
``chainproof alerts``. ``chainproof submit`` lives with ``run`` (``_run``)."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

import chainproof.cli as cli
from chainproof.cli import app, console
from chainproof.errors import InputError


@app.command()
def worker(
    concurrency: Annotated[Optional[int], typer.Option(min=1, help="Runs this worker advances at once (default: workers.concurrency, 10).")] = None,
    queues: Annotated[Optional[list[str]], typer.Option("--queues", help="Queues to take runs from (repeatable or comma-separated; default: workers.queue).")] = None,
    executor_id: Annotated[Optional[str], typer.Option("--executor-id", help="This worker's name in DBOS (default: HOST-PID).")] = None,
) -> None:
    """Advance runs taken from DBOS queues in PostgreSQL until stopped (Ctrl-C or SIGTERM): each run
    until it pauses for a person or ends. Needs CHAINPROOF_DATABASE_URL and CHAINPROOF_CHECKPOINT_URL
    on PostgreSQL and the workers extra; start one on every machine that should run chains."""
    from chainproof.workers import check_queue, require_postgres, serve

    require_postgres(cli.settings(), "worker")  # before the engine opens (and creates) a SQLite store
    if concurrency is not None:  # the engine's pools are sized from workers.concurrency (workers.pool_size)
        os.environ["CHAINPROOF_WORKERS__CONCURRENCY"] = str(concurrency)
    names = None if queues is None else [q.strip() for item in queues for q in item.split(",")]
    if names is not None and not all(names):
        raise InputError(f"queues (--queues): expected queue names separated by commas, got {','.join(queues or [])!r}")
    for q in names or []:
        check_queue(cli.settings(), q, "queues (--queues)")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def report(out: dict[str, Any]) -> None:
        if "recovered" in out:  # a silent worker's workflows were put back on their queues
            console.print(f"recovered {out['workflows']} workflow(s) of the silent worker {out['recovered']}",
                          highlight=False, markup=False)
            return
        if "heartbeat_error" in out:
            console.print(f"heartbeat: {out['heartbeat_error']}", highlight=False, markup=False)
            return
        extra = f" ({out['error']})" if out.get("error") else ""
        console.print(f"run {out['run_id']}: {out['status']}{extra}", highlight=False, markup=False)

    with cli._engine() as engine:
        shown = ", ".join(names or [engine.settings.workers.queue])
        console.print(f"worker listening on {shown} (concurrency {concurrency or engine.settings.workers.concurrency}); "
                      "Ctrl-C stops it", highlight=False)
        serve(engine, queues=names, concurrency=concurrency, stop=stop, executor_id=executor_id, report=report)


schedule_app = typer.Typer(no_args_is_help=True, help="Runs on a schedule (DBOS schedules in PostgreSQL, fired by the workers).")
app.add_typer(schedule_app, name="schedule")


@schedule_app.command("add", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def schedule_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The schedule's name (letters, digits, - _ .).")],
    cron: Annotated[str, typer.Option("--cron", help='When: "MIN HOUR DOM MON DOW" (UTC), or 6 fields with seconds first.')],
    graph: Annotated[str, typer.Option("--graph", help="The graph to submit (e.g. portfolio-scan).")],
    input_: Annotated[Optional[list[str]], typer.Option("--input", help="KEY=VALUE (VALUE as JSON if it parses); repeatable.")] = None,
    inputs_file: Annotated[Optional[Path], typer.Option("--inputs-file", help="A JSON or TOML file with the inputs.")] = None,
    queue: Annotated[Optional[str], typer.Option(help="The DBOS queue (default: workers.queue).")] = None,
    timezone: Annotated[Optional[str], typer.Option(help="IANA time zone of the cron (default: UTC).")] = None,
) -> None:
    """Submit a run of GRAPH at every cron time; stored in PostgreSQL, so every worker sees it and
    one of them fires each time. The inputs are checked now. Example:
    chainproof schedule add daily-scan --cron "0 6 * * *" --graph portfolio-scan --input portfolio=book.csv --input as_of=2018-02-08"""
    from chainproof import _schedules
    from chainproof.cli._run import collect_inputs, refuse_unknown
    from chainproof.graphs.registry import add_paths, get_spec
    from chainproof.workers import require_postgres

    cron = _schedules.check_cron(cron)  # a bad cron is refused before anything else
    require_postgres(cli.settings(), "schedule add")
    add_paths(cli.settings().graphs)
    model = getattr(get_spec(graph), "inputs_model", None)
    inputs = collect_inputs(input_ or [], list(ctx.args), inputs_file, model)
    refuse_unknown(graph, model, inputs)
    with cli._engine() as engine:
        _schedules.add(engine, name, cron, graph, inputs, queue=queue, timezone=timezone)
    console.print(f"schedule {name}: {graph} at {cron!r} ({timezone or 'UTC'}); workers fire it", highlight=False,
                  markup=False)


@schedule_app.command("list")
def schedule_list(as_json: Annotated[bool, typer.Option("--json", help="Print the schedules as JSON.")] = False) -> None:
    """The stored schedules: name, cron, graph, inputs, status and when each last fired."""
    from chainproof import _schedules
    from chainproof.workers import require_postgres

    require_postgres(cli.settings(), "schedule list")
    rows = _schedules.listing(cli.settings())
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    if not rows:
        console.print("no schedules (add one with: chainproof schedule add NAME --cron ... --graph ...)")
        return
    table = Table("name", "cron", "graph", "inputs", "queue", "status", "last fired")
    for r in rows:
        table.add_row(r["name"], r["cron"] + (f" {r['timezone']}" if r["timezone"] else ""), str(r["graph"]),
                      escape(json.dumps(r["inputs"])), str(r["queue"]), str(r["status"]), str(r["last_fired_at"] or "-"))
    console.print(table)


@schedule_app.command("remove")
def schedule_remove(name: Annotated[str, typer.Argument(help="The schedule to remove.")]) -> None:
    """Remove a schedule; runs it already submitted go on."""
    from chainproof import _schedules
    from chainproof.workers import require_postgres

    require_postgres(cli.settings(), "schedule remove")
    _schedules.remove(cli.settings(), name)
    console.print(f"schedule {name} removed", highlight=False, markup=False)


@app.command()
def alerts(
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many alerts, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print the alerts as JSON.")] = False,
) -> None:
    """Alerts raised by finished runs (e.g. portfolio-scan and position-risk on high risk), newest
    first, each with its run id (chainproof show RUN_ID)."""
    with cli.read_store(missing_is_empty=True) as (_, reader):
        rows = reader.alerts(limit)
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    if not rows:
        console.print("no alerts")
        return
    table = Table("at (UTC)", "level", "subject", "message", "graph", "run")
    for a in rows:
        table.add_row(str(a["at"])[:19], escape(str(a["level"])), escape(str(a["subject"])), escape(str(a["message"])),
                      str(a["graph"]), a["run_id"])
    console.print(table)
