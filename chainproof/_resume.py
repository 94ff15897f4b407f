"""What continues a run that is not waiting for a person: the payload LangGraph resumes the
thread with, and the ``run_resumed`` event's detail. Shared by ``Chainproof.resume`` (a person
at the command line) and the workers (``chainproof.workers``), which call it with the run's lock
held, so the snapshot it reads is the one that gets resumed."""

from __future__ import annotations

from typing import Any

from langgraph.types import Command

from chainproof import _wiring
from chainproof.checkpoints.audit import AuditStore
from chainproof.errors import InputError, RunNotResumable
from chainproof.graphs._engine import approvals
from chainproof.graphs._engine.state import ChainState
from chainproof.graphs.approval import ApprovalAnswer
from chainproof.graphs.budgets import check_resume
from chainproof.graphs.registry import get_spec
from chainproof.settings import Settings
from chainproof.types import CostBudgetPause, StepBudgetPause, ValueRefusedPause


def continuation(settings: Settings, audit: AuditStore, run_id: str, snapshot: Any, *, max_steps: int | None = None,
                 budget_usd: float | None = None, by: str | None = None) -> tuple[Any, dict[str, Any] | None]:
    """``(payload, detail)`` to continue ``run_id`` from ``snapshot`` (its thread's state now):

    * stopped at its step budget: ``max_steps`` (plan steps) must exceed the steps done;
    * paused at a cost budget: ``budget_usd`` (USD) must fit the paused step's projected cost;
    * stopped after a refused tool result: go on with the refusal as the step's finding;
    * paused for approval with decisions recorded at this checkpoint but never applied: apply them;
    * otherwise (failed, killed, or queued and never started): ``None``, from the last checkpoint. The detail (the ``run_resumed`` event's) is None when a decision just recorded its own.

    Raises ``InputError`` naming ``max_steps`` / ``budget_usd``, and ``RunNotResumable`` when the
    run waits for an approval nobody gave yet, has completed, or has no checkpoint.

    First a pause whose ``run_paused`` event a kill prevented is recorded from the checkpoint
    (:func:`~chainproof.graphs._engine.approvals.repair_pause`), so the run reads as paused."""
    approvals.repair_pause(audit, run_id, snapshot)
    pauses = approvals.pauses_of(snapshot)
    cost = next((p for p in pauses if isinstance(p, CostBudgetPause)), None)
    stop = next((p for p in pauses if isinstance(p, StepBudgetPause)), None)
    refused = next((p for p in pauses if isinstance(p, ValueRefusedPause)), None)
    pending = approvals.approvals_of(pauses)
    if budget_usd is not None and cost is None:
        raise InputError(f"budget_usd: run {run_id} is not paused at a cost budget (status: {audit.run_status(run_id)})")
    if cost is not None:
        check_resume(_wiring.cost_guard(settings, audit), snapshot.values, cost.value, budget_usd)
        return (Command(resume={cost.interrupt_id: {"budget_usd": budget_usd, "by": by}}),
                {"budget_usd": budget_usd, "by": by, "scope": cost.scope})
    if refused is not None:  # go on with the refused tool result as the step's finding
        return (Command(resume={refused.interrupt_id: {"by": by}}),
                {"refused": refused.error, "step_no": refused.step_no, "by": by})
    if stop is not None:
        if max_steps is None or max_steps <= stop.done_count:
            raise InputError(f"max_steps: run {run_id} stopped at its budget after {stop.done_count} plan steps; "
                             f"resume with a larger budget, e.g. --max-steps {stop.done_count + stop.remaining}")
        return Command(resume={stop.interrupt_id: {"max_steps": max_steps, "by": by}}), {"max_steps": max_steps, "by": by}
    if pending:
        resume = recorded_answers(audit, pending, snapshot.config["configurable"]["checkpoint_id"], settings=settings, run_id=run_id)
        if not resume:
            raise RunNotResumable(f"run {run_id} is paused for approval and has no recorded decision to apply; "
                                  f"answer it with: chainproof approve {run_id} --as NAME (or reject / edit); "
                                  f"pending: {approvals.listing(pending)}")
        if audit.run_status(run_id) == "resumed":  # the decision's own run_resumed is the latest (decide(wait=False))
            return Command(resume=resume), None
        return Command(resume=resume), {"reapplied": len(resume)}
    if audit.run_status(run_id) == "completed":
        raise RunNotResumable(f"run {run_id} is completed; there is nothing to resume")
    if not snapshot.next and not snapshot.values:
        if audit.last_step_no(run_id):  # steps ran, so their checkpoints must be somewhere else
            raise RunNotResumable(f"run {run_id} has no checkpoint in {settings.resolved_checkpoint_url} "
                                  "(CHAINPROOF_CHECKPOINT_URL points elsewhere than where the run was checkpointed)")
        # started but stopped before its first checkpoint (a killed process): start it from its header
        return initial_state_of(audit, run_id), {"after": audit.run_status(run_id), "from": "run header"}
    return None, {"after": audit.run_status(run_id)}  # continue from the last checkpoint


