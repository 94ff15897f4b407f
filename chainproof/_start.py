"""What a new run is checked against before anything is recorded: its step and cost budget and
its inputs (``Chainproof.start`` and ``Chainproof.submit``, through :func:`record_start`, which
then records the run),
and for a run started from the web app, the files and folders its inputs name
(:func:`check_input_paths`). Every failure is an ``InputError`` naming the field, or the option
the person typed."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chainproof.agents.config import EFFORTS
from chainproof.errors import InputError, UserError
from chainproof.graphs.review import Budget
from chainproof.values import encode_value

__all__ = ["check_input_paths", "check_person", "located_dossiers", "record_start", "start_budget", "start_inputs"]

#: a budget field -> what the error calls it: the option a person types
_FLAGS = {"max_steps": "max_steps (--max-steps)", "review_every": "review_every (--review-every)",
          "max_cost_usd": "budget_usd (--budget-usd)"}


def start_budget(spec: Any, overrides: dict[str, Any]) -> Budget:
    """The run's :class:`Budget`: the graph's ``max_steps`` and ``review_every`` with the
    ``overrides`` that are not None (``max_steps``, ``review_every``, ``on_budget``,
    ``max_cost_usd`` in USD). Raises ``InputError`` naming the option for an out-of-range value."""
    try:
        return Budget.model_validate({"max_steps": spec.max_steps, "review_every": spec.review_every,
                                      **{k: v for k, v in overrides.items() if v is not None}})
    except ValidationError as exc:
        raise InputError("; ".join(f"{_FLAGS.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}, got {e.get('input')!r}"
                                   for e in exc.errors())) from None


def start_inputs(spec: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` checked against the graph's input model and encoded by the value contract
    (:mod:`chainproof.values`). A graph's own ``ValueError`` (its docstring asks it to name the
    field) becomes an ``InputError``."""
    try:
        return encode_value(spec.validate_inputs(dict(inputs)), where="inputs", root="inputs")
    except UserError:
        raise
    except ValueError as exc:
        raise InputError(str(exc)) from None


MAX_FOLDER_ENTRIES = 10_000
"""The most entries a named folder may hold for its symbolic links to be checked (a dossier holds
a dozen files); a larger folder is refused rather than walked for long."""


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _escaping_link(folder: Path, roots: Sequence[Path]) -> Path | None:
    """The first symbolic link under ``folder`` whose target is outside ``roots``, or None.
    ``InputError`` for a folder of more than :data:`MAX_FOLDER_ENTRIES` entries."""
    seen = 0
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in [*dirs, *files]:
            seen += 1
            if seen > MAX_FOLDER_ENTRIES:
                raise InputError(f"{folder.name}: more than {MAX_FOLDER_ENTRIES:,} entries; not a dossier folder")
            entry = Path(top) / name
            if entry.is_symlink() and not _inside(entry.resolve(), roots):
                return entry
    return None


def check_input_paths(spec: Any, inputs: dict[str, Any], roots: Sequence[str | Path]) -> None:
    """Refuse, before anything is read, a run whose inputs name a file or folder outside ``roots``
    (the web app's allowed folders; the CLI reads what its local user names). Each path of
    ``spec.input_paths(inputs)`` (``ChainSpec.input_paths``) must have no ``..`` part, and when it
    exists, its real path (symbolic links followed) must be inside a root, as must the targets of
    the links inside a named folder. A path that does not exist passes: it is a bundled name (a
    ticker the graph resolves to its bundled dossier) or a missing file the graph refuses, and
    nothing outside is read either way. ``InputError`` naming the field and the rule, never the
    roots (server paths a web client need not know); the value shown (as given) is cut to 200
    characters."""
    real_roots = [Path(r).expanduser().resolve() for r in roots]
    for field in getattr(spec, "path_inputs", ()):
        value = inputs.get(field)
        if value is not None and not isinstance(value, str):
            raise InputError(f"{field}: expected a folder or file name (a string), got {type(value).__name__} "
                             f"{str(value)[:100]!r}")
        if isinstance(value, str) and value.strip().startswith("~"):
            raise InputError(f"{field}: a path given through the web app may not start with '~' (a home folder on "
                             f"the server), got {value.strip()[:200]!r}; name a dossier by its ticker or a folder "
                             "inside the server's input folders")
    for field, path in spec.input_paths(inputs):
        given = str(path)
        cut = given if len(given) <= 200 else given[:200] + "…"
        if ".." in path.parts or "\x00" in given:
            raise InputError(f"{field}: a path given through the web app may not contain '..', got {cut!r}")
        full = path if path.is_absolute() else Path.cwd() / path
        if not os.path.lexists(full):
            continue
        if not _inside(full.resolve(), real_roots):
            raise InputError(f"{field}: {cut!r} must be inside one of the server's input folders (a bundled "
                             "dossier is named by its ticker; an admin allows folders with the web.input_dirs "
                             "setting)")
        link = _escaping_link(full.resolve(), real_roots) if full.is_dir() else None
        if link is not None:
            raise InputError(f"{field}: {cut!r} holds {link.name!r}, a symbolic link leading outside the server's "
                             "input folders; a path must be inside one of them")


