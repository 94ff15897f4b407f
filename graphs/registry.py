"""Graph registry: graph name → :class:`~graphs.spec.ChainSpec` factory.

Built-in graphs register here; a developer adds a graph with :func:`register` (tests do too).
"""

from __future__ import annotations

from collections.abc import Callable

from chainproof.graphs.spec import ChainSpec

_GRAPHS: dict[str, Callable[[], ChainSpec]] = {}


def register(name: str, factory: Callable[[], ChainSpec]) -> None:
    """Register ``factory`` under ``name`` (replacing an earlier registration of that name)."""
    _GRAPHS[name] = factory


def _builtins() -> None:
    if "due-diligence" not in _GRAPHS:
        from chainproof.graphs.due_diligence import DueDiligence

        _GRAPHS["due-diligence"] = DueDiligence


def graph_names() -> list[str]:
    _builtins()
    return sorted(_GRAPHS)


def get_spec(name: str) -> ChainSpec:
    """A fresh spec for graph ``name``. Raises ``KeyError`` listing the known graphs."""
    if name not in _GRAPHS:
        _builtins()
    try:
        return _GRAPHS[name]()
    except KeyError:
        raise KeyError(f"unknown graph {name!r}; known graphs: {', '.join(sorted(_GRAPHS))}") from None
