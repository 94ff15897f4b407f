"""The checkpointed state of a chain, and where a chain stands: the remaining plan, progress and
findings, kept bounded in state.

The plan is not copied into the checkpointed state: state holds a ``cursor`` into the spec's plan
(regenerated from the inputs on demand and cached per spec instance) or, after a review replanned,
the revised remaining plan (bounded by the review schema). Findings without ``keep_data`` and the
rolling summary are windows of fixed size. So a checkpoint's size does not grow with the chain's
length.
"""

from __future__ import annotations

import json
import operator
import weakref
from collections.abc import Mapping
from typing import Annotated, Any, TypedDict

from langgraph.types import Send

from chainproof.graphs.spec import ChainSpec, Finding, PlanStep
from chainproof.values import decode_value

RECENT_FINDINGS = 3  # findings without keep_data stay in state only while among the latest three (the review reads three)
RECENT_DONE = 5  # ids of the latest completed plan steps kept for prompts
SUMMARY_LINES = 12  # rolling summary length (lines)
PLANS_PER_SPEC = 64  # plans cached per spec instance (one per distinct inputs)


def merge_branches(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer of the parallel branches' channels: each branch writes ``{step_id: ...}`` (writes
    of one super-step merge, whatever order the threads finished in); ``None`` empties it."""
    if right is None:
        return {}
    return {**(left or {}), **right}


class ChainState(TypedDict, total=False):
    """The checkpointed state (plain JSON types only, so checkpoints round-trip exactly)."""

    run_id: str
    graph: str
    goal: str
    inputs: dict[str, Any]
    budget: dict[str, Any]
    plan_revision: list[dict[str, Any]] | None
    cursor: int
    done_count: int
    recent_done: list[str]
    last_review_at: int
    termination: dict[str, Any] | None
    step: int
    findings: dict[str, dict[str, Any]]
    summary: list[str]
    pending: dict[str, Any] | None
    tools_used: list[str]
    decision: dict[str, Any] | None
    requests: list[dict[str, Any]] | None
    approvals: Annotated[list[dict[str, Any]], operator.add]
    approval: dict[str, Any] | None
    round: int
    replan: bool
    report_path: str | None
    cache: bool
    agent: dict[str, Any] | None
    iterations: int
    review_due: bool
    branch_pending: Annotated[dict[str, Any], merge_branches]
    branch_findings: Annotated[dict[str, Any], merge_branches]
    branched: str | None
    review_note: str | None
    debate_args: Annotated[dict[str, Any], merge_branches]
    debate_task: dict[str, Any] | None


class ApprovalTask(TypedDict):
    """The input of one ``approve`` task (the ``Send`` payload)."""

    run_id: str
    round: int
    request: dict[str, Any]


_PLANS: weakref.WeakKeyDictionary[ChainSpec, dict[str, tuple[PlanStep, ...]]] = weakref.WeakKeyDictionary()


def spec_plan(spec: ChainSpec, inputs: dict[str, Any]) -> tuple[PlanStep, ...]:
    """``spec.plan(inputs)`` of this spec instance, generated once per instance and inputs (plans
    are pure functions of the inputs). Keyed by the instance, not its class, so a spec configured
    by a registered factory plans with its configuration."""
    plans = _PLANS.setdefault(spec, {})
    key = json.dumps(inputs, sort_keys=True)
    plan = plans.get(key)
    if plan is None:
        if len(plans) >= PLANS_PER_SPEC:
            plans.clear()
        plan = plans[key] = tuple(spec.plan(decode_value(json.loads(key), where="inputs")))  # decoded inputs
    return plan


def current_plan(spec: ChainSpec, state: Mapping[str, Any]) -> tuple[PlanStep, ...]:
    """The plan in force: the revised plan after a replan, else the spec's plan."""
    revised = state.get("plan_revision")
    if revised is not None:
        return tuple(PlanStep.model_validate(p) for p in revised)
    return spec_plan(spec, state["inputs"])


def remaining(spec: ChainSpec, state: Mapping[str, Any]) -> tuple[PlanStep, ...]:
    """The plan steps still to run, next first."""
    return current_plan(spec, state)[state.get("cursor", 0):]


def used_steps(state: Mapping[str, Any]) -> int:
    """What the step budget (``Budget.max_steps``) counts: plan steps done plus agent iterations
    run (each iteration is one super-step, like an ``act`` or ``observe``)."""
    return state.get("done_count", 0) + state.get("iterations", 0)


def parallel_group(spec: ChainSpec, state: Mapping[str, Any], rest: tuple[PlanStep, ...] | None = None
                   ) -> tuple[PlanStep, ...]:
    """The next plan steps that run concurrently: the longest run of steps from the cursor that
    each declare ``depends_on`` and need none of the others, cut to what the step budget has left
    (``Budget.max_steps``); empty when fewer than two."""
    rest = remaining(spec, state) if rest is None else rest
    group: list[PlanStep] = []
    for step in rest:
        if (step.kind in ("agent", "debate") or step.depends_on is None or set(step.depends_on) & {g.id for g in group}
                or (step.when is not None and group)):  # a conditioned step's condition runs first
            break
        group.append(step)
    group = group[:max(0, state["budget"]["max_steps"] - used_steps(state))] if "budget" in state else group
    return tuple(group) if len(group) >= 2 else ()


