"""Trust for an existing LangGraph graph: :func:`instrument` takes a developer's own
``StateGraph`` builder, unchanged, and returns a graph Chainproof runs like any spec (``register``
it, or name it in the ``graphs`` setting or a ``chainproof.graphs`` entry point), so every CLI
command works for it: ``run``, ``pending``, ``approve|reject|edit``, ``resume``, ``show``,
``verify``, ``replay``, ``export``.

What each node run gets (``graphs/_engine/instrumented.py``): an audited step with every chat-model
and LangChain tool call inside it (LangChain callbacks), the node's effort applied to the chat
models it calls (``graphs/_engine/node_calls.py``), and its LangGraph ``interrupt()`` calls bound
as Chainproof approval requests. What a replay cannot reproduce is in the README ("Trust for an
existing graph").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, get_type_hints, is_typeddict

from langgraph.graph import StateGraph
from pydantic import BaseModel, create_model

from chainproof.agents.config import EFFORTS, Effort
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.values import decode_value


class InstrumentedGraph(ChainSpec[BaseModel]):
    """A developer's LangGraph graph as a Chainproof graph (made by :func:`instrument`; one
    subclass per call, holding ``name`` and ``inputs_model`` as class attributes as the registry
    reads them). ``max_steps`` bounds the run's super-steps (LangGraph's ``recursion_limit`` is
    derived from it; default 100, as for specs). The engine's plan, decision and report hooks do
    not apply: the developer's nodes and edges are the graph."""

    review_every: ClassVar[int] = 0
    uses_chainproof_models: ClassVar[bool] = False
    inputs_given_only: ClassVar[bool] = True

    def __init__(self, builder: StateGraph, *, goal: str | Callable[[dict[str, Any]], str] | None,
                 efforts: Mapping[str, Effort], default_effort: Effort, policy: ApprovalPolicy | None,
                 context: Callable[[], Any] | None):
        self.builder, self._goal, self.efforts, self.default_effort = builder, goal, dict(efforts), default_effort
        self._policy, self._context = policy, context

    def compile_graph(self, checkpointer: Any) -> Any:
        from chainproof.graphs._engine.instrumented import InstrumentedApp, compile_instrumented

        return InstrumentedApp(compile_instrumented(self.builder, checkpointer), self.efforts, self.default_effort,
                               self._context() if self._context is not None else None,
                               review_every=self.review_every, review_effort=self.review_effort or "medium")

    def initial_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """The graph's input: the run's inputs, decoded (the value contract's types)."""
        return dict(decode_value(state["inputs"], where="inputs"))

    def goal(self, inputs: dict[str, Any]) -> str:
        if callable(self._goal):
            return self._goal(inputs)
        return self._goal or f"Run graph {self.name} on its inputs."

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        return []

    def approval_policy(self) -> ApprovalPolicy:
        return self._policy or ApprovalPolicy()


def _inputs_model(name: str, schema: Any) -> type[BaseModel] | None:
    """A pydantic model of a graph's input schema (a pydantic model is used as is; a TypedDict's
    required keys are required fields, its others optional), or None for other schemas."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema
    if not is_typeddict(schema):
        return None
    hints = get_type_hints(schema)
    required = getattr(schema, "__required_keys__", frozenset(hints))
    fields: dict[str, Any] = {k: (hint, ... if k in required else None) for k, hint in hints.items()}
    return create_model(f"{schema.__name__}Inputs", __doc__=f"Inputs of graph {name}.", **fields)


def instrument(builder: StateGraph, *, name: str, description: str = "",
               goal: str | Callable[[dict[str, Any]], str] | None = None, efforts: Mapping[str, Effort] | None = None,
               default_effort: Effort = "medium", inputs_model: type[BaseModel] | None = None,
               approval_policy: ApprovalPolicy | None = None, max_steps: int = 100,
               context: Callable[[], Any] | None = None, review_every: int = 0,
               review_effort: Effort = "medium") -> InstrumentedGraph:
    """Chainproof's trust features for a developer's own LangGraph ``StateGraph`` ``builder``
    (not modified; compiled again for each run with Chainproof's checkpointer).

    Args:
        name: the graph's registry name (``chainproof run NAME``).
        description: one line for ``chainproof graphs`` (default: the goal).
        goal: the run's goal (text, or a function of the inputs); default ``Run graph NAME ...``.
        efforts: node name -> effort (``low|medium|high``) applied to the chat models the node
            calls (the run's effort profiles: ``max_tokens``, ``temperature`` or
            ``reasoning_effort``); ``--effort`` overrides every node.
        default_effort: the effort of the other nodes (``medium``, the middle profile, is the
            default: no routing rule can read a node's intent from its code).
        inputs_model: the pydantic model of the run's inputs; default: from the builder's input
            schema (a pydantic model, or a TypedDict: required keys required).
        approval_policy: who may decide the graph's interrupts (default: anyone named).
        max_steps: the super-step budget (LangGraph's ``recursion_limit`` is derived from it).
        context: a zero-argument factory of the graph's own LangGraph context (``context_schema``),
            called once per stream; default none.
        review_every: N of an optional goal review every N node runs (super-steps of a graph whose
            nodes run one at a time); 0 (the default): none. The review asks Chainproof's configured
            model (``continue`` / ``replan``, recorded with its advice / ``terminate``, a clean end
            with the reason; ``graphs/_engine/graph_review.py``) and is replayed from the record.
        review_effort: the review's effort (default ``medium``, as the engine's review node).

    Returns an :class:`InstrumentedGraph` to ``register(name, graph)`` or expose as an entry
    point. Raises ``ValueError`` naming the field: a node in ``efforts`` the builder does not
    have, or an effort that is not ``low|medium|high``; ``TypeError`` when ``builder`` is not a
    ``StateGraph``.
    """
    if not isinstance(builder, StateGraph):
        raise TypeError(f"instrument: builder must be a langgraph StateGraph, got {type(builder).__name__}")
    efforts = dict(efforts or {})
    unknown = sorted(set(efforts) - set(builder.nodes))
    if unknown:
        raise ValueError(f"efforts: no node {', '.join(map(repr, unknown))} in the graph; its nodes are "
                         f"{', '.join(sorted(builder.nodes))}")
    for node, effort in [*efforts.items(), ("default_effort", default_effort)]:
        if effort not in EFFORTS:
            raise ValueError(f"efforts: {node!r} has effort {effort!r}; expected one of {', '.join(EFFORTS)}")
    if max_steps < 1:
        raise ValueError(f"max_steps: must be at least 1, got {max_steps}")
    if review_every < 0:
        raise ValueError(f"review_every: must be 0 (no review) or more, got {review_every}")
    if review_effort not in EFFORTS:
        raise ValueError(f"review_effort: expected one of {', '.join(EFFORTS)}, got {review_effort!r}")
    attrs = {"name": name, "description": description or (goal if isinstance(goal, str) else "")
             or f"LangGraph graph {name}, instrumented", "max_steps": max_steps, "review_every": review_every,
             "review_effort": review_effort, "uses_chainproof_models": review_every > 0,
             "inputs_model": inputs_model or _inputs_model(name, builder.input_schema)}
    cls = type(f"Instrumented[{name}]", (InstrumentedGraph,), attrs)
    return cls(builder, goal=goal, efforts=efforts, default_effort=default_effort, policy=approval_policy,
               context=context)


__all__ = ["InstrumentedGraph", "instrument"]
