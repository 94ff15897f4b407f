"""The bounded prompt of a step: goal, progress, rolling summary, then the task and its material."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from chainproof.errors import PlanError
from chainproof.graphs._engine.state import progress_text
from chainproof.graphs.prompting import evidence_block, known_parts
from chainproof.graphs.spec import ChainSpec, PlanStep


def evidence_of(spec: ChainSpec, state: Mapping[str, Any], step: PlanStep) -> str:
    """The cited evidence ``step`` depends on (``PlanStep.evidence``, else its ``depends_on``),
    within ``spec.evidence_tokens`` (:func:`~chainproof.graphs.prompting.evidence_block`)."""
    ids = step.evidence if step.evidence is not None else (step.depends_on or [])
    return evidence_block(state.get("findings", {}), list(ids), spec.evidence_tokens)


def step_messages(spec: ChainSpec, state: Mapping[str, Any], instruction: str, material: str = "",
                  evidence: str = "") -> list:
    """``[SystemMessage(spec.system_prompt), HumanMessage(...)]`` for one step; never the whole
    history: goal, progress, the rolling summary, the review's note (marked as the review's), the
    cited evidence the step depends on, the task, its material. The text is part of every recorded
    prompt hash: changing it breaks replay."""
    parts = [f"Goal: {state['goal']}", progress_text(spec, state), *known_parts(state)]
    if evidence:
        parts.append(evidence)
    parts.append(f"Your task now: {instruction}")
    if material:
        parts.append(material)
    return [SystemMessage(spec.system_prompt), HumanMessage("\n\n".join(parts))]


def own_messages(own: Any, hook: str) -> list | None:
    """A spec prompt hook's return (``hook``: e.g. ``"FilingQA.agent_prompt for plan step 'x'"``),
    checked: None or a non-empty list of LangChain messages. Raises
    :class:`~chainproof.errors.PlanError` naming the hook and what it returned otherwise (a string
    would reach the model one character a message)."""
    if own is None:
        return None
    if not isinstance(own, list) or not own or not all(isinstance(m, BaseMessage) for m in own):
        got = type(own).__name__ if not isinstance(own, list) else (
            "an empty list" if not own else f"a list holding {sorted({type(m).__name__ for m in own})}")
        raise PlanError(f"{hook}: expected None or a non-empty list of LangChain messages (SystemMessage, "
                        f"HumanMessage, ...), got {got}")
    return own
