"""Worker liveness and the recovery of a dead worker's runs (issue 14, "Recovery").

Every ``chainproof worker`` (:func:`chainproof.workers.serve`) runs a :class:`Heartbeat` thread:
each ``workers.heartbeat_s`` seconds it records that its executor is alive (``worker_heartbeats``,
``last_seen`` on the database's clock), then looks for executors silent longer than
``workers.recovery_after_s``. It claims each one once (a conditional ``UPDATE`` that only one
worker wins) and asks DBOS to recover that executor's pending workflows
(``DBOS._recover_pending_workflows([executor_id])``, what DBOS's admin endpoint
``/dbos-workflow-recovery`` calls). DBOS puts each back on its queue
(``SystemDatabase.reenqueue_for_recovery``: only rows still ``PENDING`` under the dead executor id,
so a repeated recovery is a no-op), and any free worker dequeues it. Without this, DBOS recovers an
executor's workflows only when a process with the same executor id starts again.

What runs again: the recovered workflow calls its step ``chainproof.advance`` again (DBOS steps
are at-least-once: the dead worker never recorded that step's output). ``advance`` takes the run's
lock (the dead worker's advisory lock went with its connection) and continues the run from its
last LangGraph checkpoint, so the super-step the worker was in runs again: recorded as a repeated
attempt (``step_reexecuted``), with ``side_effects=True`` tool calls never run twice
(:mod:`chainproof.checkpoints.journal`).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from chainproof.checkpoints.audit_tables import worker_heartbeats as hb


class Heartbeat(threading.Thread):
    """Records ``executor_id`` alive every ``every_s`` seconds in the audit database behind
    ``engine`` (PostgreSQL) and recovers executors silent more than ``after_s`` seconds through
    ``recover(executor_ids)`` (DBOS's recovery). ``report`` gets ``{"recovered": executor_id,
    "workflows": n, "by": executor_id}`` per recovery. Stop it with :meth:`stop`."""

    def __init__(self, engine: Engine, executor_id: str, *, every_s: float, after_s: float,
                 recover: Callable[[list[str]], list[Any]],
                 report: Callable[[dict[str, Any]], None] | None = None):
        super().__init__(name="chainproof-heartbeat", daemon=True)
        self.engine, self.executor_id, self.every_s, self.after_s = engine, executor_id, every_s, after_s
        self.recover, self.report = recover, report
        self._stop_event = threading.Event()

    def beat(self) -> None:
        """Record this executor alive now (and not recovered: a restarted executor id is alive)."""
        row = {"executor_id": self.executor_id, "host": socket.gethostname()[:200], "pid": os.getpid(),
               "started_at": func.now(), "last_seen": func.now(), "recovered_at": None, "recovered_by": None}
        statement = pg_insert(hb).values(row)
        statement = statement.on_conflict_do_update(index_elements=[hb.c.executor_id], set_={
            "last_seen": func.now(), "host": row["host"], "pid": row["pid"], "recovered_at": None, "recovered_by": None})
        with self.engine.begin() as conn:
            conn.execute(statement)

    def sweep(self) -> list[str]:
        """Claim and recover every executor silent more than ``after_s`` seconds; their ids."""
        silent = and_(hb.c.recovered_at.is_(None), hb.c.executor_id != self.executor_id,
                      hb.c.last_seen < func.now() - timedelta(seconds=self.after_s))
        with self.engine.connect() as conn:
            dead = list(conn.scalars(select(hb.c.executor_id).where(silent)))
        claimed = []
        for executor_id in dead:
            with self.engine.begin() as conn:  # of several live workers, exactly one claims it
                won = conn.execute(update(hb).where(silent, hb.c.executor_id == executor_id)
                                   .values(recovered_at=func.now(), recovered_by=self.executor_id)).rowcount == 1
            if not won:
                continue
            handles = self.recover([executor_id])
            claimed.append(executor_id)
            if self.report is not None:
                self.report({"recovered": executor_id, "workflows": len(handles), "by": self.executor_id})
        return claimed

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.beat()
                self.sweep()
            except Exception as exc:  # a database hiccup must not end the worker's heartbeat
                if self.report is not None:
                    self.report({"heartbeat_error": f"{type(exc).__name__}: {exc}"})
            self._stop_event.wait(self.every_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=self.every_s + 5)


__all__ = ["Heartbeat"]
