"""A read-only, typed view of a chain's state, as the :class:`~chainproof.graphs.spec.ChainSpec`
hooks see it (instead of ``dict[str, Any]`` chains of ``.get()``).

The view wraps the state without copying it; findings become :class:`Finding` objects only when
read. Hooks run a few times per run (decide, approval, report), never per plan step.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from chainproof._boundaries import restore_model
from chainproof.graphs.spec import Finding
from chainproof.values import hook_state


class ChainView:
    """Read-only view of one state of a run.

    Attributes (properties):
        run_id: the run id.
        graph: the graph's registry name.
        goal: the goal text.
        inputs: the run's validated inputs (read-only mapping).
        done_count: plan steps done.
        summary: the rolling summary, oldest first (one line each).
        findings: the findings in state, oldest first (kept ones and the latest few; the full
            record is in the audit store).
        decision: the final decision as JSON (None before ``decide``); an edit by a person
            replaces it. Use :meth:`decision_as` for the typed object.
        decision_fallback: True when the decision is the spec's fallback (no valid model answer).
        edited_by: the approver who edited the decision, or None.
        approval: the answer of the latest round's decision request (JSON), or None.
        approvals: every approval answer so far (JSON; ``round``, ``subject``, ``action``,
            ``approver``, ``comment``, ``decided_at``...).
        termination: why a review ended the run early (``reason``, ``at_step``, ``by``), or None.
        state: the state (read-only, tagged values decoded), for what the view does not name.
    """

    __slots__ = ("_raw", "_state")

    def __init__(self, state: Mapping[str, Any]):
        self._raw = state
        self._state = hook_state(state)  # the value contract: tagged values read as the types that went in

    @property
    def state(self) -> Mapping[str, Any]:
        return MappingProxyType(dict(self._state))

    @property
    def run_id(self) -> str:
        return self._state["run_id"]

    @property
    def graph(self) -> str | None:
        return self._state.get("graph")

    @property
    def goal(self) -> str:
        return self._state.get("goal", "")

    @property
    def inputs(self) -> Mapping[str, Any]:
        return MappingProxyType(self._state.get("inputs") or {})

    @property
    def done_count(self) -> int:
        return self._state.get("done_count", 0)

    @property
    def summary(self) -> tuple[str, ...]:
        return tuple(self._state.get("summary") or ())

    def finding(self, step_id: str) -> Finding | None:
        """The finding of plan step ``step_id`` if it is in state (``.data`` is None unless the
        step keeps its data), else None."""
        raw = (self._state.get("findings") or {}).get(step_id)
        return None if raw is None else Finding.model_validate(raw)

    def data(self, step_id: str) -> dict[str, Any]:
        """The kept data of finding ``step_id``, or ``{}`` when it has none."""
        found = self.finding(step_id)
        return (found.data or {}) if found is not None else {}

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(Finding.model_validate(f) for f in (self._state.get("findings") or {}).values())

    @property
    def decision(self) -> dict[str, Any] | None:
        raw = self._state.get("decision")
        return None if raw is None else {k: v for k, v in raw.items() if k not in ("_fallback", "_edited_by")}

    @property
    def decision_fallback(self) -> bool:
        return bool((self._state.get("decision") or {}).get("_fallback"))

    @property
    def edited_by(self) -> str | None:
        return (self._state.get("decision") or {}).get("_edited_by")

    def decision_as(self, schema: Any) -> Any:
        """The decision validated into ``schema`` (a pydantic model class), or None before ``decide``."""
        raw = self._raw.get("decision")
        return None if raw is None else restore_model(schema, raw)

    @property
    def approval(self) -> dict[str, Any] | None:
        return self._state.get("approval")

    @property
    def approvals(self) -> tuple[dict[str, Any], ...]:
        return tuple(self._state.get("approvals") or ())

    @property
    def termination(self) -> dict[str, Any] | None:
        return self._state.get("termination")
