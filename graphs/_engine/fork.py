"""Time travel: a new run (a new LangGraph thread) started from a past checkpoint of another.

LangGraph forks *within* a thread (``update_state(..., as_node="__copy__")``, or resuming from an
older ``checkpoint_id``); a fork there shares the thread, so the parent's record and its approval
bindings would be mixed with the fork's. Chainproof forks *across* threads instead, the way
``BaseCheckpointSaver.copy_thread`` describes it, but for one checkpoint:

1. pick the parent's checkpoint: the latest one whose completed steps are all at or before
   ``at_step`` and that is not waiting inside an approval round (its next task is not ``approve``
   or ``settle``: those requests belong to the parent, so the fork goes back to before ``decide``
   and asks again, with request ids of its own);
2. copy that checkpoint into the new thread with the same channel versions (so LangGraph schedules
   exactly the tasks the parent would have run next) and the new run id in the state; the
   parent's pending task writes are not copied, so every step after the fork point runs again;
3. record the copied checkpoint (:func:`checkpoint_record`, plain JSON) in the fork's
   ``run_started`` event, so the fork's chain says what it started from and replay can seed an
   in-memory thread with the same checkpoint (:func:`seed_thread`) without the parent's
   checkpointer.

The parent's records and checkpoints are only read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_read import Record
from chainproof.errors import InputError, UserError

CHECKPOINT_KEYS = ("channel_values", "channel_versions", "versions_seen")
APPROVAL_ROUND = frozenset({"approve", "settle"})


def choose_checkpoint(history: Iterable[Any], at_step: int, run_id: str) -> Any:
    """The ``StateSnapshot`` to fork from: the newest of ``history`` (LangGraph's
    ``get_state_history``, newest first) whose ``values["step"]`` is at most ``at_step`` and whose
    next tasks are not inside an approval round. Raises :class:`InputError` naming ``--at`` when
    there is none."""
    if at_step < 0:
        raise InputError(f"--at: expected a step number of run {run_id} (0 or more), got {at_step}")
    history = list(history)
    newest = max((int(s.values.get("step", 0) or 0) for s in history if s.values), default=0)
    for snapshot in history:
        step = int(snapshot.values.get("step", 0) or 0) if snapshot.values else 0
        if not snapshot.values or step > at_step or APPROVAL_ROUND & set(snapshot.next):
            continue
        if not snapshot.next:
            raise InputError(f"--at: step {at_step} is at or after the end of run {run_id} (its steps are 1 to "
                             f"{newest}); a fork from there would run nothing")
        return snapshot
    raise InputError(f"--at: run {run_id} has no checkpoint at or before step {at_step} "
                     f"(its checkpoints cover steps 0 to {newest})")


def checkpoint_record(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of a checkpoint that a fork starts from (channel values, channel versions,
    versions seen), as stored in the fork's ``run_started`` event. Raises :class:`UserError` when
    the checkpoint holds a value that is not plain JSON (it could not be recorded and replayed)."""
    record = {key: checkpoint[key] for key in CHECKPOINT_KEYS}
    if checkpoint.get("pending_sends"):
        raise UserError("fork: the checkpoint has pending Send tasks; choose another step with --at")
    try:
        return json.loads(json.dumps(record))
    except (TypeError, ValueError) as exc:
        raise UserError(f"fork: the checkpoint holds a value that is not JSON ({exc}); choose another step "
                        "with --at") from None


def forked_checkpoint(record: dict[str, Any], run_id: str, step: int) -> dict[str, Any]:
    """A LangGraph ``Checkpoint`` dict for the fork's thread built from :func:`checkpoint_record`:
    a new id, now as its timestamp, the same channel versions, and ``run_id`` in the state."""
    from langgraph.checkpoint.base.id import uuid6

    values = dict(record["channel_values"])
    values["run_id"] = run_id
    return {
        "v": 4, "id": str(uuid6(clock_seq=step)), "ts": datetime.now(UTC).isoformat(),
        "channel_values": values,
        "channel_versions": dict(record["channel_versions"]),
        "versions_seen": {k: dict(v) for k, v in record["versions_seen"].items()},
        "pending_sends": [],
        "updated_channels": None,
    }


