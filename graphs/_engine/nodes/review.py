"""``review``: the goal review every ``review_every`` plan steps (continue / replan / terminate,
asked of the model; see ``graphs/review.py``) or, at the step budget, the budget review (pause
with ``interrupt()``, extend or terminate by the budget's ``on_budget`` policy)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt

from chainproof.agents.structured import MAX_ATTEMPTS, invoke_structured
from chainproof.checkpoints.audit_schema import ReviewRecord
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.nodes.agent import agent_review
from chainproof.graphs._engine.prompts import step_messages
from chainproof.graphs._engine.state import ChainState, current_plan, kept_findings, next_node, remaining, used_steps
from chainproof.graphs.review import Budget, ReviewDecision, resolve_revised_plan, review_prompt
from chainproof.graphs.routing import Task


def review(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """The goal review (or the budget review when the step budget is reached with steps left)."""
    ctx = runtime.context
    spec = ctx.spec
    budget = Budget.model_validate(state["budget"])
    done = state.get("done_count", 0)
    cleared = {"review_due": False} if state.get("review_due") else {}
    if used_steps(state) >= budget.max_steps and remaining(spec, state):
        return {**budget_review(ctx, state, budget, used_steps(state)), **cleared}
    if state.get("agent"):  # an agent step in progress: continue, re-scope or end it
        return {**agent_review(ctx, state), **cleared}
    original = current_plan(spec, {**state, "plan_revision": None})
    rest = remaining(spec, state)
    task = review_prompt(spec, state, rest, [p.id for p in original])
    route = ctx.route(state, Task(task, structured=True), spec.review_effort, "the graph's review node")
    effort = route.effort
    title = f"Goal review after {done} plan steps"
    with ctx.recorder(state, "review", "review", title, effort=effort, effort_reason=route.reason) as rec:
        rec.inputs = {"done_count": done, "remaining": [p.id for p in rest[:20]], "remaining_count": len(rest),
                      "summary": state.get("summary", []), **route.recorded()}

        def check(decision: ReviewDecision) -> None:
            if decision.revised_plan:
                resolve_revised_plan(spec, original, decision.revised_plan, kept_findings(state))

        messages = step_messages(spec, state, task)
        model = ctx.models.json_chat(effort, ReviewDecision)
        raised = ctx.guard(state, "review", effort, model, messages, MAX_ATTEMPTS)
        outcome = invoke_structured(model, messages, ReviewDecision, effort=effort, validate=check,
                                    **ctx.access.structured(ctx.uses_cache(state, "review")))
        rec.model_calls(outcome.calls)
        decision = outcome.value or ReviewDecision(
            decision="continue", drift="unknown: the reviewer gave no valid review",
            reason=f"default after {len(outcome.errors)} invalid reviewer answers: continue the plan as it is",
        )
        rec.output = {**decision.model_dump(mode="json"), "fallback": outcome.value is None, "errors": outcome.errors}
        usage = rec.usage
        rec.extra_records.append(ReviewRecord(  # what it saw in full is the step row's inputs
            step_no=rec.step_no, decision=decision.decision, reason=decision.reason, drift_assessment=decision.drift,
            inputs={"done_count": done, "remaining_count": len(rest)}, effort=effort, input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens, reasoning_tokens=usage.reasoning_tokens))
    update: dict[str, Any] = {"last_review_at": done, "step": rec.step_no, **raised, **cleared}
    if decision.summary:  # the review's own words, kept apart: the findings' lines are never rewritten
        update["review_note"] = f"after {done} plan steps: {decision.summary}"
    if decision.decision == "replan":
        revised = resolve_revised_plan(spec, original, decision.revised_plan or [], kept_findings(state))
        update.update(plan_revision=[p.model_dump(mode="json") for p in revised], cursor=0)
    elif decision.decision == "terminate":
        update["termination"] = {"reason": decision.reason, "at_step": done, "by": "review"}
    return update


def budget_review(ctx: ChainContext, state: ChainState, budget: Budget, done: int) -> dict[str, Any]:
    """At the step budget: pause for a larger one (interrupt value: a
    :class:`chainproof.types.StepBudgetPause` as JSON), extend it, or terminate."""
    left = len(remaining(ctx.spec, state))
    policy, extended_by = budget.on_budget, None
    if policy == "extend" and budget.extensions >= budget.max_extensions:
        policy = "terminate"
    if policy == "pause":
        # Pauses durably; on resume this node runs again from the top and interrupt() returns
        # the answer ({"max_steps": N, "by": NAME}). Nothing above has side effects.
        answer = interrupt({"kind": "budget", "run_id": state["run_id"], "done_count": done,
                            "max_steps": budget.max_steps, "remaining": left,
                            "question": f"Step budget of {budget.max_steps} plan steps reached with {left} left. "
                                        "Resume with a larger budget?"})
        new_max = int(answer["max_steps"])
        if new_max <= done:
            raise ValueError(f"max_steps: the new budget {new_max} must exceed the {done} plan steps done")
        budget = budget.model_copy(update={"max_steps": new_max})
        extended_by = answer.get("by")
    elif policy == "extend":
        budget = budget.model_copy(update={"max_steps": budget.max_steps + budget.extend_by,
                                           "extensions": budget.extensions + 1})
    with ctx.recorder(state, "review", "review", f"Budget review: {budget.max_steps} steps reached"
                      if policy == "terminate" else f"Budget review: extended to {budget.max_steps} plan steps") as rec:
        decision = "terminate" if policy == "terminate" else "continue"
        reason = ("budget reached" + (f"; extended to {budget.max_steps} plan steps" if decision == "continue" else
                                      f"; {left} plan steps not run (policy: terminate)"))
        rec.inputs = {"done_count": done, "remaining_count": left, "policy": budget.on_budget}
        rec.output = {"decision": decision, "reason": reason, "budget": budget.model_dump(), "by": extended_by}
        rec.extra_records.append(ReviewRecord(
            step_no=rec.step_no, decision=decision, reason=reason, drift_assessment=None, inputs=rec.inputs,
            effort=None))
    update: dict[str, Any] = {"budget": budget.model_dump(), "last_review_at": done, "step": rec.step_no}
    if decision == "terminate":
        update["termination"] = {"reason": reason, "at_step": done, "by": "budget"}
    return update


def after_review(state: ChainState, runtime: Runtime[ChainContext]) -> str | list[Send]:
    if state.get("termination"):  # the best answer available, with why the run stopped
        return "decide"
    if state.get("pending"):  # the review ended an agent step: record its outcome
        return "observe"
    return next_node(runtime.context.spec, state)
