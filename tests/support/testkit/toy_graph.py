"""A small generic graph for orchestrator tests: two tool steps and one reasoning step."""

from __future__ import annotations

import json
from typing import Any, Literal

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from chainproof.graphs.approval import ApprovalItem
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.graphs.view import ChainView

CALLS: dict[str, int] = {}


def _count(x: int) -> dict[str, Any]:
    CALLS["count"] = CALLS.get("count", 0) + 1
    return {"x": x, "squared": x * x}


def _double(squared: dict[str, Any]) -> dict[str, Any]:
    CALLS["double"] = CALLS.get("double", 0) + 1
    return {"doubled": squared["squared"] * 2}


class Verdict(BaseModel):
    verdict: Literal["yes", "no"]
    reason: str = Field(min_length=3)


class ToyGraph(ChainSpec[Verdict]):
    name = "toy"
    decision_schema = Verdict

    def tools(self):
        return [
            StructuredTool.from_function(_count, name="square", description="square x"),
            StructuredTool.from_function(_double, name="double", description="double a squared result"),
        ]

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(inputs.get("x"), int):
            raise ValueError(f"x: expected an integer, got {inputs.get('x')!r}")
        return inputs

    def goal(self, inputs):
        return f"Decide whether {inputs['x']} squared and doubled is large."

    def plan(self, inputs):
        return [
            PlanStep(id="square", title="Square x", kind="tool", tool="square", args={"x": "{inputs.x}"},
                     instruction="Say what the square is.", keep_data=True, effort="low"),
            PlanStep(id="double", title="Double it", kind="tool", tool="double",
                     args_from_findings={"squared": "square"}, instruction="Say what the double is."),
            PlanStep(id="think", title="Think", kind="reason", instruction="Is it large?", effort="high"),
        ]

    def decision_prompt(self, view: ChainView) -> str:
        return "Give the verdict."

    def fallback_decision(self, view: ChainView, errors: list[str]) -> Verdict:
        return Verdict(verdict="no", reason="fallback: " + "; ".join(errors)[:200])

    def render_report(self, view: ChainView) -> str:
        approval = view.approval or {}
        return f"# Toy\nverdict: {view.decision['verdict']}\napproved by: {approval.get('approver')}\n"


PREPARED: dict[str, int] = {}


class ItemDecision(BaseModel):
    item: str
    accept: bool


class ParallelToy(ToyGraph):
    """The toy chain whose verdict is approved per item, in parallel: one request per item, each
    prepared once (``PREPARED`` counts preparations per item)."""

    name = "toy-parallel"
    items = ("alpha", "beta", "gamma")

    def approval_items(self, decision: Verdict, view: ChainView) -> list[ApprovalItem]:
        out = []
        for item in self.items:
            PREPARED[item] = PREPARED.get(item, 0) + 1
            out.append(ApprovalItem(f"item:{item}", f"Accept {item}?", {"item": item, "accept": decision.verdict == "yes"}))
        return out

    def approval_schema(self, subject):
        return ItemDecision if subject.startswith("item:") else super().approval_schema(subject)

    def render_report(self, view: ChainView) -> str:
        lines = [f"{a['subject']}: {a['action']} by {a['approver']}" for a in view.approvals]
        return "# Parallel toy\n" + "\n".join(lines) + "\n"


YES = json.dumps({"verdict": "yes", "reason": "the doubled square is large"})
"""The scripted verdict that ends a ``toy`` run's decision step."""


def start_paused() -> str:
    """Start a ``toy`` run (``x`` = 3; the caller has registered :class:`ToyGraph` as "toy") on the
    environment's settings with scripted replies, check it paused for approval, and return its id."""
    from chainproof.agents.models import StaticModels
    from chainproof.agents.scripted import ScriptedChatModel
    from chainproof.app import Chainproof
    from chainproof.settings import Settings

    model = ScriptedChatModel(replies=["The square.", "The double.", "Large.", YES])
    with Chainproof(Settings(), models=StaticModels(model)) as app:
        run = app.start("toy", {"x": 3})
    assert run.status == "paused"
    return run.run_id
