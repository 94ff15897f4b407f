"""``chainproof worker``: this process advances runs taken from DBOS queues in PostgreSQL
(``chainproof.workers``). ``chainproof submit`` lives with ``run`` (``_run``)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any, Optional

import typer

import chainproof.cli as cli
from chainproof.cli import app, console


@app.command()
def worker(
    concurrency: Annotated[Optional[int], typer.Option(min=1, help="Runs this worker advances at once (default: workers.concurrency, 10).")] = None,
    queues: Annotated[Optional[list[str]], typer.Option("--queues", help="Queues to take runs from (repeatable or comma-separated; default: workers.queue).")] = None,
    executor_id: Annotated[Optional[str], typer.Option("--executor-id", help="This worker's name in DBOS (default: HOST-PID).")] = None,
) -> None:
    """Advance runs taken from DBOS queues in PostgreSQL until stopped (Ctrl-C or SIGTERM): each run
    until it pauses for a person or ends. Needs CHAINPROOF_DATABASE_URL and CHAINPROOF_CHECKPOINT_URL
    on PostgreSQL and the workers extra; start one on every machine that should run chains."""
    from chainproof.workers import require_postgres, serve

    require_postgres(cli.settings(), "worker")  # before the engine opens (and creates) a SQLite store
    names = [q.strip() for item in queues or [] for q in item.split(",") if q.strip()] or None
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
