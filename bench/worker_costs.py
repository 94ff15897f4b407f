"""Worker costs: database transactions, statements and rows per run and per step, and how long the
store-wide Merkle append lock is held.

One ``chainproof worker`` (:func:`chainproof.workers.serve`) runs in this process (a thread), on a
fresh database on the local PostgreSQL (``CHAINPROOF_TEST_PG_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``), with the scripted model answering after
``--latency-ms`` (200). ``--runs`` runs (20) of the ``fleet`` test graph with ``--steps`` tool steps
(20) are submitted from this process, then the worker starts; the figures cover submission and
processing, as ``bench/workers.py`` counts them.

* transactions: ``pg_stat_database`` ``xact_commit + xact_rollback`` of the database (every
  client's: this process is the only one);
* statements: counted in this process on psycopg's cursors (``Cursor.execute``, and each parameter
  set of ``executemany``; SQLAlchemy, LangGraph's checkpointer, DBOS and the run locks all go
  through them), by what they touch (``pg_stat_statements`` is not loaded on this server);
* rows written: ``pg_stat_user_tables`` inserts + updates + deletes, per table;
* the Merkle lock: from the moment ``pg_advisory_xact_lock('chainproof-merkle-log')`` is granted to
  the end of its transaction's commit (the hold; estimated from when each was sent and committed,
  :func:`lock_holds`), the wait for it, and the share of the wall time it was held (a share near 1
  means every worker queues on it).

Usage: ``nice python bench/worker_costs.py [--runs 20] [--steps 20] [--concurrency 10] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

SUPPORT = Path(__file__).resolve().parents[1] / "tests" / "support"
sys.path.insert(0, str(SUPPORT))

from chainproof.agents.models import StaticModels  # noqa: E402
from chainproof.app import Chainproof  # noqa: E402
from chainproof.settings import Settings  # noqa: E402
from testkit import fleet  # noqa: E402
from testkit.pg import fresh_database, pg_unreachable  # noqa: E402

_KINDS = (("chainproof-merkle-log", "merkle lock"), ("advisory", "run locks"), ("merkle_leaves", "merkle leaves"),
          ("dbos.", "dbos"), ("checkpoint", "checkpointer"), ("reasoning_cache", "reasoning cache"),
          ("worker_heartbeats", "heartbeats"))


def kind_of(sql: str) -> str:
    """What a statement touches (the first of ``_KINDS`` it names), else audit insert/read/other."""
    low = sql.lower()
    for needle, kind in _KINDS:
        if needle in low:
            return kind
    head = low.lstrip().split(None, 1)[0] if low.strip() else ""
    if head == ";":  # SQLAlchemy's pool_pre_ping on psycopg (DBOS's engines set it): one per checkout
        return "pool pre-pings"
    return {"insert": "audit inserts", "select": "audit reads"}.get(head, f"other ({head or 'empty'})")


def lock_holds(cycles: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """``(holds, waits)`` of the Merkle lock from ``(sent, committed)`` times of the transactions
    that took it, this process being the only one appending: the lock is exclusive, so ordered by
    commit, one is granted when it was sent or when the previous holder committed, whichever is
    later (the lock statement, the leaves and the commit go in one pipeline: the client never sees
    the grant itself). Holds include the commit's answer travelling back."""
    holds, waits, previous = [], [], float("-inf")
    for sent, committed in sorted(cycles, key=lambda c: c[1]):
        granted = max(sent, previous)
        holds.append(committed - granted)
        waits.append(granted - sent)
        previous = committed
    return holds, waits


class Counting:
    """Counts psycopg statements by kind and times the Merkle lock, while installed."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.cycles: list[tuple[float, float]] = []  # (lock statement sent, its transaction committed)
        self._granted: dict[int, float] = {}
        self._guard = threading.Lock()
        self._saved: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        counter = self
        execute, executemany, commit = psycopg.Cursor.execute, psycopg.Cursor.executemany, psycopg.Connection.commit

        def counted_execute(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            sql = query if isinstance(query, str) else str(getattr(query, "as_string", lambda _c: query)(cur.connection))
            kind = kind_of(sql)
            started = time.monotonic()
            out = execute(cur, query, *args, **kwargs)
            with counter._guard:
                counter.statements[kind] += 1
                if kind == "merkle lock":
                    counter._granted[id(cur.connection)] = started  # sent (granted later, in a pipeline)
            return out

        def counted_executemany(cur: Any, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
            params_seq = list(params_seq)
            with counter._guard:
                counter.statements[kind_of(query if isinstance(query, str) else str(query))] += len(params_seq)
            return executemany(cur, query, params_seq, *args, **kwargs)

        def counted_commit(conn: Any) -> Any:
            out = commit(conn)
            with counter._guard:
                counter.statements["commit"] += 1
                sent = counter._granted.pop(id(conn), None)
                if sent is not None:
                    counter.cycles.append((sent, time.monotonic()))
            return out

        for cls, name, fn in ((psycopg.Cursor, "execute", counted_execute),
                              (psycopg.Cursor, "executemany", counted_executemany),
                              (psycopg.Connection, "commit", counted_commit)):
            self._saved.append((cls, name, getattr(cls, name)))
            setattr(cls, name, fn)

    def uninstall(self) -> None:
        for cls, name, fn in reversed(self._saved):
            setattr(cls, name, fn)
        self._saved.clear()


def _db(url: str) -> tuple[int, dict[str, int]]:
    """Transactions of the database so far, and rows written per table (``schema.table``)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        xacts = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                             "WHERE datname = current_database()").fetchone()
        rows = conn.execute("SELECT schemaname || '.' || relname, n_tup_ins + n_tup_upd + n_tup_del "
                            "FROM pg_stat_user_tables").fetchall()
    return int(xacts[0] if xacts else 0), {name: int(n) for name, n in rows}