def next_node(spec: ChainSpec, state: Mapping[str, Any], rest: tuple[PlanStep, ...] | None = None
              ) -> str | list[Send]:
    """The node that runs the next plan step (``agent`` for an agent step, else ``act``), the
    ``Send`` tasks of a parallel group (:func:`parallel_group`) or of a debate's first round
    (:func:`debate_sends`), ``condition`` first when the step
    carries ``when`` and its condition has not been evaluated, or ``decide`` when none is left
    (``rest``: ``remaining(spec, state)`` when the caller has it)."""
    rest = remaining(spec, state) if rest is None else rest
    if not rest:
        return "decide"
    if rest[0].when is not None and state.get("branched") != rest[0].id:
        return "condition"
    if rest[0].kind == "debate":
        return debate_sends(state, rest[0], 1)
    group = parallel_group(spec, state, rest)
    if group:
        return branch_sends(state, "branch_act", [(i, i, None) for i in range(len(group))])
    return "agent" if rest[0].kind == "agent" else "act"


def debate_sends(state: Mapping[str, Any], step: PlanStep, round_no: int) -> list[Send]:
    """One ``Send("argue", task)`` per position of the debate ``step`` for round ``round_no``: the
    i-th position's argument is recorded as super-step ``step + 1 + i`` (numbers fixed in position
    order, not by timing); the task carries the arguments so far (``debate_args``)."""
    base = {k: v for k, v in state.items() if k not in ("approvals", "branch_pending", "branch_findings", "agent")}
    positions = step.debate.positions if step.debate is not None else []
    return [Send("argue", {**base, "step": state.get("step", 0) + i,
                           "debate_task": {"position": i, "round": round_no}}) for i in range(len(positions))]


BRANCH_OMITS = ("approvals", "branch_pending", "branch_findings", "agent")
"""State keys a parallel branch's task does not carry (it runs one tool or reason step)."""


def branch_sends(state: Mapping[str, Any], node: str, work: list[tuple[int, int, Any]]) -> list[Send]:
    """One ``Send(node, task)`` per ``(position in the group, super-step offset, pending result)``:
    the task is the state as that plan step alone would see it (``cursor`` at the step, ``step``
    one before its reserved super-step number, ``pending`` its act's result, for ``branch_observe``)."""
    base = {k: v for k, v in state.items() if k not in BRANCH_OMITS}
    cursor, step = state.get("cursor", 0), state.get("step", 0)
    return [Send(node, {**base, "cursor": cursor + i, "step": step + offset, "pending": pending})
            for i, offset, pending in work]


def progress_text(spec: ChainSpec, state: Mapping[str, Any], show_next: int = 3) -> str:
    """One line of progress for prompts: counts plus the latest and next step ids (bounded)."""
    rest = remaining(spec, state)
    latest = ", ".join(state.get("recent_done", [])) or "none"
    upcoming = ", ".join(p.id for p in rest[:show_next]) or "none"
    return (f"Plan steps done: {state.get('done_count', 0)} (latest: {latest}). "
            f"Remaining: {len(rest)} (next: {upcoming}).")


def add_finding(state: Mapping[str, Any], finding: Finding, keep: bool) -> dict[str, Any]:
    """State update recording ``finding``: kept findings stay, others only while recent; the
    rolling summary gets one line."""
    findings = dict(state.get("findings", {}))
    record = finding.model_dump(mode="json")
    record["keep"] = keep
    findings.pop(finding.step_id, None)  # re-insert so dict order is recency order
    findings[finding.step_id] = record
    transient = [k for k, f in findings.items() if not f.get("keep")]
    for key in transient[:-RECENT_FINDINGS]:
        del findings[key]
    line = f"{finding.title}: {finding.summary}".replace("\n", " ")
    summary = [*state.get("summary", []), line[:400]][-SUMMARY_LINES:]
    return {"findings": findings, "summary": summary}


def advance(state: Mapping[str, Any], step_id: str) -> dict[str, Any]:
    """State update after a plan step completed (a condition's ``branched`` mark is cleared)."""
    return {
        "cursor": state.get("cursor", 0) + 1,
        "done_count": state.get("done_count", 0) + 1,
        "recent_done": [*state.get("recent_done", []), step_id][-RECENT_DONE:],
        **({"branched": None} if state.get("branched") else {}),
    }


def kept_findings(state: Mapping[str, Any]) -> set[str]:
    """Ids of findings whose data is in the state (what later steps may take as arguments)."""
    return {k for k, f in state.get("findings", {}).items() if f.get("data") is not None}
