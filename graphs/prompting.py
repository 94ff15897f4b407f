"""Keeping prompts small: compact JSON renderings of tool results for the model to read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

REVIEW_NOTE_HEAD = ("Reviewer's note (the goal review's own words, not a finding: take figures only from the "
                    "findings and the evidence)")


def _shrink(value: Any, max_list: int, digits: int) -> Any:
    if isinstance(value, float):
        # keep whole units of large amounts (30274.0 stays 30274, not 30270: the model quotes it)
        return round(value, 2) if abs(value) >= 10 ** (digits - 1) else float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: _shrink(v, max_list, digits) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        items = [_shrink(v, max_list, digits) for v in value[:max_list]]
        if len(value) > max_list:
            items.append(f"... {len(value) - max_list} more")
        return items
    return value


def compact_json(data: Any, max_chars: int = 2400, max_list: int = 6, digits: int = 4) -> str:
    """``data`` as one-line JSON with floats rounded to ``digits`` significant digits (amounts of
    ``digits`` or more integer digits keep their whole units, to two decimals), lists cut
    to ``max_list`` items and ``None`` fields dropped; cut to ``max_chars`` characters (about
    ``max_chars / 4`` tokens) with a marker if still longer."""
    text = json.dumps(_shrink(data, max_list, digits), separators=(",", ":"), ensure_ascii=False, default=str)
    if len(text) > max_chars:
        text = text[: max_chars - 20] + " …[truncated]"
    return text


def known_parts(state: Mapping[str, Any]) -> list[str]:
    """The prompt parts on what is known: the rolling summary (the findings' own lines, never
    rewritten by a review) and the latest goal review's note, marked as the review's."""
    parts = []
    if state.get("summary"):
        parts.append("What we know so far:\n" + "\n".join(f"- {s}" for s in state["summary"]))
    if state.get("review_note"):
        parts.append(f"{REVIEW_NOTE_HEAD}: {state['review_note']}")
    return parts


def evidence_block(findings: Mapping[str, Mapping[str, Any]], ids: list[str], budget_tokens: int) -> str:
    """The cited evidence a step depends on: for each finding id in ``ids`` (in that order), its
    summary and kept data (compact JSON) under its citation ``[id, step N]``, within
    ``budget_tokens`` tokens (estimated as characters / 4, OpenAI's rule of thumb, as routing's
    material). A finding that does not fit is cut, and those after it are named as omitted; a
    finding not in ``findings`` (its step was skipped) is named as not produced. Empty when ``ids``
    is empty."""
    if not ids:
        return ""
    left = budget_tokens * 4
    lines = []
    for fid in ids:
        found = findings.get(fid)
        if found is None:
            lines.append(f"[{fid}] not produced (its step did not run)")
            continue
        text = f"[{fid}, step {found.get('step_no')}] {found.get('title')}: {found.get('summary')}"
        if found.get("data") is not None:
            text += " | data: " + compact_json(found["data"], max_chars=max(200, left))
        if left < 80:  # too little room for a citation and a figure
            lines.append(f"[{fid}] omitted: the evidence budget of {budget_tokens} tokens is spent")
            continue
        if len(text) > left:
            text = text[:max(0, left - 30)] + " …[cut: evidence budget]"
        left -= len(text)
        lines.append(text)
    return "Evidence this step depends on (exact, cited):\n" + "\n".join(lines)
