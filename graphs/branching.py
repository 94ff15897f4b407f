"""Branching on results: a plan step that runs only when a typed condition on earlier findings holds.

A :class:`~chainproof.graphs.spec.PlanStep` with ``when=Condition(...)`` is preceded by one
``condition`` super-step (``graphs/_engine/nodes/condition.py``) that reads the named finding,
evaluates the condition and records a :class:`BranchOutcome` as its step row's output: the
condition, the values it read, whether the step runs, why, and which plan steps it skipped. The
spec may override the outcome (:meth:`ChainSpec.choose_branch`), e.g. to skip further ahead. The
condition is a pure function of the recorded findings, so a replay takes the same path with no
model call. If/else is two steps with complementary conditions (``<`` and ``>=``).

As LangGraph's conditional edges (``add_conditional_edges``: a routing function of the state),
with the choice written to the audit trail, which LangGraph's routing functions cannot do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from chainproof.errors import PlanError

Op = Literal["<", "<=", ">", ">=", "==", "!=", "present", "absent", "contains"]
ORDERING = ("<", "<=", ">", ">=")


class Condition(BaseModel):
    """A typed test of one earlier finding.

    ``finding``: the id of an earlier plan step (its finding). ``field``: what is read: ``summary``
    (the finding's text), or a dotted path into the finding's kept data (``revenue``,
    ``years.0.revenue``; the source step needs ``keep_data=True``). ``op``: ``< <= > >=`` compare
    numbers; ``== !=`` compare any JSON value; ``contains`` tests a substring of text or an item of
    a list; ``present`` / ``absent`` test whether the field exists (``value`` unused).

    Example: ``Condition(finding="financials", field="revenue_cagr", op="<", value=0.02)``.
    """

    finding: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    field: str = Field(min_length=1, max_length=200)
    op: Op
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_the_op(self) -> Condition:
        if self.op in ORDERING and (isinstance(self.value, bool) or not isinstance(self.value, int | float)):
            raise ValueError(f"value: op {self.op!r} compares numbers; got {self.value!r}")
        if self.op == "contains" and self.value is None:
            raise ValueError("value: op 'contains' needs the text or item to look for")
        return self

    def describe(self) -> str:
        """One line, e.g. ``financials.revenue_cagr < 0.02``."""
        target = f"{self.finding}.{self.field}"
        return f"{target} is {self.op}" if self.op in ("present", "absent") else f"{target} {self.op} {self.value!r}"


class BranchOutcome(BaseModel):
    """What a ``condition`` super-step decided (its step row's ``output``; ``chainproof show`` prints it).

    ``plan_step``: the step the condition guards. ``condition``: the condition (JSON).
    ``read``: the values it read, ``{"financials.revenue_cagr": 0.012}`` (a missing field is not
    listed). ``taken``: whether the step runs. ``reason``: why, in words. ``by``: ``condition``,
    or ``spec`` when :meth:`ChainSpec.choose_branch` overrode it. ``skipped``: the plan step ids
    skipped (the guarded step first when it does not run)."""

    plan_step: str
    condition: dict[str, Any]
    read: dict[str, Any] = Field(default_factory=dict)
    taken: bool
    reason: str
    by: Literal["condition", "spec"] = "condition"
    skipped: list[str] = Field(default_factory=list)


class BranchChoice(BaseModel):
    """A spec's override of a branch (:meth:`ChainSpec.choose_branch`): ``taken`` (run the guarded
    step or not), ``skip_to`` (when not taken: skip every plan step up to, not including, this
    later step id; None skips the guarded step only) and ``reason`` (recorded)."""

    taken: bool
    reason: str = Field(min_length=1, max_length=300)
    skip_to: str | None = None


_MISSING = object()


def read_field(finding: Mapping[str, Any], field: str) -> Any:
    """The value at ``field`` of a finding record (``summary`` or a dotted path into ``data``;
    list items by index), or a private marker when absent."""
    if field == "summary":
        return finding.get("summary", _MISSING)
    value: Any = finding.get("data")
    for part in field.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _fields_of(finding: Mapping[str, Any]) -> list[str]:
    data = finding.get("data")
    return ["summary", *(sorted(data) if isinstance(data, Mapping) else [])]


def evaluate(condition: Condition, findings: Mapping[str, Mapping[str, Any]], where: str) -> tuple[bool, dict[str, Any], str]:
    """``(holds, values read, reason)`` of ``condition`` over the state's findings (step id ->
    finding record). A finding that is not there (its step was skipped) makes ``present`` false,
    ``absent`` true and every other test false.

    Raises ``PlanError`` naming ``where`` (``plan step X: when.field``) when the field is absent
    from a finding that exists (for ops other than present/absent), or when a number is compared
    with a value that is not one."""
    key = f"{condition.finding}.{condition.field}"
    found = findings.get(condition.finding)
    if found is None:
        holds = condition.op == "absent"
        return holds, {}, f"finding {condition.finding!r} was not produced (its step did not run), so " \
                          f"{condition.describe()} is {'true' if holds else 'false'}"
    value = read_field(found, condition.field)
    if value is _MISSING:
        if condition.op in ("present", "absent"):
            holds = condition.op == "absent"
            return holds, {}, f"{key} is absent, so {condition.describe()} is {'true' if holds else 'false'}"
        raise PlanError(f"{where}: when.field {condition.field!r} is not a field of finding {condition.finding!r}; "
                        f"its fields are {_fields_of(found)} (a data field needs keep_data=True on that step)")
    read = {key: value}
    if condition.op in ("present", "absent"):
        holds = condition.op == "present"
    elif condition.op in ORDERING:
        if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float) and math.isnan(value)):
            raise PlanError(f"{where}: when.field {key!r} is {value!r}, not a number, so {condition.op!r} cannot "
                            "compare it")
        holds = {"<": value < condition.value, "<=": value <= condition.value, ">": value > condition.value,
                 ">=": value >= condition.value}[condition.op]
    elif condition.op == "contains":
        holds = (str(condition.value) in value) if isinstance(value, str) else (
            condition.value in value if isinstance(value, list | Mapping) else False)
    else:
        holds = (value == condition.value) == (condition.op == "==")
    return holds, read, f"{key} = {value!r}, so {condition.describe()} is {'true' if holds else 'false'}"


__all__ = ["BranchChoice", "BranchOutcome", "Condition", "evaluate", "read_field"]