def seed_thread(saver: Any, thread_id: str, record: dict[str, Any], langgraph_step: int) -> str:
    """Write the fork's first checkpoint into ``saver`` under ``thread_id`` (every channel counts
    as new, so savers that store values per version, such as PostgresSaver, store them all).
    ``langgraph_step``: the parent checkpoint's ``metadata["step"]`` (LangGraph counts its
    recursion limit from it). Returns the new checkpoint id."""
    checkpoint = forked_checkpoint(record, thread_id, langgraph_step)
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    saver.put(config, checkpoint, {"source": "fork", "step": langgraph_step, "parents": {}},
              checkpoint["channel_versions"])
    return checkpoint["id"]


def start_fork(audit: AuditStore, app: Any, parent: Record, at_step: int, *, started_by: str | None = None,
               run_id: str | None = None) -> str:
    """Record a fork of ``parent`` at ``at_step`` in ``audit`` and seed its thread in ``app``'s
    checkpointer (``app``: the compiled graph on the open checkpointer); returns the fork's run id.
    The fork's header carries ``parent_run_id`` and ``forked_at_step`` (the step of the chosen
    checkpoint); its ``run_started`` event carries, under ``fork``, the requested step, the parent's
    checkpoint id, the hash of the parent's record it continues from (``parent_record_hash``: the
    step row of ``forked_at_step``, or the parent's ``run_started`` event for a fork before any
    step) and the checkpoint itself, plus the parent's replay settings (pricing, routing, cache,
    effort override). Raises :class:`UserError` for a zero-data-retention parent (its model text
    must not be copied) or a parent without checkpoints, :class:`InputError` for a bad ``at_step``."""
    if parent.zdr:
        raise UserError(f"run {parent.run_id} is a zero-data-retention run: its state is not copied into a fork")
    history = list(app.get_state_history({"configurable": {"thread_id": parent.run_id}}))
    if not history:
        raise UserError(f"run {parent.run_id} has no checkpoints to fork from (the checkpointer holds none of it)")
    snapshot = choose_checkpoint(history, at_step, parent.run_id)
    saved = app.checkpointer.get_tuple(snapshot.config)
    record = checkpoint_record(saved.checkpoint)
    step = int(snapshot.values.get("step", 0) or 0)
    recorded = audit.records(parent.run_id)
    anchor = next((r for r in reversed(recorded) if r.__tablename__ == "steps" and r.step_no == step), None) or next(
        r for r in recorded if r.__tablename__ == "events" and r.kind == "run_started")
    started = next(r for r in recorded if r.__tablename__ == "events" and r.kind == "run_started").detail or {}
    new_id = run_id or uuid.uuid4().hex[:12]
    audit.start_run(
        new_id, graph=parent.graph, goal=parent.goal, inputs=parent.inputs, company=parent.company,
        department=parent.department, started_by=started_by, zdr=False,
        effort_override=started.get("effort_override"), budget=snapshot.values.get("budget"),
        parent_run_id=parent.run_id, forked_at_step=step,
        # the fork keeps the approval policy its parent was bound to: forking never loosens who may decide
        settings={**{k: started[k] for k in ("pricing", "routing", "cache", "approval_policy", "approval_policy_version",
                                               "approver_roles") if k in started}, "fork": {
            "parent_run_id": parent.run_id, "requested_at": at_step, "at_step": step,
            "parent_checkpoint_id": saved.config["configurable"]["checkpoint_id"],
            "parent_record_hash": anchor.record_hash, "langgraph_step": saved.metadata.get("step", 0),
            "checkpoint": record}})
    seed_thread(app.checkpointer, new_id, record, saved.metadata.get("step", 0))
    return new_id