def located_dossiers(spec: Any, inputs: dict[str, Any], home: Path, *, local: bool = True) -> dict[str, Any]:
    """``inputs`` with a ``dossier`` path input (``spec.path_inputs``) given as a bare name replaced
    by the folder it names (:func:`chainproof.tools.dossier.locate_dossier`: a local folder when
    ``local``, ``home/dossiers/NAME``, or the bundled dossier of that ticker); the same inputs
    otherwise. How ``chainproof run``, ``Chainproof.start`` and ``POST /api/runs`` read a dossier
    argument. ``DossierError`` naming ``dossier`` when a bare name is none of them."""
    from chainproof.tools.dossier import locate_dossier

    value = inputs.get("dossier")
    if "dossier" not in getattr(spec, "path_inputs", ()) or not isinstance(value, str) or not value.strip():
        return inputs
    return {**inputs, "dossier": locate_dossier(value, home=Path(home), local=local)}


def absolute_inputs(spec: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` with every path input (``spec.path_inputs``, as ``spec.input_paths`` reads it:
    from the working directory) that names an existing file or folder replaced by its absolute
    path (symbolic links followed). For inputs kept to be read later by another process in another
    folder (``chainproof schedule add``): a relative name would be read from that process's working
    directory. A name that is no path here is kept as given: a bundled dossier's ticker or a
    ``$CHAINPROOF_HOME/dossiers`` name, which the reading process looks up itself
    (:func:`located_dossiers`), or a missing file the graph refuses when it validates the inputs."""
    out = dict(inputs)
    fields = set(getattr(spec, "path_inputs", ()))
    for field, path in spec.input_paths(inputs):
        if field in fields and os.path.lexists(path):
            out[field] = str(path.resolve())
    return out


def check_person(started_by: str | None, effort: str | None) -> None:
    """Refuse a blank ``started_by`` (``--as``) and an ``effort`` outside low/medium/high."""
    if started_by is not None and not started_by.strip():
        raise InputError("started_by (--as): a name is required when given; leave it out to start anonymously")
    if effort is not None and effort not in EFFORTS:
        raise InputError(f"effort: expected one of {', '.join(EFFORTS)}, got {effort!r}")


def record_start(app: Any, graph: str, inputs: dict[str, Any], *, started_by: str | None = None,
                  department: str | None = None, effort: str | None = None, run_id: str | None = None,
                  max_steps: int | None = None, review_every: int | None = None, on_budget: str | None = None,
                  zdr: bool | None = None, budget_usd: float | None = None, cache: bool | None = None,
                  queue: str | None = None) -> tuple[str, dict[str, Any]]:
    """Check and record a new run of ``app`` (a :class:`chainproof.app.Chainproof`; see its
    ``start``); ``(run_id, initial state)``. ``queue``:
    the DBOS queue a submitted run's decisions wake (kept in its ``run_started`` event); a
    submitted run skips this process's model preflight (the workers' models answer it)."""
    import uuid

    from chainproof import _wiring
    from chainproof._resume import initial_state
    from chainproof.graphs.registry import get_spec
    from chainproof.graphs.spec import decide_attempts_of
    from chainproof.values import decode_value

    spec = get_spec(graph)
    decide_attempts_of(spec)  # a graph's own setting: PlanError before anything is recorded
    zdr = app.settings.zdr if zdr is None else zdr
    cost = budget_usd if budget_usd is not None else app.settings.budgets.run_usd
    cache = (app.settings.cache.enabled if cache is None else cache) and not zdr
    budget = start_budget(spec, {"max_steps": max_steps, "review_every": review_every, "on_budget": on_budget,
                                 "max_cost_usd": cost})
    inputs = start_inputs(spec, located_dossiers(spec, inputs, app.settings.home))
    check_person(started_by, effort)
    preflight = getattr(app.models, "preflight", None)  # optional on providers (ModelSource)
    if preflight is not None and spec.uses_chainproof_models and queue is None:  # submitted: workers' models answer
        preflight()
    app._check_checkpointer()
    run_id = run_id or uuid.uuid4().hex[:12]
    decoded = decode_value(inputs, where="inputs")  # hooks read the types that went in
    goal = spec.goal(decoded)
    policy, bound = _wiring.policy_binding(app.settings, graph, spec, app.audit)
    app.audit.start_run(
        run_id, graph=graph, goal=goal, inputs=inputs, company=spec.subject(decoded),
        department=department, started_by=started_by, zdr=zdr,
        effort_override=effort, budget=budget.model_dump(), settings={
            "pricing": {m: p.model_dump() for m, p in app.settings.pricing.items()},
            "routing": app.settings.routing.model_dump(mode="json"), "cache": cache,
            # who may approve is fixed when the run starts, not by the settings of whoever answers
            "approval_policy": policy.model_dump(mode="json"), "approval_policy_version": bound,
            "approver_roles": _wiring.approver_roles(app.settings, app.audit), **({"queue": queue} if queue else {})},
    )
    return run_id, initial_state(app.audit, run_id=run_id, graph=graph, goal=goal, inputs=inputs,
                                 budget=budget.model_dump(), cache=cache)

