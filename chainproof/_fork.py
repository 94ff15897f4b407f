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
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

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
    newest = 0
    for snapshot in history:
        step = int(snapshot.values.get("step", 0) or 0) if snapshot.values else 0
        newest = max(newest, step)
        if not snapshot.values or step > at_step or APPROVAL_ROUND & set(snapshot.next):
            continue
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


def seed_thread(saver: Any, thread_id: str, record: dict[str, Any], step: int) -> str:
    """Write the fork's first checkpoint into ``saver`` under ``thread_id`` (every channel counts
    as new, so savers that store values per version, such as PostgresSaver, store them all).
    Returns the new checkpoint id."""
    checkpoint = forked_checkpoint(record, thread_id, step)
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    saver.put(config, checkpoint, {"source": "fork", "step": step, "parents": {}}, checkpoint["channel_versions"])
    return checkpoint["id"]
