"""The per-run context of the engine's nodes, and the ports it is made of.

LangGraph passes it to every node as ``runtime.context`` (``StateGraph(ChainState,
context_schema=ChainContext)``; ``graph.stream(..., context=ctx)``; see ``langgraph/runtime.py``).
It is not checkpointed: every ``stream``/``invoke`` (a start, a resume, a replay) passes it again.
Only :mod:`chainproof._wiring` builds one, from ``Settings`` (live runs) or from the record (replay).

The ports are Protocols so that a replay can substitute record-backed implementations
(``graphs/_engine/replay_ports.py``) without the nodes knowing: the same shape as PydanticAI's
``GraphAgentDeps`` (typed dependencies handed to each node) and LangGraph's ``Runtime[Context]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from langchain_core.tools import BaseTool

from chainproof.agents.calls import model_name_of
from chainproof.agents.config import Effort, EffortProfile, ModelSettings
from chainproof.agents.pricing import Price, default_prices
from chainproof.checkpoints.audit_hashing import Redactor
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.model_access import CacheSource, ModelAccess
from chainproof.graphs.recorder import StepRecorder
from chainproof.graphs.routing import BudgetShare, Route, RoutingPolicy, Task
from chainproof.graphs.spec import ChainSpec
from chainproof.graphs.tool import APPROVAL_TAG, SENSITIVE_TAG

__all__ = ["CacheSource", "ChainContext", "Guards", "Invocable", "Ledger", "ModelSource"]


class ModelSource(Protocol):
    """The models the nodes call (:class:`chainproof.agents.models.ModelProvider`): a chat model per
    effort, and one bound to a JSON schema. ``preflight()`` (optional on providers; the app calls it
    before a run is recorded) checks the model is usable and raises ``LocalModelUnavailable`` /
    ``ValueError``; replay's provider has none. Replay's provider also has ``recorded_reply(messages,
    effort)``, the recorded answer to a call a developer's model makes in an instrumented node."""

    def chat(self, effort: str) -> Any: ...

    def json_chat(self, effort: str, schema: Any) -> Any: ...


class Invocable(Protocol):
    """What ``act`` needs of a tool: ``invoke(args) -> result`` (LangChain tools qualify)."""

    def invoke(self, input: dict[str, Any]) -> Any: ...


class Ledger(Protocol):
    """The audit calls the engine makes (:class:`chainproof.checkpoints.audit.AuditStore` in live
    runs; a scratch in-memory store in a replay): the redactor every state update passes through,
    appends (by :class:`~chainproof.graphs.recorder.StepRecorder`, with the step's reasoning-cache
    entries as ``riders``), and the recorded decision an approval answer must match."""

    redactor: Redactor

    def append(self, run_id: str, *records: Any, riders: Sequence[Any] = (), prepare: Any = None) -> Any: ...

    def decision_for(self, request_id: str) -> Any: ...

    def run_cost_usd(self, run_id: str) -> float | None: ...

    def last_step_no(self, run_id: str) -> int: ...

    def request_record(self, request_id: str) -> Any: ...

    def records_of(self, run_id: str, table: Any) -> list[Any]: ...

    def get_run(self, run_id: str) -> Any: ...


class Guards(Protocol):
    """Cost budgets as the nodes see them (:class:`chainproof.graphs.budgets.CostGuard` in live runs;
    replay serves the recorded shares and never pauses)."""

    def share(self, state: Mapping[str, Any]) -> BudgetShare | None: ...

    def check(self, state: Mapping[str, Any], *, node: str, step_no: int, model: str, effort: str,
              messages: list[Any], profile: EffortProfile, attempts: int = 1) -> dict[str, Any]: ...

    def after_step(self, state: Mapping[str, Any],
                   progress: Callable[[Mapping[str, Any]], None] | None = None) -> None: ...


