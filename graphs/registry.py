"""Where graphs come from: graph name → :class:`~chainproof.graphs.spec.ChainSpec`.

Three sources, tried in this order for a name:

1. :func:`register` in the current process (tests, notebooks, a script that builds its own
   ``Chainproof``);
2. ``module:attr`` paths from the ``graphs`` setting (``CHAINPROOF_GRAPHS='["myapp.triage:Triage"]'``
   or ``graphs = [...]`` in ``chainproof.toml``), handed over by the application with
   :func:`add_paths`;
3. the entry-point group ``chainproof.graphs`` of every installed distribution — how a package
   ships a graph, and how the bundled ``due-diligence`` graph is found too::

       [project.entry-points."chainproof.graphs"]
       margin-check = "margin_check.graph:MarginCheck"

The entry-point mechanism is the one pytest plugins and LangGraph's ``langgraph.json`` loaders use
(``importlib.metadata.entry_points``). An attribute may be a ``ChainSpec`` subclass (instantiated
with no arguments), a ``ChainSpec`` instance, or a zero-argument callable returning one. Modules
are imported only when a graph is asked for (or listed), so a broken third-party graph never
breaks commands about other graphs: :func:`get_spec` raises :class:`GraphNotFound` naming it, and
:func:`list_graphs` reports it with its error.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chainproof.errors import GraphNotFound

if TYPE_CHECKING:  # the spec module imports LangChain; this module stays cheap to import
    from pydantic import BaseModel

    from chainproof.graphs.spec import ChainSpec

ENTRY_POINT_GROUP = "chainproof.graphs"

_REGISTERED: dict[str, Callable[[], ChainSpec]] = {}
_PATHS: list[str] = []


@dataclass(frozen=True)
class GraphInfo:
    """One discoverable graph, loaded or not.

    Attributes:
        name: the registry name (``chainproof run NAME``).
        source: where it came from: ``registered``, ``setting graphs: module:attr`` or
            ``entry point module:attr (distribution)``.
        spec: a fresh spec, or None when it failed to load.
        error: why it failed to load (``ImportError: ...``), or None.
    """

    name: str
    source: str
    spec: ChainSpec | None = None
    error: str | None = None

    @property
    def description(self) -> str:
        """The spec's ``description`` (default: the first line of its class docstring)."""
        return self.spec.describe() if self.spec is not None else ""

    @property
    def inputs_model(self) -> type[BaseModel] | None:
        """The spec's pydantic input model, or None when it takes free-form inputs."""
        return type(self.spec).inputs_model if self.spec is not None else None


def _factory(obj: Any, where: str) -> Callable[[], ChainSpec]:
    from chainproof.graphs.spec import ChainSpec

    if isinstance(obj, type) and issubclass(obj, ChainSpec):
        return obj
    if isinstance(obj, ChainSpec):
        return lambda: obj
    if callable(obj):
        def make() -> ChainSpec:
            spec = obj()
            if not isinstance(spec, ChainSpec):
                raise TypeError(f"{where} returned {type(spec).__name__}, expected a ChainSpec")
            return spec

        return make
    raise TypeError(f"{where} is a {type(obj).__name__}, expected a ChainSpec subclass, instance or factory")


def register(name: str, spec: Any) -> None:
    """Register a graph under ``name`` in this process (replacing an earlier registration of that
    name). ``spec``: a ``ChainSpec`` subclass, an instance, or a zero-argument factory; a factory
    is called for every run, so a configured spec (``lambda: Triage(threshold=0.4)``) is honoured.
    Raises ``TypeError`` for anything else."""
    if not name or not isinstance(name, str):
        raise TypeError(f"register: name must be a non-empty string, got {name!r}")
    _REGISTERED[name] = _factory(spec, f"register({name!r})")


def unregister(name: str) -> None:
    """Forget a graph registered with :func:`register` (entry points are not affected)."""
    _REGISTERED.pop(name, None)


