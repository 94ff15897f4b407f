"""Parallel groups: independent plan steps run concurrently (LangGraph ``Send``), each with its
own audit rows, merged in plan order so state, prompts and replay never depend on which thread
finished first.

A group (:func:`~chainproof.graphs._engine.state.parallel_group`: consecutive tool or reason steps
that declare ``depends_on`` and need none of each other) of ``n`` steps runs as four super-steps,
the ``act`` / ``observe`` pair of each step side by side::

    (Send × n) branch_act → gather ─(Send × n)→ branch_observe → merge → (as after observe)

Super-step numbers are reserved in plan order, as the approval requests' are: with ``s`` the
state's ``step``, the i-th step's act is recorded as ``s+1+i`` and its observe as ``s+1+n+i``; the
merge sets ``step`` to ``s+2n``. So each branch writes one audit row set (its act and observe
steps with their model and tool calls) under numbers that do not depend on timing, and a replay
(which serves recorded calls by their prompt and argument hashes, ``replay_ports.RecordedCalls``)
compares them one by one. ``gather`` and ``merge`` record nothing (like ``settle``).

The step budget counts each of the ``n`` steps (a group is cut to the steps the budget has
left), and a goal review due inside a group runs after its merge, seeing all ``n`` findings. Two
steps of one group never see each other's findings: that is what ``depends_on`` declares.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.nodes.step import act, observe
from chainproof.graphs._engine.state import ChainState, add_finding, advance, branch_sends, remaining
from chainproof.graphs.spec import Finding


def branch_act(task: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """The ``act`` of one step of the group (``task``: see ``state.branch_sends``); its result
    goes to ``branch_pending`` under the step's id."""
    update = act(task, runtime)
    step_id = update["pending"]["step"]["id"]
    return {"branch_pending": {step_id: {"pending": update["pending"], "tools_used": update.get("tools_used"),
                                         "budget": update.get("budget")}}}


def gather(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Joins the group's acts (writes nothing: the acts' results are in ``branch_pending``)."""
    return {}


def _group(runtime: Runtime[ChainContext], state: ChainState, ids: dict[str, Any]) -> list[str]:
    """The group's step ids in plan order (the keys of a branch channel)."""
    return [s.id for s in remaining(runtime.context.spec, state)[:len(ids)] if s.id in ids]


def after_gather(state: ChainState, runtime: Runtime[ChainContext]) -> list[Send]:
    """One ``branch_observe`` task per step of the group, with its act's result."""
    done = state.get("branch_pending") or {}
    ids = _group(runtime, state, done)
    n = len(ids)
    return branch_sends(state, "branch_observe", [(i, n + i, done[sid]["pending"]) for i, sid in enumerate(ids)])


def branch_observe(task: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """The ``observe`` of one step of the group; its finding goes to ``branch_findings`` under the
    step's id."""
    step_id = (task["pending"] or {})["step"]["id"]
    update = observe(task, runtime)
    return {"branch_findings": {step_id: update["findings"][step_id]}}


def merge(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Apply the group's findings in plan order, advance the plan by the group's size, set
    ``step`` past the reserved numbers and empty the branch channels."""
    found = state.get("branch_findings") or {}
    acted = state.get("branch_pending") or {}
    ids = _group(runtime, state, found)
    current: dict[str, Any] = dict(state)
    update: dict[str, Any] = {}
    used = set(state.get("tools_used", []))
    for sid in ids:
        record = dict(found[sid])
        keep = bool(record.pop("keep", False))
        upd = {**add_finding(current, Finding.model_validate(record), keep), **advance(current, sid)}
        current.update(upd)
        update.update(upd)
        used |= set(acted[sid].get("tools_used") or ())
        if acted[sid].get("budget") is not None:
            update["budget"] = acted[sid]["budget"]
    if used != set(state.get("tools_used", [])):
        update["tools_used"] = sorted(used)
    return {**update, "step": state.get("step", 0) + 2 * len(ids), "pending": None, "branch_pending": None,
            "branch_findings": None}


__all__ = ["after_gather", "branch_act", "branch_observe", "gather", "merge"]
