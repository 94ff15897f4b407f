"""The engine's nodes: module-level ``node(state, runtime) -> update`` functions; the
``after_*`` functions are the conditional edges. ``runtime.context`` is the run's
:class:`~chainproof.graphs._engine.context.ChainContext`."""
