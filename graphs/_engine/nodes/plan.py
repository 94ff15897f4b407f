"""``plan``: validates the plan against the tools and writes it (the first time, or after a
rejection whose policy is ``on_reject="replan"``)."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from chainproof.errors import PlanError
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.state import SUMMARY_LINES, ChainState, current_plan, next_node
from chainproof.graphs.approval import tool_call_of
from chainproof.graphs.spec import PlanStep
from chainproof.graphs.view import ChainView


def check_tools(ctx: ChainContext, steps: list[PlanStep] | tuple[PlanStep, ...]) -> None:
    """Raise ``KeyError`` naming the plan's tools that the run does not have, and ``PlanError``
    naming a ``depends_on`` entry that is not an earlier step, or a condition (``when``) whose
    finding is not an earlier step, or whose data field that step does not keep, or an agent
    step's ``first_tool_choice`` naming a tool the graph does not have."""
    named = {s.tool for s in steps if s.kind == "tool"} | {t for s in steps if s.kind == "agent" for t in s.tools or ()}
    unknown = sorted({t for t in named if t not in ctx.tool_map}, key=str)  # None: a tool step without a tool
    if unknown:
        raise KeyError(f"plan uses unknown tool(s) {unknown}; available: {sorted(ctx.tool_map)}")
    earlier: dict[str, PlanStep] = {}
    for s in steps:  # a parallel group must never wait on a step that runs later
        later = sorted(set(s.depends_on or ()) - set(earlier))
        if later:
            raise PlanError(f"plan step {s.id!r}: depends_on names {later}, which are not earlier plan steps; "
                            f"the earlier ones are {sorted(earlier)}")
        if s.when is not None:
            source = earlier.get(s.when.finding)
            if source is None:
                raise PlanError(f"plan step {s.id!r}: when.finding {s.when.finding!r} is not an earlier plan step; "
                                f"the earlier ones are {sorted(earlier)}")
            if s.when.field != "summary" and not source.keep_data:
                raise PlanError(f"plan step {s.id!r}: when.field {s.when.field!r} reads the data of finding "
                                f"{source.id!r}, which is not kept; give {source.id!r} keep_data=True, or test its "
                                "'summary'")
        if s.kind == "agent" and s.first_tool_choice not in ("auto", "required", "none") and s.tools is None \
                and s.first_tool_choice not in ctx.tool_map:
            raise PlanError(f"plan step {s.id!r}: first_tool_choice names tool {s.first_tool_choice!r}, which the "
                            f"graph does not have; its tools are {sorted(ctx.tool_map)}")
        for fid in s.evidence or ():
            if fid not in earlier or not earlier[fid].keep_data:
                raise PlanError(f"plan step {s.id!r}: evidence names {fid!r}, which is not an earlier plan step with "
                                f"keep_data=True; the earlier ones that keep their data are "
                                f"{sorted(k for k, v in earlier.items() if v.keep_data)}")
        earlier[s.id] = s


def plan(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Write the plan (recorded as a ``plan`` step); after a rejection, ask the spec's ``replan``."""
    ctx = runtime.context
    spec = ctx.spec
    if state.get("replan"):
        rejections = [a for a in state.get("approvals", [])
                      if a["round"] == state["round"] - 1 and a["action"] == "reject"
                      and tool_call_of(a["subject"]) is None]  # a rejected tool call went back to its agent
        with ctx.recorder(state, "plan", "plan", "Replan after rejection") as rec:
            revised = spec.replan(ChainView(state), rejections)
            check_tools(ctx, revised)
            steps = [s.model_dump(mode="json") for s in revised]
            rec.inputs = {"rejections": [{k: r.get(k) for k in ("request_id", "approver", "comment")} for r in rejections]}
            rec.output = {"plan": steps}
        lines = [f"Rejected by {r['approver']}: {r['comment']}" for r in rejections]
        return {"plan_revision": steps, "cursor": 0, "step": rec.step_no,
                "summary": [*state.get("summary", []), *lines][-SUMMARY_LINES:],
                "requests": None, "approval": None, "replan": False}
    with ctx.recorder(state, "plan", "plan", "Plan the chain") as rec:
        steps_ = current_plan(spec, state)
        check_tools(ctx, steps_)
        rec.inputs = {"goal": state["goal"], "inputs": state["inputs"], "budget": state["budget"]}
        shown = [s.model_dump(mode="json", exclude_defaults=True) for s in steps_[:50]]
        rec.output = {"plan_steps": len(steps_), "plan": shown, "truncated": len(steps_) > 50}
    return {"plan_revision": None, "cursor": 0, "done_count": 0, "recent_done": [], "last_review_at": 0,
            "termination": None, "step": rec.step_no, "findings": {}, "summary": [], "tools_used": []}


def after_plan(state: ChainState, runtime: Runtime[ChainContext]) -> str | list[Send]:
    return next_node(runtime.context.spec, state)
