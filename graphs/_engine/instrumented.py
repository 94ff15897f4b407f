"""A developer's own LangGraph ``StateGraph`` run with Chainproof's audit, effort and approvals
(the engine side of :func:`chainproof.graphs.instrument.instrument`).

:func:`compile_instrumented` rebuilds the developer's builder through LangGraph's public builder
API (``add_node`` / ``add_edge`` / ``add_conditional_edges``; the builder itself is not touched)
with every node wrapped by :func:`run_node`, and compiles it with the run's checkpointer. One node
run is one audited super-step:

* its ``steps`` row (node ``NAME``, kind ``node``, the node's effort and why, the SHA-256 of the
  state it read, the update it returned) and one ``model_calls`` / ``tool_calls`` row per call made
  inside it (:mod:`chainproof.graphs._engine.node_calls`: LangChain callbacks, and the node's
  effort applied to its chat models);
* a LangGraph ``interrupt(value)`` inside the node becomes a Chainproof approval request, bound as
  the engine's are (``graphs/_engine/approvals.py``): subject ``node:NAME``, ``proposed`` the
  interrupt's value (a dict; any other value as ``{"value": ...}``), its SHA-256, a request id of
  (run, step number), the checkpoint in the ``run_paused`` event. The paused execution is recorded
  as its own step (what it called, ``output.paused_for``) with a ``requested`` approvals row; the
  request's ``step_no`` is the next number, where its human decision is recorded. So ``chainproof
  pending|approve|reject|edit`` answer it and the interrupt returns the recorded
  :class:`~chainproof.graphs.approval.ApprovalAnswer` as a dict (``action``, ``approver``,
  ``comment``, ``edited``, ``request_id``, ``decided_at``). When the node runs again on resume
  (LangGraph re-runs a paused node from its first line), the human decision is recorded first —
  only one the audit store holds, as the engine's ``approve`` node checks — then the node's second
  execution is its own step.

Step numbers come from the ledger (the run's highest ``steps`` number, plus those reserved in this
stream), so a replay on a scratch store numbers the same way; nodes of one super-step that run
concurrently take numbers in the order they start (README: "Trust for an existing graph").
Chainproof's context rides in ``config["configurable"]`` (:data:`CONTEXT_KEY`), so a graph's own
``context_schema`` keeps its context; compiled without Chainproof's runner the wrapped nodes just
call the developer's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from langchain_core.load import dumpd
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import merge_configs, set_config_context
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphInterrupt
from langgraph.graph import StateGraph
from langgraph.types import Interrupt
from pydantic import BaseModel

from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.errors import UnsupportedValue
from chainproof.graphs._engine.approvals import request_id
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.node_calls import NodeCallsHandler, NodeScope, scoped, unscoped
from chainproof.graphs.approval import ApprovalAnswer, ApprovalRefused, ApprovalRequest
from chainproof.graphs.recorder import StepRecorder
from chainproof.values import encode_value

CONTEXT_KEY = "__chainproof_node_runs"
"""The ``config["configurable"]`` key of the stream's :class:`NodeRuns`."""
SCRATCHPAD_KEY = "__pregel_scratchpad"
"""LangGraph's per-task scratchpad (``langgraph._internal._constants.CONFIG_KEY_SCRATCHPAD``):
its ``resume`` list holds the answers a re-run node's ``interrupt()`` calls will return."""


@dataclass
class NodeRuns:
    """One stream's view of the run for the wrapped nodes: the engine's ``ctx``, each node's
    effort (``efforts``; others get ``default_effort``; ``--effort`` wins) and the step numbers
    reserved in this stream."""

    ctx: ChainContext
    efforts: Mapping[str, str]
    default_effort: str
    _reserved: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self, run_id: str) -> int:
        """The next free step number of ``run_id`` (after the ledger's and those reserved)."""
        with self._lock:
            self._reserved = max(self.ctx.audit.last_step_no(run_id), self._reserved) + 1
            return self._reserved

    def reserve(self, step_no: int) -> None:
        with self._lock:
            self._reserved = max(self._reserved, step_no)

    def effort_of(self, node: str) -> tuple[str, str]:
        """``(effort, reason)`` of ``node``'s model calls."""
        if self.ctx.effort_override is not None:
            return self.ctx.effort_override, "override: --effort for the whole run"
        if node in self.efforts:
            return self.efforts[node], f"static: instrument(efforts={{{node!r}: ...}})"
        return self.default_effort, "default: instrument(default_effort=...)"


def jsonable(value: Any) -> Any:
    """``value`` as JSON for the audit row: the value contract's form when it has one, else
    LangChain's serialised form for its objects (messages), else pydantic's JSON, else ``str``."""
    try:
        return encode_value(value, where="node state")
    except UnsupportedValue:
        return json.loads(json.dumps(value, default=_fallback))


