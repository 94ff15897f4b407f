"""Wiring: the engine's nodes and edges as one compiled LangGraph graph.

Shape (a loop over a few nodes, not one node per step: with LangGraph every distinct node adds
``channel_versions`` entries to every checkpoint, and an ever-growing message list makes
checkpoint size quadratic; see ``bench/`` and the README)::

    START → plan → act ⇄ observe ⇄ review → decide ─(Send × N)→ approve → settle → report → END
                 └→ agent ⟲ ⇄ review  │   └─(no approval needed)──────────────→ report
                      │ (step ended) → observe
                      ⇄ approve_tool (Send × N: calls of requires_approval tools wait for a person)
                 └→ branch_act (Send × n) → gather → branch_observe (Send × n) → merge → (as after observe)
                      (a parallel group of independent plan steps; nodes/parallel.py)
                 └→ condition → (the step, or past it: a step with ``when``; nodes/condition.py)
                 └→ argue (Send × N) → debate_round ⟲ (K rounds) → judge → (as after observe)
                      (a debate step; nodes/debate.py)
                      └─(review: terminate)──────────────────────────────────────→ report

(``agent`` runs one iteration of an agent plan step per super-step and loops on itself.)
            ↑                                                        │
            └──────────── (rejected, policy on_reject="replan") ─────┘

Every node's state update passes through the ledger's redactor (secrets never reach the
checkpointer, later prompts or the report), then the cost guards' ``after_step`` (budget alerts).
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import Any, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.nodes.agent import after_agent, agent
from chainproof.graphs._engine.nodes.condition import after_condition, condition
from chainproof.graphs._engine.nodes.debate import after_judge, after_round, argue, debate_round, judge
from chainproof.graphs._engine.nodes.decide import after_decide, after_settle, approve, decide, settle
from chainproof.graphs._engine.nodes.parallel import after_gather, branch_act, branch_observe, gather, merge
from chainproof.graphs._engine.nodes.plan import after_plan, plan
from chainproof.graphs._engine.nodes.report import report
from chainproof.graphs._engine.nodes.review import after_review, review
from chainproof.graphs._engine.nodes.step import act, after_observe, observe
from chainproof.graphs._engine.state import ChainState
from chainproof.graphs.spec import ChainSpec

NodeFn = Callable[[Any, Runtime[ChainContext]], dict[str, Any]]
"""A node function as written: ``(state or Send payload, runtime) -> state update``."""


class Node(Protocol):
    """A node as added to the graph (LangGraph passes ``runtime`` by keyword)."""

    def __call__(self, state: Any, runtime: Runtime[ChainContext]) -> dict[str, Any]: ...


def redacted(fn: NodeFn) -> Node:
    """``fn`` with its update redacted by ``runtime.context.audit.redactor``, then the budget
    alerts checked (``budgets.after_step``) on the state as updated; not for the ``approve`` tasks
    (``Send`` payloads carry no budget)."""

    @functools.wraps(fn)  # LangGraph reads the node's input schema from fn's signature
    def node(state: Any, runtime: Runtime[ChainContext]) -> dict[str, Any]:
        ctx = runtime.context
        update = ctx.audit.redactor(fn(state, runtime))
        if ctx.budgets is not None and "budget" in state:
            ctx.budgets.after_step({**state, "budget": update.get("budget", state["budget"])}, ctx.progress)
        return update

    return node


def compile_for(spec: ChainSpec, checkpointer: BaseCheckpointSaver | None = None) -> Any:
    """The compiled graph runs of ``spec`` use: its own (``spec.compile_graph``, e.g. an
    instrumented graph), else the engine (:func:`build_graph`)."""
    own = spec.compile_graph(checkpointer)
    return own if own is not None else engine_graph(checkpointer)


_compiled: dict[str, Any] = {}  # "engine" -> the engine graph compiled once, without a checkpointer
_compiled_guard = threading.Lock()


def engine_graph(checkpointer: BaseCheckpointSaver | None = None) -> Any:
    """The engine graph (:func:`build_graph`) with ``checkpointer``: compiled once per process and
    copied for each use (a shallow copy with its own ``checkpointer``; the nodes, channels and
    edges are shared, and LangGraph keeps no run's state on the compiled graph). Compiling took
    ~47 ms of CPU per run advance on a worker, a copy takes microseconds. The graph is the same
    for every spec (the spec travels in the context), so one compilation serves every graph."""
    base = _compiled.get("engine")
    if base is None:
        with _compiled_guard:
            base = _compiled.get("engine")
            if base is None:
                base = _compiled["engine"] = build_graph(None)
    graph = copy.copy(base)
    graph.checkpointer = checkpointer
    return graph


def build_graph(checkpointer: BaseCheckpointSaver | None = None):
    """The compiled engine graph (state :class:`ChainState`, context :class:`ChainContext`).

    The graph is the same for every spec: the spec is part of the context, which every
    ``stream``/``invoke``/resume passes as ``context=ctx`` (it is not checkpointed). The thread id
    must be the run id (``config={"configurable": {"thread_id": run_id}}``).
    """
    builder = StateGraph(ChainState, context_schema=ChainContext)
    nodes: list[tuple[str, NodeFn]] = [("plan", plan), ("act", act), ("agent", agent), ("observe", observe),
                                       ("review", review), ("decide", decide), ("approve", approve), ("settle", settle),
                                       ("report", report), ("approve_tool", approve), ("branch_act", branch_act),
                                       ("gather", gather), ("branch_observe", branch_observe), ("merge", merge),
                                       ("condition", condition), ("argue", argue), ("debate_round", debate_round),
                                       ("judge", judge)]
    for name, fn in nodes:
        builder.add_node(name, redacted(fn))
    builder.add_edge(START, "plan")
    # where the next plan step (or parallel group) runs, or its condition is evaluated first
    steps = ["act", "agent", "branch_act", "condition", "argue"]
    builder.add_conditional_edges("plan", after_plan, [*steps, "decide"])
    builder.add_edge("act", "observe")
    builder.add_conditional_edges("agent", after_agent, ["agent", "review", "observe", "approve_tool"])
    builder.add_edge("approve_tool", "agent")  # the held tool calls run as decided
    builder.add_conditional_edges("observe", after_observe, [*steps, "review", "decide"])
    builder.add_edge("branch_act", "gather")
    builder.add_conditional_edges("gather", after_gather, ["branch_observe"])
    builder.add_edge("branch_observe", "merge")
    builder.add_conditional_edges("merge", after_observe, [*steps, "review", "decide"])
    builder.add_conditional_edges("condition", after_condition, [*steps, "decide"])
    builder.add_edge("argue", "debate_round")
    builder.add_conditional_edges("debate_round", after_round, ["argue", "judge"])
    builder.add_conditional_edges("judge", after_judge, [*steps, "review", "decide"])
    builder.add_conditional_edges("review", after_review, [*steps, "observe", "decide", "report"])
    builder.add_conditional_edges("decide", after_decide, ["approve", "report"])
    builder.add_edge("approve", "settle")
    builder.add_conditional_edges("settle", after_settle, ["plan", "report"])
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer)
