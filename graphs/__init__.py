"""Graphs: the authoring API (``spec``: ``ChainSpec``, ``PlanStep``; ``view``: ``ChainView``;
``tool``; ``approval_policy``), graph discovery (``registry``), policies (routing, budgets, reviews),
replay, the bundled due-diligence graph, and the private engine (``_engine``). The public names
are re-exported by :mod:`chainproof` (``__all__``); ``_engine`` is private. Importing this package
imports nothing heavy."""

__all__: list[str] = []
