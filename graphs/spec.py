"""What a chain is made of: the spec a graph author writes (its plan steps and findings live in
:mod:`chainproof.graphs.plan_step`, re-exported here).

A *chain* is a goal worked through as a plan of steps. Each plan step runs as two super-steps of
the orchestrator loop: ``act`` (call a tool, or reason with the model) and ``observe`` (turn the
result into a finding). A :class:`ChainSpec` subclass defines one graph: its goal, its plan, how
its final decision is asked for and checked, and its report. The orchestrator
(``graphs/_engine/``) is the same for every graph.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from langchain_core.tools import BaseTool
from pydantic import BaseModel

from chainproof._boundaries import decision_form
from chainproof.agents.config import Effort
from chainproof.agents.structured import MAX_ATTEMPTS
from chainproof.errors import PlanError
from chainproof.graphs.approval import ApprovalItem
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.branching import BranchChoice, BranchOutcome
from chainproof.graphs.plan_step import Finding, PlanStep

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from chainproof.graphs.agent import AgentAnswer, SendBack
    from chainproof.graphs.view import ChainView

__all__ = ["ChainSpec", "DecisionT", "Finding", "PlanStep"]

DecisionT = TypeVar("DecisionT", bound=BaseModel)


class ChainSpec(Generic[DecisionT]):
    """Base class of a graph definition, generic in its decision type (``class Triage(ChainSpec[Verdict])``,
    as PydanticAI's ``Agent[DepsT, OutputDataT]`` and LangGraph's ``StateGraph[StateT, ContextT]``).
    Subclasses set the class attributes and override the methods marked as such. The hooks that
    read the run's state receive a read-only :class:`~chainproof.graphs.view.ChainView`.

    Class attributes:
        name: the graph's registry name (``chainproof run NAME``).
        description: one line for ``chainproof graphs`` (default: the class docstring's first line).
        inputs_model: the pydantic model of the run inputs (``chainproof run NAME --input k=v``
            and ``chainproof graphs`` use it); None takes a free-form dict checked only by
            :meth:`validate_inputs`.
        decision_schema: the pydantic model of the final decision.
        max_steps: default step budget in plan steps (overridable per run); LangGraph's
            ``recursion_limit`` is derived from it (``graphs.review.Budget.recursion_limit``).
        review_every: default N of the goal review every N plan steps (0 = never).
        review_effort / decide_effort: the static effort of the review / decide node; None lets
            the routing policy decide from the prompt (rules, complexity; ``graphs/routing.py``).
        decide_attempts: the decide node's model calls for one valid decision: the first and the
            retries that show the model its error (PydanticAI's ``output_retries`` + 1); then
            :meth:`fallback_decision`. Default 3 (``agents.structured.MAX_ATTEMPTS``).
        uncached: plan step ids and node names (``review``, ``decide``) whose model calls never
            use the reasoning cache (e.g. steps that must see fresh answers).
        max_iterations: default iteration limit of the agent steps (``PlanStep.max_iterations``);
            30, LangChain 1.x ``create_agent``'s and the issue's default (the classic
            ``AgentExecutor`` used 15).
        uses_chainproof_models: whether runs call Chainproof's configured models (checked before a
            run is recorded); an instrumented graph calls its own.
        inputs_given_only: keep only the input fields given, not the model's defaults (an
            instrumented graph: LangGraph leaves a state's optional keys absent).
        path_inputs: the input fields that name a file or folder the run reads (a dossier folder, a
            document, a portfolio file). Runs started from the web app may read these only inside
            the allowed folders (``chainproof._start.check_input_paths``); a graph with other path
            inputs must list them here (or override :meth:`input_paths`) to be checked.
        evidence_tokens: the budget of a step's cited evidence (``PlanStep.evidence``), in tokens
            estimated as characters / 4 (1,500: room for five findings with their data; a
            judgement, not a fit).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    inputs_model: ClassVar[type[BaseModel] | None] = None
    decision_schema: type[DecisionT]
    max_steps: ClassVar[int] = 100
    review_every: ClassVar[int] = 5
    review_effort: ClassVar[Effort | None] = "medium"
    decide_effort: ClassVar[Effort | None] = "high"
    decide_attempts: ClassVar[int] = MAX_ATTEMPTS
    uncached: ClassVar[frozenset[str]] = frozenset()
    max_iterations: ClassVar[int] = 30
    uses_chainproof_models: ClassVar[bool] = True
    inputs_given_only: ClassVar[bool] = False
    path_inputs: ClassVar[tuple[str, ...]] = ()
    evidence_tokens: ClassVar[int] = 1500
    system_prompt: ClassVar[str] = (
        "You are a careful analyst. Use only the facts given to you. Never compute or invent numbers: "
        "quote numbers exactly as the tool results give them."
    )

    def tools(self) -> list[BaseTool]:
        """Override: the tools the plan may call."""
        return []

    def describe(self) -> str:
        """One line describing the graph: ``description``, else the class docstring's first line."""
        if self.description:
            return self.description
        first_paragraph = (type(self).__doc__ or "").strip().split("\n\n")[0]
        return " ".join(first_paragraph.split())

    def input_paths(self, inputs: dict[str, Any]) -> Iterator[tuple[str, Path]]:
        """``(field, path)`` for every file or folder the raw ``inputs`` make the run read, before
        :meth:`validate_inputs` opens any: the :attr:`path_inputs` given as non-blank text, a
        relative path as the graph reads it (from the working directory). Lazy, so a caller can
        refuse a path before a later one is looked for inside it. Override to add paths named
        inside an input file (call ``super().input_paths`` first)."""
        for name in self.path_inputs:
            value = inputs.get(name)
            if isinstance(value, str) and value.strip():
                yield name, Path(value.strip()).expanduser()

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise the run inputs before anything runs. Returns the inputs to store
        (values of the value contract, :mod:`chainproof.values`: hooks read them back as the same
        types). The default validates against :attr:`inputs_model` when there is one (raising
        :class:`~chainproof.errors.InputError` naming each bad field) and returns its fields (with
        ``inputs_given_only``, only those given).
        Override to add checks (call ``super().validate_inputs`` first); raise ``ValueError``
        naming the bad field."""
        if self.inputs_model is None:
            return inputs
        from pydantic import ValidationError

        from chainproof.errors import InputError

        try:
            model = self.inputs_model.model_validate(inputs)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'inputs'}: {e['msg']}" for e in exc.errors())
            raise InputError(f"inputs of graph {self.name!r}: {problems}") from None
        given = model.model_fields_set if self.inputs_given_only else type(model).model_fields
        return {name: getattr(model, name) for name in type(model).model_fields if name in given}  # typed

    def subject(self, inputs: dict[str, Any]) -> str | None:
        """Override: a short label of what the run is about (a ticker, a case number), shown by
        ``chainproof runs`` and stored in the run header's ``company`` column. Default: none."""
        return None

    def goal(self, inputs: dict[str, Any]) -> str:
        """Override: the goal in one or two sentences."""
        raise NotImplementedError

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        """Override: the initial plan."""
        raise NotImplementedError

    def decision_prompt(self, view: ChainView) -> str:
        """Override: the request for the final decision, given the state (goal, findings)."""
        raise NotImplementedError

    def check_decision(self, decision: DecisionT, view: ChainView) -> None:
        """Override: semantic checks beyond the schema; raise ``ValueError`` (shown to the model)."""

    def check_answer(self, step: PlanStep, answer: AgentAnswer, view: ChainView) -> str | SendBack | None:
        """Override: check an agent step's answer (PydanticAI's output validator raising ``ModelRetry``):
        a note (or a ``SendBack`` also naming the tool to call next) sends it back, at most ``step.answer_checks``
        times; None (default) accepts it. Runs on replay too: deterministic code only, no model or clock."""
        return None

    def agent_prompt(self, step: PlanStep, view: ChainView, task: str) -> list[BaseMessage] | None:
        """Override: the messages an agent step's model is sent before its window of recent
        iterations (LangGraph's ``create_react_agent(prompt=callable)``), given ``task`` (the step's
        instruction, as a goal review re-scoped it). None (default): the engine's prompt (system
        prompt and agent rules, then goal, progress, what is known, evidence, task, notes on earlier
        calls). A graph that knows what its model needs may send fewer tokens; it then owns what the
        model sees. Deterministic code only (it runs again on replay; the recorded prompt must match)."""
        return None

    def decision_messages(self, view: ChainView, task: str) -> list[BaseMessage] | None:
        """Override: the messages the decide node's model is sent (after the JSON-schema
        instruction the structured call adds), given ``task`` (:meth:`decision_prompt`, with the
        reason the run ended early when a review ended it). None (default): the engine's prompt
        (system prompt, then goal, progress, what is known, task), as :meth:`agent_prompt` is for
        agent steps. Deterministic code only (it runs again on replay; the recorded prompt must match)."""
        return None

    def direct_decision(self, view: ChainView) -> DecisionT | None:
        """Override: the decision built by code when the findings settle it (checked by :meth:`check_decision`;
        the decide node then calls no model, its row says ``"by": "code"``). None (default): the model decides."""
        return None

    def fallback_decision(self, view: ChainView, errors: list[str]) -> DecisionT | None:
        """Override: the decision used when the model gave no valid one after its attempts.
        ``None`` (the default): no fallback; the decide step fails with
        ``agents.structured.StructuredOutputError`` and the run can be resumed later."""
        return None

    def approval_policy(self) -> ApprovalPolicy:
        """Override: when approval is needed, who may give it, what a rejection does. Default:
        the decision always needs approval, anyone named may decide, a rejection ends the run.
        Settings (``approval_policies``) or, once it holds any, the audit store override it per graph."""
        return ApprovalPolicy()

    def approval_question(self, decision: DecisionT, view: ChainView) -> str:
        """Override: the question put to a human about the decision."""
        return "Approve this decision?"

    def approval_items(self, decision: DecisionT, view: ChainView) -> list[ApprovalItem]:
        """Override: what to ask approval for, once the policy says approval is needed. Default:
        one item, the whole decision. Several items become parallel requests (one LangGraph
        ``Send`` each) that are answered independently; an item's preparation belongs here or in
        earlier nodes, never in the approval node, so a resume never repeats it."""
        return [ApprovalItem("decision", self.approval_question(decision, view), decision_form(decision))]

    def approval_schema(self, subject: str) -> type[BaseModel] | None:
        """Override: the schema an edit of ``subject`` must fit (default: ``decision_schema`` for
        ``"decision"``, none for other subjects, whose edits must then be JSON objects)."""
        return self.decision_schema if subject == "decision" else None

    def replan(self, view: ChainView, rejections: list[dict[str, Any]]) -> list[PlanStep]:
        """Override: extra plan steps after a rejection (policy ``on_reject="replan"``).
        ``rejections`` are the decisions that rejected (approver, comment). Default: none — the
        decision is asked again with the rejection reasons in the rolling summary."""
        return []

    def summarize_result(self, step: PlanStep, result: Any) -> str:
        """Override: the finding's summary of a tool step with ``interpret=False`` (no model call),
        given the tool's result (limited to ``step.prompt_fields``). Default: the result as exact
        one-line JSON, nothing rounded (cut to the finding's length by the engine)."""
        import json

        return json.dumps(result, separators=(",", ":"), ensure_ascii=False, default=str)

    def choose_branch(self, view: ChainView, step: PlanStep, outcome: BranchOutcome) -> BranchChoice | None:
        """Override: the choice at a conditioned step (``PlanStep.when``), given what its condition
        decided (``outcome``). Return a :class:`~chainproof.graphs.branching.BranchChoice` to
        override it (run or skip the step, or skip ahead to a later step id; recorded with
        ``by="spec"`` and its reason), or None (the default) to keep the condition's choice. Must be
        a pure function of ``view`` (a replay calls it again and must take the same path)."""
        return None

    def compile_graph(self, checkpointer: Any) -> Any | None:
        """The compiled LangGraph graph this spec's runs use, with ``checkpointer``; None (the
        default) for Chainproof's engine (``graphs/_engine/compile.py``). A graph made by
        :func:`chainproof.instrument` returns the developer's own graph, wrapped."""
        return None

    def initial_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """The first state of a run, given the engine's (``run_id``, ``graph``, ``goal``,
        ``inputs`` in the value contract's JSON form, ``step``, ``budget``, ``cache``). Default:
        that state; an instrumented graph starts from the decoded inputs."""
        return state

    def render_report(self, view: ChainView) -> str:
        """Override: the final Markdown report. Every string ``view`` gives (inputs, findings,
        decision, approvals…) is already HTML-escaped and free of control characters, so text a
        model, a tool or a person wrote reads as text; escape Markdown syntax where it matters."""
        raise NotImplementedError

    def report_charts(self, view: ChainView) -> dict[str, str]:
        """Override: pictures of the finished run, ``{name: SVG text}`` (name: lower-case letters,
        digits, ``_`` or ``-``). The report node writes each to ``reports_dir/RUN_ID/NAME.svg``
        beside the report (which may link ``RUN_ID/NAME.svg``) and records its SHA-256; the HTML
        export embeds them. Default: none."""
        return {}

    def alerts(self, view: ChainView) -> list[dict[str, Any]]:
        """Override: alerts the finished run raises, each a JSON object with at least ``level``
        (e.g. ``high``), ``subject`` (what it is about) and ``message`` (one line). The report node
        records them in its step (``output["alerts"]``, part of the audit log's Merkle tree), and
        ``chainproof alerts`` lists them with the run id. Default: none."""
        return []

    def render_terminated(self, view: ChainView) -> str:
        """The report of a run a review terminated: the goal, why it stopped, the best answer
        available (the decision asked after the stop, as approved or edited) and the findings so
        far. Override for a graph-specific layout."""
        term = view.termination or {}
        lines = [f"# Run {view.run_id} terminated", "", f"Goal: {view.goal}", "",
                 f"**Terminated after {view.done_count} plan steps:** {term.get('reason', 'no reason recorded')}",
                 "", "## Best answer available", ""]
        decision = view.decision
        lines += [f"- **{k}**: {v}" for k, v in (decision or {}).items()] or ["- none (no decision was reached)"]
        if view.decision_fallback:
            lines.append("- (the graph's fallback: the model gave no valid answer)")
        lines += ["", "## Findings so far", ""]
        lines += [f"- **{f.title}**: {f.summary}" for f in view.findings] or ["- none"]
        return "\n".join(lines) + "\n"


def decide_attempts_of(spec: Any) -> int:
    """``spec.decide_attempts`` (3 for a graph without one, e.g. an instrumented one); raises
    ``PlanError`` naming it when it is not a whole number of at least 1 (checked when a run starts,
    before anything is recorded, and again at the decide node)."""
    attempts = getattr(spec, "decide_attempts", MAX_ATTEMPTS)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise PlanError(f"{type(spec).__name__}.decide_attempts: expected a whole number of at least 1, got {attempts!r}")
    return attempts
