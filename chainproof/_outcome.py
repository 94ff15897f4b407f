"""A run's stream and where it stands once it returns, recorded in the audit trail: failed or
interrupted (``run_failed``, with a note naming ``chainproof resume``), stopped after
a refused tool result (``run_failed``, raised), paused at a cost or step budget or for approval
(``run_paused`` with what a resume needs, e.g. the approval binding), or completed
(``run_completed``; a zero-data-retention run's checkpoints are deleted first). After a pause or
the completion is recorded, the audit log's tree head is signed and published
(:meth:`chainproof.checkpoints.audit.AuditStore.publish_head`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from chainproof import _killpoints
from chainproof._boundaries import refusal_error
from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_schema import EventRecord
from chainproof.checkpoints.saver import forget_thread
from chainproof.graphs._engine import approvals
from chainproof.types import (
    ApprovalPause,
    CostBudgetPause,
    ProgressEvent,
    RunResult,
    StepBudgetPause,
    ValueRefusedPause,
    parse_progress,
)


def stream_run(audit: AuditStore, app: Any, config: dict[str, Any], context: Any, run_id: str, payload: Any,
               on_progress: Callable[[ProgressEvent], None] | None) -> RunResult:
    """Run the thread ``config`` of ``app`` with ``payload`` (initial state, ``Command`` or None)
    until it pauses or ends (``durability="sync"``: each checkpoint is written before the next
    step starts), passing typed progress events to ``on_progress``; then :func:`record_outcome`.
    A failure or Ctrl-C is recorded as ``run_failed`` and re-raised with a note on how to resume.
    The caller holds the run's lock.

    Progress reaches ``on_progress`` through ``context.progress`` (set here for this run), called
    from the node that recorded the step, one event at a time (parallel approval tasks run on
    LangGraph's threads). Interrupts and results are read from the checkpoint afterwards."""
    context.progress = _sink(on_progress) if on_progress is not None else None
    try:
        app.invoke(payload, config, context=context, durability="sync")
    except KeyboardInterrupt as exc:
        audit.append(run_id, EventRecord(kind="run_failed", detail={"error": "interrupted by the user"}))
        exc.add_note(f"run {run_id} was interrupted; its last checkpoint is kept: resume it with "
                     f"`chainproof resume {run_id}`")
        raise
    except Exception as exc:
        audit.append(run_id, EventRecord(kind="run_failed", detail={"error": f"{type(exc).__name__}: {exc}"}))
        exc.add_note(f"run {run_id} failed; its checkpoint is kept: resume it with `chainproof resume {run_id}`")
        raise
    return record_outcome(audit, app, config, run_id)


def _sink(on_progress: Callable[[ProgressEvent], None]) -> Callable[[Mapping[str, Any]], None]:
    """A progress sink that types each event and passes it to ``on_progress``, one at a time."""
    lock = threading.Lock()

    def sink(event: Mapping[str, Any]) -> None:
        typed = parse_progress(event)
        with lock:
            on_progress(typed)

    return sink


def record_outcome(audit: AuditStore, app: Any, config: dict[str, Any], run_id: str) -> RunResult:
    """Record and return the outcome of the thread ``config`` of compiled graph ``app`` after a
    stream. Raises :class:`~chainproof.errors.UnsupportedValue` (a ``RunError``) when the run
    stopped after a refused tool result."""
    snapshot = app.get_state(config)
    state = dict(snapshot.values)
    pauses = approvals.pauses_of(snapshot)
    refused = next((p for p in pauses if isinstance(p, ValueRefusedPause)), None)
    if refused is not None:  # recorded as failed; resumable without running the tool again
        audit.append(run_id, EventRecord(kind="run_failed", detail={"error": refused.error,
                                                                         "refused": refused.value}))
        raise refusal_error(run_id, refused.value)
    cost = next((p for p in pauses if isinstance(p, CostBudgetPause)), None)
    if cost is not None:
        audit.append(run_id, EventRecord(kind="run_paused", detail={"cost_budget_stop": cost.value}))
        audit.publish_head()
        return RunResult(run_id, "paused", [cost], state=state)
    stop = next((p for p in pauses if isinstance(p, StepBudgetPause)), None)
    if stop is not None:
        audit.append(run_id, EventRecord(kind="run_paused", detail={"budget_stop": stop.value}))
        audit.publish_head()
        return RunResult(run_id, "paused", [stop], state=state)
    pending: list[ApprovalPause] = approvals.approvals_of(pauses)
    if pending:
        _killpoints.reach("pause.window")  # a kill here is repaired by approvals.repair_pause
        detail = approvals.pause_binding(pending, snapshot.config["configurable"])
        started = audit.last_event(run_id, "run_started")  # the policy the run bound to: its version and hash
        bound = (started.detail or {}).get("approval_policy_version") if started is not None else None
        if bound is not None:  # each request of this pause is decided under this policy and no other
            detail["approval_policy"] = bound
        audit.append(run_id, EventRecord(kind="run_paused", detail=detail))
        audit.publish_head()
        return RunResult(run_id, "paused", list(pending), state=state)
    run = audit.get_run(run_id)
    if run is not None and run.zdr:
        forget_thread(app.checkpointer, run_id)  # zero data retention: the state holds model text
    audit.append(run_id, EventRecord(kind="run_completed", detail={"report_path": state.get("report_path")}))
    audit.publish_head()
    return RunResult(run_id, "completed", report_path=state.get("report_path"), state=state)
