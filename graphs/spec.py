"""What a chain is made of: its plan steps, findings, and the spec a graph author writes.

A *chain* is a goal worked through as a plan of steps. Each plan step runs as two super-steps of
the orchestrator loop: ``act`` (call a tool, or reason with the model) and ``observe`` (turn the
result into a finding). A :class:`ChainSpec` subclass defines one graph: its goal, its plan, how
its final decision is asked for and checked, and its report. The orchestrator
(``graphs/orchestrator.py``) is the same for every graph.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from langchain_core.tools import BaseTool
from pydantic import BaseModel, Field

from chainproof._boundaries import decision_form  # value contract
from chainproof.agents.config import Effort
from chainproof.graphs.approval import ApprovalItem
from chainproof.graphs.approval_policy import ApprovalPolicy


class PlanStep(BaseModel):
    """One step of a plan.

    ``kind='tool'``: ``act`` calls ``tool`` with ``args`` (strings of the form ``{inputs.KEY}`` are
    replaced by the run's inputs) plus, for each ``name -> step_id`` in ``args_from_findings``, the
    data of that earlier finding; ``observe`` then asks the model to interpret the result.
    ``kind='reason'``: ``act`` asks the model ``instruction`` over the findings so far.
    ``keep_data`` keeps the full result in the graph state for later steps; otherwise only the
    finding's summary stays in state (the full result is always in the audit store).
    ``prompt_fields`` limits which top-level fields of a tool result the model is shown (None: all);
    small models read fewer tokens faster and are less tempted by fields such as thresholds.
    ``effort`` is the step's static effort; None lets the routing policy decide from
    ``instruction`` (rules, then a complexity score; ``graphs/routing.py``).
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    kind: Literal["tool", "reason"]
    instruction: str
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    args_from_findings: dict[str, str] = Field(default_factory=dict)
    effort: Effort | None = None
    keep_data: bool = False
    prompt_fields: list[str] | None = None


class Finding(BaseModel):
    """What a plan step established: ``summary`` is the model's short interpretation (text),
    ``data`` the tool's result (JSON) when kept, ``step_no`` the super-step that produced it."""

    step_id: str
    title: str
    summary: str
    data: dict[str, Any] | None = None
    tool: str | None = None
    step_no: int


class ChainSpec:
    """Base class of a graph definition. Subclasses set the class attributes and override the
    methods marked as such.

    Class attributes:
        name: the graph's registry name (``chainproof run NAME``).
        decision_schema: the pydantic model of the final decision.
        max_steps: default step budget in plan steps (overridable per run); LangGraph's
            ``recursion_limit`` is derived from it (``graphs.review.Budget.recursion_limit``).
        review_every: default N of the goal review every N plan steps (0 = never).
        review_effort / decide_effort: the static effort of the review / decide node; None lets
            the routing policy decide from the prompt (rules, complexity; ``graphs/routing.py``).
        uncached: plan step ids and node names (``review``, ``decide``) whose model calls never
            use the reasoning cache (e.g. steps that must see fresh answers).
    """

    name: ClassVar[str]
    decision_schema: ClassVar[type[BaseModel]]
    max_steps: ClassVar[int] = 100
    review_every: ClassVar[int] = 5
    review_effort: ClassVar[Effort | None] = "medium"
    decide_effort: ClassVar[Effort | None] = "high"
    uncached: ClassVar[frozenset[str]] = frozenset()
    system_prompt: ClassVar[str] = (
        "You are a careful analyst. Use only the facts given to you. Never compute or invent numbers: "
        "quote numbers exactly as the tool results give them."
    )

    def tools(self) -> list[BaseTool]:
        """Override: the tools the plan may call."""
        return []

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Override: check and normalise the run inputs before anything runs; raise ``ValueError``
        naming the bad field. Returns the inputs to store (JSON-ready)."""
        return inputs

    def goal(self, inputs: dict[str, Any]) -> str:
        """Override: the goal in one or two sentences."""
        raise NotImplementedError

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        """Override: the initial plan."""
        raise NotImplementedError

    def decision_prompt(self, state: dict[str, Any]) -> str:
        """Override: the request for the final decision, given the state (goal, findings)."""
        raise NotImplementedError

    def check_decision(self, decision: BaseModel, state: dict[str, Any]) -> None:
        """Override: semantic checks beyond the schema; raise ``ValueError`` (shown to the model)."""

    def fallback_decision(self, state: dict[str, Any], errors: list[str]) -> BaseModel | None:
        """Override: the decision used when the model gave no valid one after its attempts.
        ``None`` (the default): no fallback; the decide step fails with
        ``agents.structured.StructuredOutputError`` and the run can be resumed later."""
        return None

    def approval_policy(self) -> ApprovalPolicy:
        """Override: when approval is needed, who may give it, what a rejection does. Default:
        the decision always needs approval, anyone named may decide, a rejection ends the run.
        Settings (``approval_policies``) override it per graph."""
        return ApprovalPolicy()

    def approval_question(self, decision: BaseModel, state: dict[str, Any]) -> str:
        """Override: the question put to a human about the decision."""
        return "Approve this decision?"

    def approval_items(self, decision: BaseModel, state: dict[str, Any]) -> list[ApprovalItem]:
        """Override: what to ask approval for, once the policy says approval is needed. Default:
        one item, the whole decision. Several items become parallel requests (one LangGraph
        ``Send`` each) that are answered independently; an item's preparation belongs here or in
        earlier nodes, never in the approval node, so a resume never repeats it."""
        return [ApprovalItem("decision", self.approval_question(decision, state), decision_form(decision))]

    def approval_schema(self, subject: str) -> type[BaseModel] | None:
        """Override: the schema an edit of ``subject`` must fit (default: ``decision_schema`` for
        ``"decision"``, none for other subjects, whose edits must then be JSON objects)."""
        return self.decision_schema if subject == "decision" else None

    def replan(self, state: dict[str, Any], rejections: list[dict[str, Any]]) -> list[PlanStep]:
        """Override: extra plan steps after a rejection (policy ``on_reject="replan"``).
        ``rejections`` are the decisions that rejected (approver, comment). Default: none — the
        decision is asked again with the rejection reasons in the rolling summary."""
        return []

    def render_report(self, state: dict[str, Any]) -> str:
        """Override: the final Markdown report."""
        raise NotImplementedError

    def render_terminated(self, state: dict[str, Any]) -> str:
        """The report of a run a review terminated: the goal, why it stopped, and the findings so
        far. Override for a graph-specific layout."""
        term = state.get("termination") or {}
        lines = [f"# Run {state['run_id']} terminated", "", f"Goal: {state['goal']}", "",
                 f"**Terminated after {state.get('done_count', 0)} plan steps:** {term.get('reason', 'no reason recorded')}",
                 "", "## Findings so far", ""]
        lines += [f"- **{f['title']}**: {f['summary']}" for f in state.get("findings", {}).values()] or ["- none"]
        return "\n".join(lines) + "\n"
