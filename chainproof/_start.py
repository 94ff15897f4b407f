"""What a new run is checked against before anything is recorded: its step and cost budget and
its inputs (``Chainproof.start`` and ``Chainproof.submit``, through ``Chainproof._record_start``).
Every failure is an ``InputError`` naming the field, or the option the person typed."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from chainproof.agents.config import EFFORTS
from chainproof.errors import InputError, UserError
from chainproof.graphs.review import Budget
from chainproof.values import encode_value

__all__ = ["check_person", "start_budget", "start_inputs"]

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


def check_person(started_by: str | None, effort: str | None) -> None:
    """Refuse a blank ``started_by`` (``--as``) and an ``effort`` outside low/medium/high."""
    if started_by is not None and not started_by.strip():
        raise InputError("started_by (--as): a name is required when given; leave it out to start anonymously")
    if effort is not None and effort not in EFFORTS:
        raise InputError(f"effort: expected one of {', '.join(EFFORTS)}, got {effort!r}")