def initial_state(audit: AuditStore, *, run_id: str, graph: str, goal: str, inputs: dict[str, Any],
                  budget: dict[str, Any], cache: bool) -> dict[str, Any]:
    """The first state of a run (the graph's ``initial_state`` of a redacted ``ChainState`` at step
    0): what ``Chainproof.start`` runs, and what a run killed before its first checkpoint restarts
    from (:func:`initial_state_of`)."""
    return get_spec(graph).initial_state(audit.redactor(ChainState(
        run_id=run_id, graph=graph, goal=goal, inputs=inputs, step=0, budget=budget, cache=cache)))


def initial_state_of(audit: AuditStore, run_id: str) -> dict[str, Any]:
    """:func:`initial_state` rebuilt from the run's header and its ``run_started`` event (which
    holds the budget and the settings it started with); raises ``RunNotResumable`` without them."""
    run, started = audit.get_run(run_id), audit.last_event(run_id, "run_started")
    if run is None or started is None:
        raise RunNotResumable(f"run {run_id} has no checkpoint and no recorded start to begin again from")
    detail = started.detail or {}
    if detail.get("recovered") == "orphan":
        raise RunNotResumable(f"run {run_id} was never started (an orphan) and is recorded as failed; "
                              f"start it again: chainproof run {run.graph} ...")
    return initial_state(audit, run_id=run_id, graph=run.graph, goal=run.goal, inputs=dict(run.inputs),
                         budget=dict(detail.get("budget") or {}), cache=bool(detail.get("cache", False)))


def recorded_answers(audit: AuditStore, pending: list[Any], checkpoint_id: str, *, settings: Settings,
                     run_id: str) -> dict[str, Any]:
    """``{interrupt_id: answer}`` of the ``pending`` approval requests that have a decision
    recorded against ``checkpoint_id`` (the checkpoint the run is paused at) and not yet applied.
    Each decision is checked again first (``chainproof/_decision_check.py``: its hash and chain
    link, the run's policy, its signature); ``RecordTampered`` naming the row when one fails."""
    from chainproof._decision_check import check_recorded

    run = audit.get_run(run_id)
    graph = run.graph if run is not None else ""
    resume = {}
    for p in pending:
        record = audit.decision_for(p.request_id)
        if record is not None and isinstance(record.payload, dict) and record.payload.get("checkpoint_id") == checkpoint_id:
            check_recorded(audit, settings, run_id, graph, record,
                           _wiring.recorded_policy({}, settings, graph, get_spec(graph)))
            resume[p.interrupt_id] = ApprovalAnswer.model_validate(record.payload).model_dump(mode="json")
    return resume


def mark_orphan(audit: AuditStore, run: Any) -> None:
    """Mark an orphan run (a ``runs`` header without ``run_started``: its process stopped between
    the two, which older versions wrote in separate transactions) as abandoned: record
    ``run_started`` (``recovered: "orphan"``, with the header's hash, so ``verify`` covers it) and
    ``run_failed``, then raise ``RunNotResumable`` saying to start it again (it never ran a step).
    The caller holds the run's lock."""
    from chainproof.checkpoints.audit_hashing import run_header_hash
    from chainproof.checkpoints.audit_schema import EventRecord

    if audit.last_event(run.run_id, "run_started") is None:
        error = "orphaned: the process stopped between recording the run and starting it; no step ran"
        audit.append(run.run_id, EventRecord(kind="run_started", detail={
                         "graph": run.graph, "recovered": "orphan", "run_header_hash": run_header_hash(run)}),
                     EventRecord(kind="run_failed", detail={"error": error}))
    raise RunNotResumable(f"run {run.run_id} was never started (an orphan); it is now recorded as failed; "
                          f"start it again: chainproof run {run.graph} ...")
