"""The private engine: one LangGraph ``StateGraph`` that runs any :class:`~chainproof.graphs.spec.ChainSpec`.

Layout (each node is a module-level function ``node(state, runtime)`` that receives the per-run
:class:`~chainproof.graphs._engine.context.ChainContext` as ``runtime.context``, LangGraph's
``context_schema`` convention):

* ``context``: ``ChainContext`` and the ports it holds (models, tools, ledger, guards, cache);
* ``state``: ``ChainState`` and the planning helpers (remaining plan, findings window);
* ``prompts``: the bounded step prompt;
* ``nodes/``: ``plan``, ``step`` (act, observe), ``review`` (goal and budget review),
  ``decide`` (decide, approve, settle), ``report``;
* ``compile``: ``build_graph``, the wiring;
* ``approvals``: request ids and the binding checks of a human decision;
* ``replay_ports``: the record-backed ports a replay substitutes.

Nothing here is public API; import from ``chainproof`` / ``chainproof.graphs``.
"""
