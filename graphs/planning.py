"""Where a chain stands: the remaining plan, progress and findings, kept bounded in state.

The plan is not copied into the checkpointed state: state holds a ``cursor`` into the spec's plan
(regenerated from the inputs on demand and cached) or, after a review replanned, the revised
remaining plan (bounded by the review schema). Findings without ``keep_data`` and the rolling
summary are windows of fixed size. So a checkpoint's size does not grow with the chain's length.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from chainproof.graphs.spec import ChainSpec, Finding, PlanStep
from chainproof.values import decode_value  # value contract

RECENT_FINDINGS = 3  # findings without keep_data stay in state only while among the latest three (the review reads three)
RECENT_DONE = 5  # ids of the latest completed plan steps kept for prompts
SUMMARY_LINES = 12  # rolling summary length (lines)


@lru_cache(maxsize=64)
def _spec_plan(spec_type: type[ChainSpec], inputs_json: str) -> tuple[PlanStep, ...]:
    return tuple(spec_type().plan(decode_value(json.loads(inputs_json), where="inputs")))  # value contract: decoded


def spec_plan(spec: ChainSpec, inputs: dict[str, Any]) -> tuple[PlanStep, ...]:
    """The spec's plan for ``inputs``, generated once per process (plans are pure functions of
    the inputs)."""
    return _spec_plan(type(spec), json.dumps(inputs, sort_keys=True))


def current_plan(spec: ChainSpec, state: dict[str, Any]) -> tuple[PlanStep, ...]:
    revised = state.get("plan_revision")
    if revised is not None:
        return tuple(PlanStep.model_validate(p) for p in revised)
    return spec_plan(spec, state["inputs"])


def remaining(spec: ChainSpec, state: dict[str, Any]) -> tuple[PlanStep, ...]:
    """The plan steps still to run, next first."""
    return current_plan(spec, state)[state.get("cursor", 0):]


def progress_text(spec: ChainSpec, state: dict[str, Any], show_next: int = 3) -> str:
    """One line of progress for prompts: counts plus the latest and next step ids (bounded)."""
    rest = remaining(spec, state)
    latest = ", ".join(state.get("recent_done", [])) or "none"
    upcoming = ", ".join(p.id for p in rest[:show_next]) or "none"
    return (f"Plan steps done: {state.get('done_count', 0)} (latest: {latest}). "
            f"Remaining: {len(rest)} (next: {upcoming}).")


def add_finding(state: dict[str, Any], finding: Finding, keep: bool) -> dict[str, Any]:
    """State update recording ``finding``: kept findings stay, others only while recent; the
    rolling summary gets one line."""
    findings = dict(state.get("findings", {}))
    record = finding.model_dump(mode="json")
    record["keep"] = keep
    findings.pop(finding.step_id, None)  # re-insert so dict order is recency order
    findings[finding.step_id] = record
    transient = [k for k, f in findings.items() if not f.get("keep")]
    for key in transient[:-RECENT_FINDINGS]:
        del findings[key]
    line = f"{finding.title}: {finding.summary}".replace("\n", " ")
    summary = [*state.get("summary", []), line[:400]][-SUMMARY_LINES:]
    return {"findings": findings, "summary": summary}


def advance(state: dict[str, Any], step_id: str) -> dict[str, Any]:
    """State update after a plan step completed."""
    return {
        "cursor": state.get("cursor", 0) + 1,
        "done_count": state.get("done_count", 0) + 1,
        "recent_done": [*state.get("recent_done", []), step_id][-RECENT_DONE:],
    }