@dataclass
class ChainContext:
    """What the nodes need besides the state (formerly ``orchestrator.Runtime``).

    Attributes (built by :mod:`chainproof._wiring`):
        spec: the graph's spec instance (the plan comes from this instance, never a fresh one).
        models: the model provider (:class:`ModelSource`).
        audit: the ledger (:class:`Ledger`).
        reports_dir: where ``report`` writes ``RUN_ID.md``.
        effort_override: one effort for every model step (CLI ``--effort``), or None.
        policy: the approval policy (default: ``spec.approval_policy()``); the nodes read the
            resolved one, ``approval_policy``.
        run_cost: run id -> cost so far in USD (default: ``audit.run_cost_usd``, None while any
            call is unpriced); read by the policy's ``cost_above`` conditions. The nodes call the
            resolved one, ``cost_of_run``.
        tools: replaces the spec's tools by name (replay serves recorded results this way).
        write_reports: False renders and hashes the report without writing it (replay).
        routing: decides each step's effort (:mod:`chainproof.graphs.routing`).
        pricing: model -> price per 1M tokens (None: nothing is priced).
        profiles: the effort profiles (output caps for budget projections; part of the cache key).
        cache: the reasoning cache (None: off).
        stream: stream model answers.
        budgets: the cost guards (None: none).
        progress: where the run's progress events go (``StepFinished`` and ``BudgetAlert`` payloads,
            see :mod:`chainproof.types`), called from the node that recorded them; None: nowhere.
            :func:`chainproof._outcome.stream_run` sets it for one stream. A sink rather than
            LangGraph's ``custom`` stream mode: that mode makes LangGraph run every task on its
            thread pool (``stream_writer`` needs a waiter), where a lone task otherwise runs inline.
    """

    spec: ChainSpec
    models: ModelSource
    audit: Ledger
    reports_dir: Path
    effort_override: Effort | None = None
    policy: ApprovalPolicy | None = None
    run_cost: Callable[[str], float | None] | None = field(default=None, repr=False)
    tools: Mapping[str, Invocable] | None = None
    write_reports: bool = True
    routing: RoutingPolicy = field(default_factory=RoutingPolicy)
    pricing: dict[str, Price] | None = field(default_factory=default_prices)
    profiles: Mapping[str, EffortProfile] = field(
        default_factory=lambda: {str(k): v for k, v in ModelSettings().profiles.items()})
    cache: CacheSource | None = None
    stream: bool = False
    budgets: Guards | None = None
    progress: Callable[[Mapping[str, Any]], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.approval_policy: ApprovalPolicy = self.policy or self.spec.approval_policy()
        self.cost_of_run: Callable[[str], float | None] = self.run_cost or self.audit.run_cost_usd
        self.policy, self.run_cost = self.approval_policy, self.cost_of_run
        self.access = ModelAccess(self.profiles, self.cache, self.stream)
        spec_tools = {t.name: t for t in self.spec.tools()}
        tools: Mapping[str, Invocable] = self.tools if self.tools is not None else spec_tools
        self.tool_map: dict[str, Invocable] = dict(tools)
        self.tool_defs: dict[str, BaseTool] = spec_tools  # schemas bound to agents' models (replay too)
        self.sensitive = sorted(name for name, t in spec_tools.items() if SENSITIVE_TAG in (t.tags or []))
        self.approval_tools = frozenset(name for name, t in spec_tools.items() if APPROVAL_TAG in (t.tags or []))

    def route(self, state: Mapping[str, Any], task: Task, static: Effort | None,
              static_where: str = "the plan step") -> Route:
        """The effort of a model step and why (:class:`~chainproof.graphs.routing.RoutingPolicy`:
        override > static > rules > complexity, then the budget cap)."""
        share = self.budgets.share(state) if self.budgets else None
        return self.routing.route(task, override=self.effort_override, static=static, static_where=static_where,
                                  budget=share)

    def guard(self, state: Mapping[str, Any], node: str, effort: Effort, model: Any, messages: list[Any],
              attempts: int = 1) -> dict[str, Any]:
        """The cost-budget check before a node's model calls (pauses when they may not fit); the
        state update to merge into the node's. Call it before any side effect of the node."""
        if self.budgets is None:
            return {}
        return self.budgets.check(state, node=node, step_no=state.get("step", 0) + 1, model=model_name_of(model),
                                  effort=effort, messages=messages, profile=self.profiles[effort], attempts=attempts)

    def uses_cache(self, state: Mapping[str, Any], key: str) -> bool:
        """Whether a model step may use the reasoning cache: on for the run (``state["cache"]``,
        default on) and ``key`` (a plan step id, ``review`` or ``decide``) not in ``spec.uncached``."""
        return bool(state.get("cache", True)) and key not in self.spec.uncached

    def recorder(self, state: Mapping[str, Any], node: str, kind: str, title: str, **kw: Any) -> StepRecorder:
        """The :class:`StepRecorder` of the next super-step of ``state``'s run."""
        return StepRecorder(self.audit, state["run_id"], state.get("step", 0) + 1, node, kind, title,
                            pricing=self.pricing, progress=self.progress, **kw)