def measure(runs: int, steps: int, latency_s: float, concurrency: int, home: Path) -> dict[str, Any]:
    from chainproof.workers import serve

    os.environ["CHAINPROOF_TEST_EFFECTS"] = str(home / "effects.log")
    with fresh_database() as url:
        settings = Settings(home=home, database_url=url, checkpoint_url=url,
                            workers={"polling_interval_s": 0.1})  # as the tests' and bench/workers.py's workers
        counting = Counting()
        with Chainproof(settings, models=StaticModels(fleet.fleet_model(latency_s))) as app:
            app.submit("fleet", {"tag": "warm", "n": 1})  # creates the schemas; not counted
            stop = threading.Event()
            worker = threading.Thread(target=serve, args=(app,), kwargs={"concurrency": concurrency, "stop": stop},
                                      daemon=True)
            worker.start()
            _until_done(url, 1)
            time.sleep(1.0)  # cumulative statistics are flushed about once a second
            xacts0, rows0 = _db(url)
            counting.install()
            t0 = time.monotonic()
            try:
                ids = [app.submit("fleet", {"tag": f"c{i}", "n": steps}).run_id for i in range(runs)]
                _until_done(url, runs + 1)
                wall = time.monotonic() - t0
            finally:
                counting.uninstall()
                stop.set()
                worker.join(timeout=120)
            time.sleep(1.0)
            xacts1, rows1 = _db(url)
            states = Counter(app.audit.run_status(r) for r in ids)
    if states.get("completed") != runs:
        raise RuntimeError(f"only {states.get('completed', 0)} of {runs} runs completed: {dict(states)}")
    written = {name: n - rows0.get(name, 0) for name, n in rows1.items() if n - rows0.get(name, 0)}
    holds, waits = lock_holds(counting.cycles)
    holds.sort()
    return {"runs": runs, "steps": steps, "concurrency": concurrency, "wall_s": round(wall, 2),
            "transactions": xacts1 - xacts0, "statements": dict(counting.statements.most_common()),
            "rows_written": dict(sorted(written.items(), key=lambda kv: -kv[1])),
            "merkle_lock": {"holds": len(holds), "hold_ms_mean": round(statistics.fmean(holds) * 1000, 2) if holds else 0,
                            "hold_ms_p95": round(holds[int(0.95 * (len(holds) - 1))] * 1000, 2) if holds else 0,
                            "wait_ms_mean": round(statistics.fmean(waits) * 1000, 2) if waits else 0,
                            "held_share_of_wall": round(sum(holds) / wall, 3)},
            "load_1m": round(os.getloadavg()[0], 2)}


def _until_done(url: str, n: int, timeout: float = 1800) -> None:
    """Wait until ``n`` runs have finished (a ``run_completed`` or ``run_failed`` event)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(DISTINCT run_id) FROM events WHERE kind IN ('run_completed', 'run_failed')").fetchone()
            if row and row[0] >= n:
                return
            time.sleep(0.5)
    raise RuntimeError(f"{n} runs did not finish within {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20, help="tool steps per run")
    parser.add_argument("--concurrency", type=int, default=10, help="runs the worker advances at once")
    parser.add_argument("--latency-ms", type=float, default=200, help="the scripted model's answer time")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    reason = pg_unreachable()
    if reason:
        print(f"skipped: {reason}", file=sys.stderr)
        return 2
    import tempfile

    fleet.register_all()
    with tempfile.TemporaryDirectory(prefix="bench-worker-costs-") as tmp:
        result = measure(args.runs, args.steps, args.latency_ms / 1000, args.concurrency, Path(tmp))
    per_run, per_step = result["runs"], result["runs"] * result["steps"]
    total_statements = sum(result["statements"].values())
    result["per_run"] = {"transactions": round(result["transactions"] / per_run, 1),
                         "statements": round(total_statements / per_run, 1),
                         "rows_written": round(sum(result["rows_written"].values()) / per_run, 1)}
    result["per_step"] = {k: round(v * per_run / per_step, 2) for k, v in result["per_run"].items()}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.runs} runs of {args.steps} steps on one worker (concurrency {args.concurrency}), model latency "
          f"{args.latency_ms:.0f} ms, wall {result['wall_s']} s, load {result['load_1m']}")
    print(f"{'':28}{'per run':>10}{'per step':>10}")
    for key in ("transactions", "statements", "rows_written"):
        print(f"{key:28}{result['per_run'][key]:>10}{result['per_step'][key]:>10}")
    print("statements by kind:")
    for kind, n in result["statements"].items():
        print(f"  {kind:26}{n / per_run:>10.1f}{n / per_step:>10.2f}")
    print("rows written by table:")
    for table, n in result["rows_written"].items():
        print(f"  {table:26}{n / per_run:>10.1f}{n / per_step:>10.2f}")
    m = result["merkle_lock"]
    print(f"Merkle append lock: {m['holds']} holds, mean {m['hold_ms_mean']} ms (p95 {m['hold_ms_p95']} ms) from grant "
          f"to commit, mean wait {m['wait_ms_mean']} ms, held {m['held_share_of_wall']:.1%} of the wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
