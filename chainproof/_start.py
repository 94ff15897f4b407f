"""What a new run is checked against before anything is recorded: its step and cost budget and
its inputs (``Chainproof.start`` and ``Chainproof.submit``, through ``Chainproof._record_start``),
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

__all__ = ["check_input_paths", "check_person", "start_budget", "start_inputs"]

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
    nothing outside is read either way. ``InputError`` naming the field; the value shown is cut
    to 200 characters."""
    real_roots = [Path(r).expanduser().resolve() for r in roots]
    shown = ", ".join(str(r) for r in real_roots) or "none"
    for field, path in spec.input_paths(inputs):
        given = str(path)
        cut = given if len(given) <= 200 else given[:200] + "…"
        if ".." in path.parts or "\x00" in given:
            raise InputError(f"{field}: a path given through the web app may not contain '..', got {cut!r}")
        full = path if path.is_absolute() else Path.cwd() / path
        if not os.path.lexists(full):
            continue
        if not _inside(full.resolve(), real_roots):
            raise InputError(f"{field}: {cut!r} is outside the folders runs started from the web app may read "
                             f"({shown}); a bundled dossier is named by its ticker, other folders are allowed by "
                             "the web.input_dirs setting")
        link = _escaping_link(full.resolve(), real_roots) if full.is_dir() else None
        if link is not None:
            raise InputError(f"{field}: {cut!r} holds {link.name!r}, a symbolic link to outside the allowed folders")


def check_person(started_by: str | None, effort: str | None) -> None:
    """Refuse a blank ``started_by`` (``--as``) and an ``effort`` outside low/medium/high."""
    if started_by is not None and not started_by.strip():
        raise InputError("started_by (--as): a name is required when given; leave it out to start anonymously")
    if effort is not None and effort not in EFFORTS:
        raise InputError(f"effort: expected one of {', '.join(EFFORTS)}, got {effort!r}")
