"""A long generic chain for review, budget and benchmark tests: ``n`` tool steps that each tick a
counter (so a test can prove every step ran exactly once), answered by a prompt-aware scripted model."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from langchain_core.tools import StructuredTool
from pydantic import BaseModel

from chainproof.agents.scripted import ScriptedChatModel
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.graphs.view import ChainView

TICKS: Counter[str] = Counter()


def _tick(step: str) -> dict[str, Any]:
    TICKS[step] += 1
    return {"step": step, "value": len(step)}


class Done(BaseModel):
    verdict: Literal["done"]


class LongChain(ChainSpec[Done]):
    name = "long"
    decision_schema = Done
    max_steps = 1000
    review_every = 5

    def tools(self):
        return [StructuredTool.from_function(_tick, name="tick", description="count one step")]

    def goal(self, inputs):
        return f"Walk {inputs['n']} steps."

    def plan(self, inputs):
        return [PlanStep(id=f"s{i}", title=f"Step {i}", kind="tool", tool="tick", args={"step": f"s{i}"},
                         instruction="Note the value.", effort="low") for i in range(1, inputs["n"] + 1)]

    def decision_prompt(self, view: ChainView) -> str:
        return "Say done."

    def fallback_decision(self, view: ChainView, errors: list[str]) -> Done:
        return Done(verdict="done")

    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(nodes=[])  # no human gate: these runs end on their own

    def render_report(self, view: ChainView) -> str:
        return f"# Long chain\\nsteps done: {view.done_count}\\n"


CONTINUE = json.dumps({"decision": "continue", "reason": "on track", "drift": "none"})


def responder(reviews: list[str] | None = None) -> Callable[[list[BaseMessage]], str]:
    """Answers observations with 'ok', the decision with 'done', and reviews from ``reviews`` in
    order (then 'continue'). ``reviews`` is consumed as a queue."""
    queue = list(reviews or [])

    def answer(messages: list[BaseMessage]) -> str:
        system = str(messages[0].content)
        if '"title":"ReviewDecision"' in system:
            return queue.pop(0) if queue else CONTINUE
        if '"title":"Done"' in system:
            return json.dumps({"verdict": "done"})
        return "ok"

    return answer


def long_model(reviews: list[str] | None = None) -> ScriptedChatModel:
    return ScriptedChatModel(replies=[responder(reviews)], repeat_last=True)
