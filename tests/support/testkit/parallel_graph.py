"""A graph whose first three plan steps are independent (``depends_on=[]``) and run as a parallel
group, then a step that needs them all; for tests/test_parallel_steps.py and bench/agent_loop.py.

``ParallelChain(parallel=False)`` runs the same steps in sequence. :func:`sleepy_model` answers
each interpretation after ``delay`` seconds, from the prompt alone, so the answers do not depend on
which thread asks first.
"""

from __future__ import annotations

import json
import time
from typing import Any

from langchain_core.messages import BaseMessage

from chainproof.agents.scripted import ScriptedChatModel
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.graphs.view import ChainView
from testkit.agent_graph import Answer, ratio, revenue

GROUP = ("acme", "beta", "ratio")
DECIDE = "Give the answer as JSON."


class ParallelChain(ChainSpec[Answer]):
    """Three independent peer analyses, then a comparison."""

    name = "parallel-chain"
    decision_schema = Answer
    review_every = 0

    def __init__(self, parallel: bool = True, groups: int = 1, keep: bool = True) -> None:
        self.parallel = parallel
        self.groups = groups  # each group: three independent steps, then one that needs them
        self.keep = keep  # keep_data of the revenue steps (a long bench chain keeps none)

    def tools(self):
        return [revenue, ratio]

    def goal(self, inputs: dict[str, Any]) -> str:
        return "Compare ACME and BETA."

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        free = [] if self.parallel else None
        steps = []
        for g in range(self.groups):
            suffix = f"_{g}" if g else ""
            steps += [
                PlanStep(id=f"acme{suffix}", title="ACME revenue", kind="tool", tool="revenue", args={"company": "ACME"},
                         keep_data=self.keep, depends_on=free, instruction="State ACME's revenue."),
                PlanStep(id=f"beta{suffix}", title="BETA revenue", kind="tool", tool="revenue", args={"company": "BETA"},
                         keep_data=self.keep, depends_on=free, instruction="State BETA's revenue."),
                PlanStep(id=f"ratio{suffix}", title="Revenue ratio", kind="tool", tool="ratio",
                         args={"numerator": 1200.0, "denominator": 800.0}, depends_on=free,
                         instruction="State the ratio of the revenues."),
                PlanStep(id=f"compare{suffix}", title="Comparison", kind="reason",
                         instruction="Compare the two companies in one sentence."),
            ]
        return steps

    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(nodes=[])

    def decision_prompt(self, view: ChainView) -> str:
        return DECIDE

    def render_report(self, view: ChainView) -> str:
        return f"# Parallel chain\n\n{view.decision['answer']}\n"


def sleepy_model(delay: float) -> ScriptedChatModel:
    """A model that interprets a tool result after ``delay`` seconds (echoing the result) and
    answers every other prompt at once, from the prompt alone (thread-safe, any call order)."""

    def answer(messages: list[BaseMessage]) -> str:
        text = str(messages[-1].content)
        if DECIDE in text:
            return json.dumps({"answer": "ACME is 1.5 times BETA."})
        if "Tool result (JSON):" in text:
            time.sleep(delay)
            return "Interpreted " + text.rsplit("Tool result (JSON):", 1)[1].strip()
        return "ACME's revenue is 1.5 times BETA's."

    return ScriptedChatModel(replies=[answer], repeat_last=True)
