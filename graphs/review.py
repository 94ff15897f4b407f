"""Goal reviews and step budgets: keeping long chains on course.

Every ``review_every`` plan steps the reviewer model re-reads the original goal, the remaining
plan, the progress summary and the latest findings, and returns a typed :class:`ReviewDecision`:
``continue``; ``replan`` with the revised remaining plan; or ``terminate`` with the reason. When a
run reaches ``max_steps`` plan steps with work left, the review is a *budget review* decided by
the run's :class:`Budget` policy instead: ``pause`` (LangGraph ``interrupt()``; the run resumes
later with a larger budget, losing nothing), ``extend`` (automatically, a bounded number of
times) or ``terminate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_serializer, model_validator

from chainproof.agents.structured import Clip
from chainproof.graphs.spec import ChainSpec, PlanStep

MAX_STEPS = 1_000_000
"""The largest step budget: far beyond any chain, and well inside the 64-bit integers the
checkpointer and the audit store hold (LangGraph's recursion limit is derived from it)."""


class Budget(BaseModel):
    """A run's step budget. ``max_steps`` counts plan steps (one ``act`` + one ``observe`` each)
    plus agent iterations (one ``agent`` super-step each; ``graphs/_engine/state.used_steps``);
    ``review_every`` is N for the goal review (0 = never); ``on_budget`` is what reaching the budget
    does; ``extend_by`` and ``max_extensions`` bound automatic extensions. ``max_cost_usd`` is the
    run's cost budget in USD (None: none; see :mod:`chainproof.graphs.budgets`)."""

    max_steps: int = Field(default=100, ge=1, le=MAX_STEPS)
    review_every: int = Field(default=5, ge=0)
    on_budget: Literal["pause", "extend", "terminate"] = "pause"
    extend_by: int = Field(default=10, ge=1)
    max_extensions: int = Field(default=3, ge=0)
    extensions: int = Field(default=0, ge=0)
    max_cost_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_serializer(mode="wrap")
    def _without_unset_cost(self, handler: Any) -> dict[str, Any]:
        # a run without a cost budget dumps exactly as before the field existed (its plan step row,
        # and so replays of runs recorded earlier, stay identical)
        data = handler(self)
        if data.get("max_cost_usd") is None:
            data.pop("max_cost_usd", None)
        return data

    def recursion_limit(self) -> int:
        """LangGraph ``recursion_limit`` (super-steps per invocation) that our own budget always
        reaches first: 3 super-steps per plan step (its ``condition``, ``act`` and ``observe``;
        automatic extensions included), one per review,
        plus plan, decide, approve, report and slack. (N super-steps need a limit of N + 1: LangGraph counts from 0.)"""
        steps = self.max_steps
        if self.on_budget == "extend":
            steps += (self.max_extensions - self.extensions) * self.extend_by
        reviews = steps // self.review_every + 1 if self.review_every else 1
        return 3 * steps + reviews + self.max_extensions + 16


class RevisedStep(BaseModel):
    """One step of a revised plan: the ``id`` of a step of the original plan (run as defined
    there), or a new id with ``instruction`` for a reasoning step."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    instruction: str | None = Field(default=None, max_length=400)


class ReviewDecision(BaseModel):
    """The reviewer's answer."""

    decision: Literal["continue", "replan", "terminate"]
    reason: Annotated[str, Clip(300, "why, in one or two sentences", 3)]
    drift: Annotated[str, Clip(300, "has the work drifted from the goal? one sentence", 2)]
    summary: Annotated[str, Clip(600, "refreshed summary of progress so far, two or three sentences", 0)] = ""
    revised_plan: list[RevisedStep] | None = Field(default=None, max_length=20)

    @model_validator(mode="after")
    def _plan_when_replanning(self) -> ReviewDecision:
        if self.decision == "replan" and not self.revised_plan:
            raise ValueError("revised_plan: a replan needs the revised remaining plan (a list of steps)")
        return self


def resolve_revised_plan(spec: ChainSpec, original: tuple[PlanStep, ...], revised: list[RevisedStep],
                         kept: set[str] | frozenset[str] = frozenset()) -> list[PlanStep]:
    """Turn the reviewer's revised plan into plan steps: known ids reuse the original step (its tool
    and arguments: a reviewer cannot invent tool arguments); new ids become reasoning steps.

    ``kept``: ids of findings whose data is already in the state. A step that takes another's data
    (``args_from_findings``), or its summary (``args_from_summaries``), must find it there or run after it in the revised plan.

    Raises ``ValueError`` naming the offending id (unknown id without instruction, duplicates, a
    dependency the revised plan drops or puts after its user)."""
    by_id = {p.id: p for p in original}
    steps: list[PlanStep] = []
    seen: set[str] = set()
    for item in revised:
        if item.id in seen:
            raise ValueError(f"revised_plan: step id {item.id!r} appears twice")
        seen.add(item.id)
        if item.id in by_id:
            step = by_id[item.id]
            steps.append(step.model_copy(update={"instruction": item.instruction}) if item.instruction and step.kind == "reason" else step)
        elif item.instruction:
            steps.append(PlanStep(id=item.id, title=item.id.replace("_", " ").capitalize(), kind="reason",
                                  instruction=item.instruction, effort=spec.review_effort))
        else:
            raise ValueError(
                f"revised_plan: {item.id!r} is not a step of the plan {sorted(by_id)}; a new step needs an instruction"
            )
    available = set(kept)
    for step in steps:
        summaries = [s for v in step.args_from_summaries.values() for s in ([v] if isinstance(v, str) else v)]
        missing = sorted({s for s in [*step.args_from_findings.values(), *summaries] if s not in available})
        if missing:
            raise ValueError(f"revised_plan: step {step.id!r} needs the results of {missing}; keep those steps "
                             f"before it (or drop {step.id!r})")
        if step.keep_data:
            available.add(step.id)
    return steps


def review_prompt(spec: ChainSpec, state: Mapping[str, Any], rest: tuple[PlanStep, ...], original_ids: list[str]) -> str:
    """The reviewer's task: goal and summary come from the step prompt; this adds the plan and the
    latest findings."""
    shown = "; ".join(f"{p.id} ({p.title})" for p in rest[:10]) + (f"; … {len(rest) - 10} more" if len(rest) > 10 else "")
    latest = [f for f in state.get("findings", {}).values()][-3:]
    findings = "\n".join(f"- {f['title']}: {f['summary'][:300]}" for f in latest) or "- none yet"
    return (
        "Review the run against its ORIGINAL goal. Decide 'continue' if the remaining plan still serves the goal, "
        "'replan' (give revised_plan: the full remaining plan as step ids, reusing ids of the original plan "
        f"{original_ids} or new ids with an instruction) if it should change, or 'terminate' if the goal cannot "
        "or need not be pursued further. Assess drift in one sentence and refresh the progress summary.\n\n"
        f"Remaining plan: {shown or 'none'}\nLatest findings:\n{findings}"
    )