def add_paths(paths: Iterable[str]) -> None:
    """Make the graphs at these ``module:attr`` paths discoverable (the ``graphs`` setting).
    Nothing is imported until a graph is asked for. Raises ``ValueError`` naming a path that is
    not of the form ``module:attr``."""
    for path in paths:
        module, _, attr = path.partition(":")
        if not module or not attr:
            raise ValueError(f"graphs: {path!r} is not of the form 'package.module:attribute'")
        if path not in _PATHS:
            _PATHS.append(path)


def _load_path(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _ambiguous(name: str, labels: list[str]) -> Callable[[], Any]:
    def refuse() -> Any:
        raise GraphNotFound(f"graph {name!r} is declared by several installed packages ({'; '.join(labels)}); "
                            "uninstall all but one, or name the one to use in the 'graphs' setting")

    return refuse


def _sources() -> Iterable[tuple[str | None, str, Callable[[], Any]]]:
    """(name or None when only the loaded spec knows it, source label, loader) in lookup order. An
    entry-point name declared by more than one distribution is never resolved silently: its loader
    raises :class:`GraphNotFound` naming every declaration (so an installed package cannot take over
    another's graph, the bundled ``due-diligence`` included)."""
    for path in _PATHS:
        yield None, f"setting graphs: {path}", functools.partial(_load_path, path)
    declared: dict[str, list[Any]] = {}
    for ep in _entry_points():
        declared.setdefault(ep.name, []).append(ep)
    for name, eps in declared.items():
        labels = [f"entry point {ep.value} ({getattr(ep.dist, 'name', None) or '?'})" for ep in eps]
        if len({ep.value for ep in eps}) > 1:
            yield name, " and ".join(labels), _ambiguous(name, labels)
        else:
            yield name, labels[0], eps[0].load


def _load(name: str | None, source: str, loader: Callable[[], Any]) -> GraphInfo:
    try:
        spec = _factory(loader(), source)()
    except GraphNotFound as exc:  # declared twice
        return GraphInfo(name or source, source, None, str(exc))
    except Exception as exc:  # a third-party module may raise anything on import
        return GraphInfo(name or source, source, None, _error(exc))
    spec_name = getattr(spec, "name", None)
    if name is not None and spec_name not in (None, name):
        return GraphInfo(name, source, None, f"the spec's name is {spec_name!r}, not the entry point's {name!r}")
    return GraphInfo(name or str(spec_name), source, spec, None)


def list_graphs() -> list[GraphInfo]:
    """Every discoverable graph, each loaded once, sorted by name; a graph that fails to load is
    listed with its error instead of raising. A name found in several sources is listed once,
    from the first source (registered, then settings, then entry points)."""
    found: dict[str, GraphInfo] = {}
    for name, factory in _REGISTERED.items():
        try:
            found[name] = GraphInfo(name, "registered", factory(), None)
        except Exception as exc:
            found[name] = GraphInfo(name, "registered", None, _error(exc))
    for known, source, loader in _sources():  # known: the name, or None when only the spec knows it
        if known is not None and known in found:
            continue
        info = _load(known, source, loader)
        found.setdefault(info.name, info)
    return sorted(found.values(), key=lambda g: g.name)


def get_spec(name: str) -> ChainSpec:
    """A fresh spec for graph ``name``. Raises :class:`GraphNotFound` when no source knows the
    name (listing the graphs that do) or when its module fails to import (naming the error)."""
    if name in _REGISTERED:
        return _REGISTERED[name]()
    for source_name, source, loader in _sources():
        if source_name not in (None, name):
            continue
        info = _load(source_name, source, loader)
        if info.name != name:
            continue
        if info.spec is None:
            if (info.error or "").startswith(f"graph {name!r} is declared by several"):
                raise GraphNotFound(info.error)
            raise GraphNotFound(f"graph {name!r} failed to load from {source}: {info.error}")
        return info.spec
    known = sorted({g.name for g in list_graphs() if g.spec is not None})
    raise GraphNotFound(f"unknown graph {name!r}; known graphs: {', '.join(known) or 'none'} "
                        "(a graph is found through register(), the 'graphs' setting or the "
                        f"'{ENTRY_POINT_GROUP}' entry-point group)")
