"""The bounded prompt of a step: goal, progress, rolling summary, then the task and its material."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from chainproof.graphs._engine.state import progress_text
from chainproof.graphs.spec import ChainSpec


def step_messages(spec: ChainSpec, state: Mapping[str, Any], instruction: str, material: str = "") -> list:
    """``[SystemMessage(spec.system_prompt), HumanMessage(...)]`` for one step; never the whole
    history. The text is part of every recorded prompt hash: changing it breaks replay."""
    parts = [f"Goal: {state['goal']}", progress_text(spec, state)]
    if state.get("summary"):
        parts.append("What we know so far:\n" + "\n".join(f"- {s}" for s in state["summary"]))
    parts.append(f"Your task now: {instruction}")
    if material:
        parts.append(material)
    return [SystemMessage(spec.system_prompt), HumanMessage("\n\n".join(parts))]