def _fallback(obj: Any) -> Any:
    if hasattr(obj, "to_json") and hasattr(obj, "lc_id"):
        return dumpd(obj)
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    return str(obj)


def run_node(runs: NodeRuns, name: str, inner: Runnable, state: Any, config: RunnableConfig) -> Any:
    """Run the developer's node ``inner`` as one audited step (see the module docstring)."""
    ctx = runs.ctx
    run_id = config["configurable"]["thread_id"]
    _record_answers(runs, run_id, name, config)
    effort, reason = runs.effort_of(name)
    handler = NodeCallsHandler(effort)
    pause: GraphInterrupt | None = None
    with StepRecorder(ctx.audit, run_id, runs.next_step(run_id), name, "node", f"Node {name}", effort=effort,
                      effort_reason=reason, pricing=ctx.pricing, progress=ctx.progress) as rec:
        rec.inputs = {"node": name, "state_sha256": sha256_hex(jsonable(state))}
        token = scoped(NodeScope(effort, ctx.profiles[effort], getattr(ctx.models, "recorded_reply", None)))
        try:
            child = merge_configs(config, {"callbacks": [handler]})
            with set_config_context(child) as context:  # what the node's own calls inherit (LangChain)
                result = context.run(inner.invoke, state, child)
        except GraphInterrupt as exc:
            pause = _bind(runs, rec, name, exc)
        finally:
            unscoped(token)
            rec.model_calls(handler.calls)
            for t in handler.tools:
                rec.tool_call(t.tool, jsonable(t.args), jsonable(t.result if isinstance(t.result, dict)
                                                                   else {"output": t.result}), t.error, t.latency_s)
        if not handler.calls:  # no model call: the step has no effort to show
            rec.effort = rec.effort_reason = None
        rec.output = ({"paused_for": [i.value["request_id"] for i in pause.args[0]]} if pause is not None
                      else {"update": ctx.audit.redactor(jsonable(result))})
    if pause is not None:
        raise pause
    return result


def _bind(runs: NodeRuns, rec: StepRecorder, name: str, exc: GraphInterrupt) -> GraphInterrupt:
    """The node's interrupts as approval requests (recorded on ``rec``'s step as ``requested``),
    under the same interrupt ids; their step numbers follow ``rec``'s and are reserved."""
    bound = []
    for i, raised in enumerate(exc.args[0] if exc.args else ()):
        value = raised.value
        step_no = rec.step_no + 1 + i
        proposed = runs.ctx.audit.redactor(encode_value(value if isinstance(value, dict) else {"value": value},
                                                        where=f"interrupt of node {name}"))
        question = value.get("question") if isinstance(value, dict) else None
        request = ApprovalRequest(
            request_id=request_id(rec.run_id, step_no), run_id=rec.run_id, node=name, subject=f"node:{name}",
            question=question if isinstance(question, str) and question else f"Approve what node {name!r} proposes?",
            reasons=[f"node {name} asked for a person's decision (LangGraph interrupt)"], step_no=step_no,
            proposed=proposed, proposed_hash=sha256_hex(proposed), created_at=datetime.now(UTC),
        ).model_dump(mode="json")
        rec.extra_records.append(ApprovalRecord(
            step_no=rec.step_no, request_id=request["request_id"], action="requested", approver=None, comment=None,
            proposed_hash=request["proposed_hash"], payload=request))
        runs.reserve(step_no)
        bound.append(Interrupt(value=request, id=raised.id))
    return GraphInterrupt(tuple(bound))


def _record_answers(runs: NodeRuns, run_id: str, name: str, config: RunnableConfig) -> None:
    """Before a re-run of a paused node: record the human decision of each answer its interrupts
    will return that has no step yet, after checking the audit store recorded that decision."""
    scratchpad = config["configurable"].get(SCRATCHPAD_KEY)
    answers = [a for a in (getattr(scratchpad, "resume", None) or []) if isinstance(a, dict) and "request_id" in a]
    if not answers:
        return
    audit = runs.ctx.audit
    last = audit.last_step_no(run_id)
    for raw in answers:
        answer = ApprovalAnswer.model_validate(raw)
        origin = audit.request_record(answer.request_id)
        if origin is None:
            raise ApprovalRefused(f"request {answer.request_id}: no such approval request in run {run_id}")
        request = ApprovalRequest.model_validate(origin.payload)
        if request.step_no <= last:
            continue  # recorded when the node ran again after this answer
        recorded = audit.decision_for(answer.request_id)
        if recorded is None or (recorded.action, recorded.approver) != (answer.action, answer.approver):
            raise ApprovalRefused(
                f"request {answer.request_id}: the answer was not recorded in the audit store; answer through "
                "Chainproof.decide (chainproof approve|reject|edit), which records it first")
        with StepRecorder(audit, run_id, request.step_no, "approve", "approval",
                          f"Human decision on node {name}: {answer.action}", progress=runs.ctx.progress) as rec:
            rec.inputs = {"request_id": request.request_id, "subject": request.subject}
            rec.output = answer.model_dump(mode="json")
        runs.reserve(request.step_no)


