"""Approval binding: request ids, and the checks that bind a person's decision to the request
the run paused on (see :meth:`chainproof.app.Chainproof.decide` for why they run before anything
reaches LangGraph: langgraph#8836, langgraph#6663)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from chainproof._boundaries import INVALID_CALL, check_call_args
from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.graphs.approval import ApprovalAnswer, ApprovalRefused, tool_call_of
from chainproof.types import ApprovalPause, Pause, parse_pause

MIN_PREFIX = 6  # characters of a request id that name it (as ``show`` and the pause panel print it)


def request_id(run_id: str, step_no: int, tool_call_id: str | None = None) -> str:
    """The approval request id of the step ``step_no`` of ``run_id`` (and, for an agent's tool
    call, of its ``tool_call_id``): a UUID5 (hex), the same each time that step executes, so a
    replay resumes with the recorded answer."""
    name = f"chainproof:{run_id}:{step_no}" + (f":{tool_call_id}" if tool_call_id is not None else "")
    return uuid.uuid5(uuid.NAMESPACE_URL, name).hex


def pauses_of(snapshot: Any) -> list[Pause]:
    """The typed pauses of a LangGraph ``StateSnapshot`` (one per open interrupt, in order)."""
    return [parse_pause(i.value, i.id) for i in snapshot.interrupts]


def approvals_of(pauses: list[Pause]) -> list[ApprovalPause]:
    """The open approval requests among ``pauses`` (budget stops are interrupts too, not requests)."""
    return [p for p in pauses if isinstance(p, ApprovalPause)]


def listing(pending: list[ApprovalPause]) -> str:
    """``ID (question), ...`` of the open requests, or ``none``; ends every refusal message."""
    return ", ".join(f"{p.request_id} ({p.question})" for p in pending) or "none"


def resolve_request_id(pending: list[ApprovalPause], given: str) -> str:
    """A unique prefix (>= ``MIN_PREFIX`` characters) names the full id; otherwise ``given``."""
    if len(given) >= MIN_PREFIX:
        full = [p.request_id for p in pending if p.request_id.startswith(given)]
        if len(full) == 1:
            return full[0]
    return given


def target(audit: AuditStore, run_id: str, pending: list[ApprovalPause], given: str | None) -> ApprovalPause:
    """The pending request a decision names (``given``: an id or a unique prefix; None when
    exactly one is pending), or ``ApprovalRefused`` saying why not: none or several pending,
    already decided, of another run, or not pending."""
    shown = listing(pending)
    wanted = resolve_request_id(pending, given) if given is not None else None
    if wanted is None:
        if not pending:
            raise ApprovalRefused(f"run {run_id} has no pending approval request (status: {audit.run_status(run_id)})")
        if len(pending) > 1:
            raise ApprovalRefused(f"run {run_id} has {len(pending)} pending requests; name one with --request: {shown}")
        wanted = pending[0].request_id
    decided = audit.decision_for(wanted)
    match = [p for p in pending if p.request_id == wanted]
    if decided is not None:
        hint = f"; it is not yet applied to the run: `chainproof resume {run_id}`" if match else ""
        raise ApprovalRefused(
            f"request {wanted} was already decided: {decided.action} by {decided.approver} at "
            f"{decided.created_at:%Y-%m-%d %H:%M:%S} UTC{hint}; pending: {shown}")
    if match:
        return match[0]
    origin = audit.request_record(wanted)
    if origin is not None and origin.run_id != run_id:
        raise ApprovalRefused(f"request {wanted} belongs to run {origin.run_id}, not {run_id}; pending: {shown}")
    raise ApprovalRefused(f"request {wanted} is not pending in run {run_id}; pending: {shown}")


def check_binding(audit: AuditStore, run_id: str, request: ApprovalPause, checkpoint_id: str,
                  pending: list[ApprovalPause]) -> None:
    """Refuse (``ApprovalRefused``) unless the run paused on ``request`` at ``checkpoint_id`` (the
    thread's current checkpoint) with its interrupt id and proposal hash, as the ``run_paused``
    event recorded, and the proposal still matches that hash."""
    paused = audit.last_event(run_id, "run_paused")
    detail: dict[str, Any] = paused.detail if paused is not None else {}
    bound = next((r for r in detail.get("requests", [])
                  if r.get("request_id") == request.request_id), None)
    where = f"request {request.request_id} of run {run_id}"
    if bound is None or detail.get("checkpoint_id") != checkpoint_id or bound.get("interrupt_id") != request.interrupt_id:
        at = detail.get("checkpoint_id") if bound else "no recorded pause"
        raise ApprovalRefused(
            f"{where} was raised at checkpoint {at}, but the run is now at checkpoint {checkpoint_id} "
            "(the thread was forked or its state updated since the pause); nothing was decided; "
            f"pending: {listing(pending)}")
    if sha256_hex(request.proposed) != request.proposed_hash or bound.get("proposed_hash") != request.proposed_hash:
        raise ApprovalRefused(f"{where}: the proposal no longer matches the hash it was requested with; "
                              f"nothing was decided; pending: {listing(pending)}")


def pause_binding(pending: list[ApprovalPause], where: dict[str, Any]) -> dict[str, Any]:
    """The ``run_paused`` event detail that binds the open requests to the checkpoint ``where``
    (a thread config's ``configurable``)."""
    return {"checkpoint_id": where["checkpoint_id"], "checkpoint_ns": where.get("checkpoint_ns", ""),
            "requests": [{"request_id": p.request_id, "interrupt_id": p.interrupt_id,
                          "proposed_hash": p.proposed_hash} for p in pending]}


def repair_pause(audit: AuditStore, run_id: str, snapshot: Any) -> bool:
    """Close the pause window: when ``snapshot`` (the thread's state now) waits on approval
    requests but no ``run_paused`` event binds them to its checkpoint (the process was killed after
    the pause checkpoint and before the event), record that event now from the checkpoint's
    pending interrupts (``detail.repaired`` true). Returns whether it did. The caller holds the
    run's lock. Approve, reject, edit, resume and ``pending`` then see a paused run. Only a run
    whose latest lifecycle event is ``run_started``/``run_resumed`` (it was advancing) is repaired:
    a run recorded as paused whose thread is now at another checkpoint was forked or updated, and
    decisions on it stay refused (:func:`check_binding`)."""
    if not pause_unrecorded(audit, run_id, snapshot):
        return False
    from chainproof.checkpoints.audit_schema import EventRecord

    where = snapshot.config["configurable"]
    pending = approvals_of(pauses_of(snapshot))
    audit.append(run_id, EventRecord(kind="run_paused", detail={**pause_binding(pending, where), "repaired": True}))
    return True


def pause_unrecorded(audit: AuditStore, run_id: str, snapshot: Any) -> bool:
    """Whether ``snapshot`` waits on approval requests that no ``run_paused`` event binds while the
    run's latest lifecycle event says it was advancing (see :func:`repair_pause`). Read-only."""
    pending = approvals_of(pauses_of(snapshot))
    if not pending or audit.run_status(run_id) not in ("started", "resumed"):
        return False  # only a run that was advancing when its process ended (after a recorded pause,
        # a new checkpoint means the thread was forked or updated: check_binding refuses that)
    paused = audit.last_event(run_id, "run_paused")
    return paused is None or (paused.detail or {}).get("checkpoint_id") != snapshot.config["configurable"].get(
        "checkpoint_id")


def check_tool_edit(tool_defs: Mapping[str, Any], request: ApprovalPause, answer: ApprovalAnswer,
                    pending: list[ApprovalPause]) -> None:
    """Refuse (``ApprovalRefused``, nothing decided) an edit of a tool call whose arguments do not
    fit the tool's schema: each bad field and what was expected, and every unknown argument."""
    call = tool_call_of(request.subject)
    if call is None or answer.action != "edit":
        return
    name = call[0]
    error = check_call_args(tool_defs.get(name), name, answer.edited)
    if error:
        raise ApprovalRefused(f"edited: {error[len(INVALID_CALL):]}; nothing was decided; pending: {listing(pending)}")
