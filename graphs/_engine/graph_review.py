"""The goal review of an instrumented graph (``chainproof.instrument(builder, review_every=N)``):
every N node runs — the super-steps of a graph whose nodes run one at a time; the nodes of one
parallel super-step each count — the reviewer model reads the goal and the node runs since the
last review (each node's state update, as recorded) and answers a typed :class:`GraphReview`:

* ``continue``: recorded; the graph goes on;
* ``replan``: recorded with the reviewer's ``advice``; the graph goes on (its own edges decide
  what runs: a reviewer cannot rewrite a developer's graph);
* ``terminate``: recorded with the reason; the run ends cleanly after the current super-step
  (LangGraph ``update_state(config, None, as_node=END)`` clears what was to run next), so it is
  ``completed`` and a resume has nothing left to run.

Each review is an audited ``review`` step (its model call, effort, tokens and cost) with a
``reviews`` row; the count of node runs comes from the ledger, so a replay (on its scratch store,
with the recorded answers) reviews at the same points and ends the same way. As the engine's goal
review (``graphs/review.py``), on LangGraph's super-step loop (``stream_mode="values"`` yields once
per super-step).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from chainproof.agents.structured import Clip, invoke_structured
from chainproof.checkpoints.audit_schema import ReviewRecord
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs.prompting import compact_json
from chainproof.graphs.recorder import StepRecorder

RECENT_NODE_RUNS = 8  # node runs the reviewer reads (the latest, each update cut to 300 characters)


class GraphReview(BaseModel):
    """The reviewer's answer on an instrumented graph's run."""

    decision: Literal["continue", "replan", "terminate"]
    reason: Annotated[str, Clip(300, "why, in one or two sentences", 3)]
    drift: Annotated[str, Clip(300, "has the work drifted from the goal? one sentence", 2)]
    advice: Annotated[str, Clip(400, "for replan: what the graph should do differently", 0)] = ""


def node_runs_since_review(ctx: ChainContext, run_id: str) -> tuple[list[Any], int]:
    """The ``node`` steps recorded after the run's latest review (ok ones), and that review's step
    number (0 before the first)."""
    steps = ctx.audit.records_of(run_id, "steps")
    last = max((s.step_no for s in steps if s.node == "review"), default=0)
    return [s for s in steps if s.kind == "node" and s.status == "ok" and s.step_no > last], last


def goal_review(ctx: ChainContext, run_id: str, step_no: int, runs: list[Any], effort: str) -> GraphReview:
    """Ask, record (step ``step_no``) and return one goal review over the node ``runs``."""
    run = ctx.audit.get_run(run_id)
    shown = "\n".join(f"- step {s.step_no}, node {s.node}: {compact_json((s.output or {}).get('update'), max_chars=300)}"
                      for s in runs[-RECENT_NODE_RUNS:])
    task = (f"Goal: {run.goal if run is not None else ''}\n\nReview this run against its ORIGINAL goal after "
            f"{len(runs)} more node runs. Latest node runs (each node's state update):\n{shown}\n\n"
            "Decide 'continue' if the work serves the goal, 'replan' (give advice: what the graph should do "
            "differently) if it should change course, or 'terminate' if the goal cannot or need not be pursued "
            "further (the run ends with your reason). Assess drift in one sentence.")
    messages = [SystemMessage("You review a long-running agent graph for drift from its goal."), HumanMessage(task)]
    effort, why = ((ctx.effort_override, "override: run config") if ctx.effort_override
                   else (effort, "static: instrument(review_effort=...)"))
    with StepRecorder(ctx.audit, run_id, step_no, "review", "review", f"Goal review after {len(runs)} node runs",
                      effort=effort, effort_reason=why, pricing=ctx.pricing, progress=ctx.progress) as rec:
        rec.inputs = {"node_runs": len(runs), "steps": [s.step_no for s in runs]}
        model = ctx.models.json_chat(effort, GraphReview)
        outcome = invoke_structured(model, messages, GraphReview, effort=effort, **ctx.access.structured(True))
        rec.model_calls(outcome.calls)
        decision = outcome.value or GraphReview(
            decision="continue", drift="unknown: the reviewer gave no valid review",
            reason=f"default after {len(outcome.errors)} invalid reviewer answers: continue")
        rec.output = {**decision.model_dump(mode="json"), "fallback": outcome.value is None, "errors": outcome.errors}
        usage = rec.usage
        rec.extra_records.append(ReviewRecord(
            step_no=step_no, decision=decision.decision, reason=decision.reason, drift_assessment=decision.drift,
            inputs=rec.inputs, effort=effort, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens))
    return decision


__all__ = ["GraphReview", "goal_review", "node_runs_since_review"]