def _wrapped(name: str, inner: Runnable) -> Any:
    def node(state: Any, config: RunnableConfig) -> Any:
        runs = config.get("configurable", {}).get(CONTEXT_KEY)
        if runs is None:  # compiled by Chainproof but invoked outside its runner: the developer's node as is
            return inner.invoke(state, config)
        return run_node(runs, name, inner, state, config)

    node.__name__ = name
    return node


class InstrumentedApp:
    """The compiled instrumented graph as Chainproof's runner drives it: ``invoke(payload, config,
    context=ChainContext)`` hands the wrapped nodes a fresh :class:`NodeRuns` in ``configurable``
    and the graph its own ``graph_context`` (LangGraph's ``context=``); everything else
    (``get_state``, ``checkpointer``, ...) is the compiled graph's."""

    state_is_the_developers = True
    """The state holds the developer's keys only (no ``budget``: the run's is in its ``run_started`` event)."""

    def __init__(self, graph: Any, efforts: Mapping[str, str], default_effort: str, graph_context: Any = None,
                 review_every: int = 0, review_effort: str = "medium"):
        self.graph, self.efforts, self.default_effort, self.graph_context = graph, efforts, default_effort, graph_context
        self.review_every, self.review_effort = review_every, review_effort

    def invoke(self, payload: Any, config: dict[str, Any], *, context: ChainContext, **kwargs: Any) -> Any:
        """Run the graph until it pauses or ends; with ``review_every`` (N), a goal review after
        each super-step that brings the node runs since the last review to N or more
        (:mod:`chainproof.graphs._engine.graph_review`); a ``terminate`` ends the run there."""
        runs = NodeRuns(context, self.efforts, self.default_effort)
        config = {**config, "configurable": {**config.get("configurable", {}), CONTEXT_KEY: runs}}
        if not self.review_every:
            return self.graph.invoke(payload, config, context=self.graph_context, **kwargs)
        from langgraph.graph import END

        from chainproof.graphs._engine.graph_review import goal_review, node_runs_since_review

        run_id = config["configurable"]["thread_id"]
        latest = None
        for values in self.graph.stream(payload, config, context=self.graph_context, stream_mode="values", **kwargs):
            latest = values
            done, _ = node_runs_since_review(context, run_id)
            if len(done) < self.review_every:
                continue
            decision = goal_review(context, run_id, runs.next_step(run_id), done, self.review_effort)
            if decision.decision == "terminate":  # a clean end: nothing left to run, the reason recorded
                self.graph.update_state(config, None, as_node=END)
                break
        return latest

    def __getattr__(self, name: str) -> Any:
        return getattr(self.graph, name)


def compile_instrumented(builder: StateGraph, checkpointer: BaseCheckpointSaver | None) -> Any:
    """A compiled copy of ``builder`` with every node wrapped (see the module docstring). Raises
    ``ValueError`` for a builder feature it cannot copy (error-handler nodes)."""
    copy = StateGraph(builder.state_schema, context_schema=builder.context_schema,
                      input_schema=builder.input_schema, output_schema=builder.output_schema)
    for name, spec in builder.nodes.items():
        if getattr(spec, "is_error_handler", False) or getattr(spec, "error_handler_node", None):
            raise ValueError(f"instrument: node {name!r} uses an error handler, which instrument() cannot wrap yet")
        copy.add_node(name, _wrapped(name, cast(Runnable, spec.runnable)), input_schema=spec.input_schema, metadata=spec.metadata,
                      retry_policy=spec.retry_policy, cache_policy=spec.cache_policy, defer=spec.defer,
                      destinations=spec.ends or None)
    for start, end in sorted(builder.edges):
        copy.add_edge(start, end)
    for starts, end in sorted(builder.waiting_edges):
        copy.add_edge(list(starts), end)
    for source, branches in builder.branches.items():
        for branch in branches.values():
            copy.add_conditional_edges(source, branch.path, branch.ends)
    return copy.compile(checkpointer=checkpointer)


__all__ = ["CONTEXT_KEY", "InstrumentedApp", "NodeRuns", "compile_instrumented", "jsonable", "run_node"]
