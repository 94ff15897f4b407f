"""A graph that branches on a tool's result: the revenue of the company (a tool step, no model
call) decides whether a ``deep_dive`` (revenue below 1,000) or a ``growth`` (1,000 or more) reasoning
step runs; for tests/test_branching.py. ``BranchChain(condition=...)`` replaces the first
condition (to test bad conditions); ``BranchChain(override=True)`` makes the spec skip ahead."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import BaseMessage

from chainproof.agents.scripted import ScriptedChatModel
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.branching import BranchChoice, BranchOutcome, Condition
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.graphs.view import ChainView
from testkit.agent_graph import Answer, revenue

DECIDE = "Give the answer as JSON."


class BranchChain(ChainSpec[Answer]):
    """Revenue, then a deep dive or a growth note depending on it, then a wrap-up."""

    name = "branch-chain"
    decision_schema = Answer
    review_every = 0

    def __init__(self, condition: Condition | None = None, override: bool = False) -> None:
        self.condition = condition
        self.override = override

    def tools(self):
        return [revenue]

    def goal(self, inputs: dict[str, Any]) -> str:
        return f"Assess {inputs['company']}."

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        low = self.condition or Condition(finding="revenue", field="revenue", op="<", value=1000)
        return [
            PlanStep(id="revenue", title="Revenue", kind="tool", tool="revenue", args={"company": "{inputs.company}"},
                     keep_data=True, interpret=False, instruction="Revenue."),
            PlanStep(id="deep_dive", title="Deep dive", kind="reason", when=low,
                     instruction="Explain why revenue is low."),
            PlanStep(id="growth", title="Growth note", kind="reason",
                     when=Condition(finding="revenue", field="revenue", op=">=", value=1000),
                     instruction="Say how revenue could grow further."),
            PlanStep(id="wrap_up", title="Wrap-up", kind="reason", instruction="Sum up in one sentence."),
        ]

    def choose_branch(self, view: ChainView, step: PlanStep, outcome: BranchOutcome) -> BranchChoice | None:
        if self.override and step.id == "deep_dive":
            return BranchChoice(taken=False, skip_to="wrap_up", reason="the analyst asked for the short path")
        return None

    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(nodes=[])

    def decision_prompt(self, view: ChainView) -> str:
        return DECIDE

    def render_report(self, view: ChainView) -> str:
        return f"# Branch chain\n\n{view.decision['answer']}\n"


def branch_model() -> ScriptedChatModel:
    """Answers each reasoning step by its task, and the decision as JSON (any call order)."""

    def answer(messages: list[BaseMessage]) -> str:
        text = str(messages[-1].content)
        if DECIDE in text:
            return json.dumps({"answer": "assessed"})
        for cue, reply in (("why revenue is low", "Revenue is low: small market."),
                           ("grow further", "Revenue can grow abroad."), ("Sum up", "Done.")):
            if cue in text:
                return reply
        return "ok"

    return ScriptedChatModel(replies=[answer], repeat_last=True)
