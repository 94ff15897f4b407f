"""Replay a recorded run from its audit trail: the same graph, no model calls, no tool side effects.

The run's graph spec (``graphs.registry.get_spec(run.graph)``) is compiled again with

* a :class:`ReplayModels` provider that answers every model call with the recorded output, in
  record order, after checking that the prompt hashes to the recorded ``prompt_hash``
  (SHA-256 of ``agents.calls.wire_messages``, as ``graphs/recorder.py`` computes it) at the recorded effort;
* :class:`RecordedTool` objects that return the recorded tool results (or raise the recorded
  error) after checking the tool name and the SHA-256 of the arguments;
* LangGraph's ``InMemorySaver`` (with integer channel versions) and a scratch in-memory audit store, so nothing is written to the
  original run (or to any file: the report is rendered and hashed, not written);
* the recorded approval answers, given at each approval ``interrupt`` as ``Command(resume=…)``;
* a reasoning cache (:class:`RecordedCache`) that answers exactly where the recorded run had a
  cache hit (``model_calls.cache_hit``), with the recorded answer, so hits replay as hits;
* the pricing table and routing settings recorded when the run started (``run_started``), and
  the budget share each step's routing saw (its row's ``inputs.budget_share``), so efforts, reasons
  and costs come out the same; cost budgets are not enforced (a pause left no step record).

Afterwards every step's records (steps, model calls, tool calls, approvals, reviews) are compared
with the recorded ones, ignoring each table's ``__replay_ignore__`` columns (ids, timings,
timestamps). The report gives each step as ``identical``, ``divergent`` or ``not-reproducible``
(zero data retention kept only a stub of the model output) and the first divergence with what
differed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.types import Command

from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_hashing import record_content
from chainproof.checkpoints.audit_read import Record
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.checkpoints.saver import memory_saver
from chainproof.errors import NotRetained, RecordUndecodable, ReplayDivergence
from chainproof.graphs._engine.approvals import pauses_of
from chainproof.graphs._engine.compile import compile_for
from chainproof.graphs._engine.fork import seed_thread
from chainproof.graphs._engine.replay_ports import (
    RecordedBudgets,
    RecordedCache,
    RecordedCalls,
    RecordedTool,
    ReplayChatModel,
    ReplayModels,
    describe_prompt_difference,
    keys_differing,
)
from chainproof.graphs._engine.state import ChainState
from chainproof.graphs.registry import get_spec
from chainproof.graphs.review import Budget
from chainproof.types import ApprovalPause, Pause, StepBudgetPause, ValueRefusedPause
from chainproof.values import decode_value

StepStatus = Literal["identical", "divergent", "not-reproducible", "not-replayed"]
Outcome = Literal["identical", "divergent", "not-reproducible"]
@dataclass
class StepComparison:
    """One step of a replay. ``recorded`` / ``replayed``: the step's records as compared (each a
    dict with its ``table`` and compared columns); ``differences``: what differed, readable."""

    step_no: int
    node: str
    title: str
    status: StepStatus
    differences: list[str] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)
    replayed: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReplayReport:
    """Outcome of :func:`replay_run`. ``outcome`` is ``identical`` (every recorded step was
    reproduced exactly), ``divergent`` (``first_divergence`` names the step) or
    ``not-reproducible`` (zero data retention: ``steps`` marks which). ``duration_s``: wall time."""

    run_id: str
    graph: str
    outcome: Outcome
    steps: list[StepComparison]
    model_calls_served: int
    tool_calls_served: int
    duration_s: float
    stopped_by: str | None = None

    @property
    def first_divergence(self) -> StepComparison | None:
        return next((s for s in self.steps if s.status == "divergent"), None)

    def step(self, step_no: int) -> StepComparison:
        """The comparison of ``step_no``. Raises ``ValueError`` naming the steps there are."""
        for s in self.steps:
            if s.step_no == step_no:
                return s
        numbers = [s.step_no for s in self.steps]
        span = f"{min(numbers)}..{max(numbers)}" if numbers else "none"
        raise ValueError(f"step: run {self.run_id} has steps {span}, not {step_no}")


TRANSPORT_KEYS = ("model_attempts", "attempt", "side_effects")
"""Step-output keys about how a model was reached (HTTP attempts, waits, failovers) or how often
the step was executed (a repeated attempt after a crash, side-effect results reused), not about
the reasoning: a replay serves answers from the record and executes each step once."""


def _comparable(rec: Record) -> dict[str, Any]:
    content = record_content(rec)
    out = {k: v for k, v in content.items() if k not in rec.__replay_ignore__ or k == "table"}
    if isinstance(out.get("output"), dict):
        out["output"] = {k: v for k, v in out["output"].items() if k not in TRANSPORT_KEYS}
    return out


def _by_step(records: Iterable[Record]) -> dict[int, list[Record]]:
    """Records per step number. A step that failed (``status='error'``: a model endpoint down, the
    process interrupted) and ran again when the run was resumed keeps only its final execution:
    the failed attempt is history, not something a replay reproduces. So does a step a crash made
    run again after its records were written (a step row with ``output.attempt``)."""
    out: dict[int, list[Record]] = {}
    for rec in records:
        if rec.__tablename__ != "events":  # not an EventRecord
            out.setdefault(rec.step_no, []).append(rec)
    for step_no, recs in out.items():
        rows = [i for i, r in enumerate(recs) if r.__tablename__ == "steps"]
        repeated = [i for i in rows if (recs[i].output or {}).get("attempt")]
        if repeated:  # a crash repeated the step (chainproof.checkpoints.journal): its final execution counts
            last = repeated[-1]
            earlier = [i for i in rows if i < last and recs[i].node == recs[last].node]
            if earlier:
                recs = out[step_no] = recs[earlier[-1] + 1:]
        errors = [i for i, r in enumerate(recs) if r.__tablename__ == "steps" and r.status == "error"]
        if errors and any(r.__tablename__ == "steps" and r.status != "error" for r in recs[errors[-1] + 1:]):
            out[step_no] = recs[errors[-1] + 1:]
    return out


def _differences(recorded: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> list[str]:
    if [r["table"] for r in recorded] != [r["table"] for r in replayed]:
        return [f"records: recorded {[r['table'] for r in recorded]}, replayed {[r['table'] for r in replayed]}"]
    out = []
    for a, b in zip(recorded, replayed):
        for key in sorted(a.keys() | b.keys()):
            if a.get(key) != b.get(key):
                detail = (describe_prompt_difference(a[key], b[key]) if key == "messages"
                          else keys_differing(a.get(key), b.get(key)))
                out.append(f"{a['table']}.{key}: {detail}")
    return out


def _title(records: list[Record]) -> tuple[str, str]:
    step = next((r for r in records if r.__tablename__ == "steps"), None)
    return (step.node, step.title) if step else ("-", "-")


def compare_steps(recorded: list[Record], replayed: list[Record], stop: BaseException | None) -> list[StepComparison]:
    """Compare two traces step by step (see the module docstring); ``stop`` is what ended the
    replay early (a :class:`ReplayDivergence`, :class:`NotRetained` or another exception)."""
    rec_steps, rep_steps = _by_step(recorded), _by_step(replayed)
    out: list[StepComparison] = []
    settled: StepStatus | None = None  # once a step diverged or could not be reproduced
    for step_no in sorted(rec_steps.keys() | rep_steps.keys()):
        a, b = rec_steps.get(step_no, []), rep_steps.get(step_no, [])
        node, title = _title(a or b)
        ca, cb = [_comparable(r) for r in a], [_comparable(r) for r in b]
        if settled:
            status: StepStatus = "not-reproducible" if settled == "not-reproducible" else "not-replayed"
            out.append(StepComparison(step_no, node, title, status if a else "not-replayed", [], ca, cb))
            continue
        if isinstance(stop, ReplayDivergence) and stop.step_no == step_no:
            out.append(StepComparison(step_no, node, title, "divergent", stop.differences, ca, cb))
            settled = "divergent"
            continue
        if isinstance(stop, NotRetained) and stop.step_no == step_no:
            out.append(StepComparison(step_no, node, title, "not-reproducible",
                                      [f"{stop.what} was not retained (zero data retention)"], ca, cb))
            settled = "not-reproducible"
            continue
        if not a:
            diffs = ["the replay ran a step the recorded run does not have"]
        elif not b:
            diffs = ["the replay did not reach this step"]
            if stop is not None:
                diffs.append(f"the replay stopped: {type(stop).__name__}: {stop}")
        else:
            diffs = _differences(ca, cb)
        status = "divergent" if diffs else "identical"
        out.append(StepComparison(step_no, node, title, status, diffs, ca, cb))
        if diffs:
            settled = "divergent"
    return out


def replay_run(store: AuditStore, run_id: str) -> ReplayReport:
    """Replay ``run_id`` of ``store`` (see the module docstring). Reads the store only.

    Raises ``LookupError`` for an unknown run and ``KeyError`` when its graph is not registered.
    """
    from chainproof._wiring import context_from_record

    started = time.perf_counter()
    run = store.get_run(run_id)
    if run is None:
        raise LookupError(f"no run {run_id!r} in the audit store")
    recorded = store.records(run_id)
    for rec in (run, *recorded):
        if rec.undecodable:
            column, why = next(iter(rec.undecodable.items()))
            raise RecordUndecodable(f"run {run_id} cannot be replayed: {rec.where() if rec is not run else 'its header'} "
                                    f"was edited outside Chainproof ({column}: {why}); `chainproof verify {run_id}` "
                                    f"names it")
    spec = get_spec(run.graph)
    decisions = {r.request_id: r for r in recorded if r.__tablename__ == "approvals" and r.action != "requested"}
    extensions = deque(r for r in recorded if r.__tablename__ == "steps" and r.node == "review"
                       and "budget" in (r.output or {}) and r.output.get("decision") == "continue")

    scratch = AuditStore.scratch(store.redactor)
    try:
        wiring = context_from_record(spec, recorded, scratch)
        source, effort = wiring.source, wiring.started.get("effort_override")
        budget = Budget.model_validate(wiring.started.get("budget") or {"max_steps": spec.max_steps,
                                                                        "review_every": spec.review_every})
        goal = spec.goal(decode_value(run.inputs, where="inputs"))  # hooks read decoded inputs
        scratch.start_run(run_id, graph=run.graph, goal=goal, inputs=run.inputs, company=run.company,
                          department=run.department, started_by=run.started_by, zdr=run.zdr, effort_override=effort)
        saver = memory_saver()
        app = compile_for(spec, saver)
        config: dict[str, Any] = {"configurable": {"thread_id": run_id}, "recursion_limit": budget.recursion_limit()}
        payload: Any = spec.initial_state(store.redactor(ChainState(
            run_id=run_id, graph=run.graph, goal=goal, inputs=run.inputs, step=0, budget=budget.model_dump())))
        fork = wiring.started.get("fork")
        if fork:  # a fork starts from the recorded copy of its parent's checkpoint, not from the inputs
            seed_thread(saver, run_id, fork["checkpoint"], fork["langgraph_step"])
            payload = None
        stop: BaseException | None = None
        while True:
            try:
                app.invoke(payload, config, context=wiring.context)
            except Exception as exc:
                stop = exc
                break
            pauses = pauses_of(app.get_state(config))
            if not pauses:
                break
            resume, stop = _recorded_answers(pauses, decisions, extensions, scratch, run_id,
                                             {r.step_no for r in recorded if r.__tablename__ == "steps"})
            if stop is not None or not resume:
                break
            if any(isinstance(p, StepBudgetPause) for p in pauses):
                new_max = max(v["max_steps"] for v in resume.values() if "max_steps" in v)
                config["recursion_limit"] = budget.model_copy(update={"max_steps": new_max}).recursion_limit()
            payload = Command(resume=resume)
        steps = compare_steps(recorded, scratch.records(run_id), stop)
    finally:
        scratch.close()
    statuses = {s.status for s in steps}
    outcome: Outcome = ("divergent" if "divergent" in statuses
                        else "not-reproducible" if "not-reproducible" in statuses else "identical")
    return ReplayReport(run_id, run.graph, outcome, steps, source.model_calls_served, source.tool_calls_served,
                        round(time.perf_counter() - started, 4),
                        stopped_by=f"{type(stop).__name__}: {stop}" if stop is not None else None)


def _recorded_answers(pauses: list[Pause], decisions: dict[str, Record], extensions: deque, scratch: AuditStore,
                      run_id: str, recorded_steps: set[int]) -> tuple[dict[str, Any], BaseException | None]:
    """The resume map for the replay's open pauses, from the record: a step-budget stop gets the
    recorded extension; an approval request gets its recorded decision, which is first written
    to the scratch store (the approve node accepts only recorded decisions, as in a live run); a
    stop after a refused tool result is answered when the recorded run went on past it
    (``recorded_steps`` holds the recorded step numbers). A cost-budget pause cannot occur
    (replay's guards never pause)."""
    resume: dict[str, Any] = {}
    for pause in pauses:
        if isinstance(pause, ValueRefusedPause):
            if pause.step_no not in recorded_steps:
                return {}, None  # the run was still stopped there when recorded
            resume[pause.interrupt_id] = {}
            continue
        if isinstance(pause, StepBudgetPause):
            if not extensions:
                return {}, None  # the run was still stopped at its budget when recorded
            out = extensions.popleft().output
            resume[pause.interrupt_id] = {"max_steps": out["budget"]["max_steps"], "by": out.get("by")}
            continue
        if not isinstance(pause, ApprovalPause):
            return {}, ReplayDivergence(0, [f"a {pause.kind} pause the recorded run could not have had"])
        decision = decisions.get(pause.request_id)
        if decision is None:
            if resume or decisions:
                return {}, ReplayDivergence(pause.step_no, [
                    f"approval request {pause.request_id} has no recorded decision "
                    f"(recorded: {sorted(decisions)})"])
            return {}, None  # the run was still waiting for approval when recorded
        scratch.append_decision(run_id, ApprovalRecord(
            step_no=decision.step_no, request_id=decision.request_id, action=decision.action,
            approver=decision.approver, comment=decision.comment, proposed_hash=decision.proposed_hash,
            payload=decision.payload))
        resume[pause.interrupt_id] = decision.payload
    return resume, None


__all__ = ["NotRetained", "RecordedBudgets", "RecordedCache", "RecordedCalls", "RecordedTool", "ReplayChatModel", "ReplayDivergence", "ReplayModels",
           "ReplayReport", "StepComparison", "compare_steps", "replay_run"]
