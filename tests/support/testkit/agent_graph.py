"""A graph with an agent step (ReAct) over three tools, for agent tests and bench/agent_loop.py.

``AgentChain(max_iterations=..., review_every=..., with_tool_step=...)`` is configured on the
instance (register a factory). The tools count their runs in ``RUNS`` so a test sees that a replay
ran none. Its decision is asked of the model as JSON ``{"answer": ...}``; no approval is asked.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from chainproof.agents.scripted import ScriptedChatModel
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.graphs.tool import tool
from chainproof.graphs.view import ChainView

RUNS: dict[str, int] = {}
REVENUE = {"ACME": 1200.0, "BETA": 800.0}


def _ran(name: str) -> None:
    RUNS[name] = RUNS.get(name, 0) + 1


@tool
def revenue(company: str) -> dict:
    """Annual revenue of a company, in USD millions."""
    _ran("revenue")
    if company not in REVENUE:
        raise ValueError(f"unknown company {company!r}")
    return {"company": company, "revenue": REVENUE[company]}


@tool
def ratio(numerator: float, denominator: float) -> dict:
    """numerator / denominator, rounded to 4 decimals."""
    _ran("ratio")
    return {"ratio": round(numerator / denominator, 4)}


@tool
def multiply(a: float, b: float) -> dict:
    """a times b."""
    _ran("multiply")
    return {"product": a * b}


@tool(requires_approval=True)
def transfer(account: str, amount: float) -> dict:
    """Transfer an amount (USD) to an account; a person approves every call before it runs."""
    _ran("transfer")
    return {"account": account, "sent": amount}


class Answer(BaseModel):
    answer: str = Field(min_length=1)


class AgentChain(ChainSpec[Answer]):
    """Compare two companies' revenue with an agent that picks its tools."""

    name = "agent-chain"
    decision_schema = Answer
    review_every = 0

    def __init__(self, max_iterations: int | None = None, review_every: int | None = None,
                 with_tool_step: bool = False, max_invalid_calls: int = 3,
                 first_tool_choice: str = "auto") -> None:
        self.step_max_iterations = max_iterations
        self.first_tool_choice = first_tool_choice
        self.step_review_every = review_every
        self.with_tool_step = with_tool_step
        self.max_invalid_calls = max_invalid_calls

    def tools(self):
        return [revenue, ratio, multiply]

    def goal(self, inputs: dict[str, Any]) -> str:
        return "How much larger is ACME's revenue than BETA's, and what is twice the ratio?"

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        steps = [PlanStep(id="compare", title="Compare revenues", kind="agent", effort="low", keep_data=True,
                          instruction="Find both revenues, their ratio and twice the ratio, using the tools.",
                          max_iterations=self.step_max_iterations, review_every=self.step_review_every,
                          max_invalid_calls=self.max_invalid_calls, first_tool_choice=self.first_tool_choice)]
        if self.with_tool_step:
            steps.insert(0, PlanStep(id="acme", title="ACME revenue", kind="tool", tool="revenue", keep_data=True,
                                     args={"company": "ACME"}, instruction="State the revenue.", interpret=False))
        return steps

    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(nodes=[])

    def decision_prompt(self, view: ChainView) -> str:
        return "Give the answer as JSON."

    def render_report(self, view: ChainView) -> str:
        return f"# Agent chain\n\n{view.decision['answer']}\n"


call = ScriptedChatModel.tool_calls_reply


def start_scripted(settings: Any, name: str, factory: Any, replies: list[Any]) -> tuple[Any, Any, ScriptedChatModel]:
    """``(app, run, model)``: the graph ``factory`` makes, registered as ``name``, started on a
    scripted model answering ``replies`` in order (``RUNS`` cleared first)."""
    from chainproof.agents.models import StaticModels
    from chainproof.app import Chainproof
    from chainproof.graphs.registry import register

    register(name, factory)
    RUNS.clear()
    model = ScriptedChatModel(replies=replies)
    app = Chainproof(settings, models=StaticModels(model))
    return app, app.start(name, {}), model
FINAL = "ACME's revenue is 1.5 times BETA's; twice the ratio is 3.0."
DECISION = json.dumps({"answer": FINAL})


def five_iterations() -> list[Any]:
    """Scripted replies: three tools over five iterations (one with two calls), then the answer."""
    return [
        call(("revenue", {"company": "ACME"}), text="First ACME."),
        call(("revenue", {"company": "BETA"})),
        call(("ratio", {"numerator": 1200.0, "denominator": 800.0})),
        call(("multiply", {"a": 1.5, "b": 2}), ("revenue", {"company": "ACME"})),
        call(("ratio", {"numerator": 3.0, "denominator": 1})),
        FINAL,
        DECISION,
    ]


def looping(n: int) -> list[Any]:
    """Scripted replies of an agent that never answers: ``n`` iterations of tool calls."""
    return [call(("multiply", {"a": float(i), "b": 2.0})) for i in range(n)]


class ApprovalAgentChain(AgentChain):
    """An agent step whose ``transfer`` tool needs a person's approval before each call."""

    name = "agent-approval"

    def tools(self):
        return [revenue, ratio, transfer]

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        return [PlanStep(id="pay", title="Pay the supplier", kind="agent", effort="low", keep_data=True,
                         instruction="Pay supplier ACME its revenue divided by 1000, in USD, with the transfer tool.")]
