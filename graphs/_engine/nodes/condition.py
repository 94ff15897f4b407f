"""``condition``: the super-step before a plan step that carries ``when``: evaluate the typed
condition on the earlier findings (``graphs/branching.py``), let the spec override the choice
(``ChainSpec.choose_branch``), record the :class:`~chainproof.graphs.branching.BranchOutcome` as the
step row's output, and run the step (``branched``) or skip it (the cursor moves past it)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from chainproof.errors import PlanError
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.state import ChainState, next_node, remaining
from chainproof.graphs.branching import BranchOutcome, evaluate
from chainproof.graphs.spec import PlanStep
from chainproof.graphs.view import ChainView


def _skip_until(rest: tuple[PlanStep, ...], skip_to: str | None) -> list[str]:
    """The ids skipped when the first step of ``rest`` does not run (up to ``skip_to``, exclusive)."""
    if skip_to is None:
        return [rest[0].id]
    later = [s.id for s in rest[1:]]
    if skip_to not in later:
        raise PlanError(f"choose_branch: skip_to {skip_to!r} is not a later plan step of {rest[0].id!r}; "
                        f"the later ones are {later}")
    return [s.id for s in rest[:1 + later.index(skip_to)]]


def condition(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Decide whether the next plan step runs (see the module docstring)."""
    ctx = runtime.context
    rest = remaining(ctx.spec, state)
    step = rest[0]
    when = step.when
    if when is None:  # next_node routes only conditioned steps here
        raise PlanError(f"plan step {step.id!r} has no condition")
    with ctx.recorder(state, "condition", "branch", f"Branch before {step.title}") as rec:
        rec.inputs = {"plan_step": step.id, "condition": when.model_dump(mode="json")}
        holds, read, reason = evaluate(when, state.get("findings", {}), f"plan step {step.id!r}")
        outcome = BranchOutcome(plan_step=step.id, condition=when.model_dump(mode="json"), read=read, taken=holds,
                                reason=reason, skipped=[] if holds else [step.id])
        choice = ctx.spec.choose_branch(ChainView(state), step, outcome)
        if choice is not None:
            outcome = outcome.model_copy(update={
                "taken": choice.taken, "by": "spec", "reason": f"{choice.reason} (the condition said: {reason})",
                "skipped": [] if choice.taken else _skip_until(rest, choice.skip_to)})
        rec.title = f"Branch: {'run' if outcome.taken else 'skip'} {step.title}"
        rec.output = outcome.model_dump(mode="json")
    if outcome.taken:
        return {"step": rec.step_no, "branched": step.id}
    return {"step": rec.step_no, "branched": None, "cursor": state.get("cursor", 0) + len(outcome.skipped)}


def after_condition(state: ChainState, runtime: Runtime[ChainContext]) -> str | list[Send]:
    return next_node(runtime.context.spec, state)


__all__ = ["after_condition", "condition"]
