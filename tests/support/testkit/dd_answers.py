"""Scripted answers for a due-diligence run through the local OpenAI-compatible server."""

from __future__ import annotations

import json

RECOMMENDATION = {
    "decision": "renegotiate",
    "confidence": 0.6,
    "summary": "Solid finances but material PFAS litigation exposure.",
    "reasons": [
        {"text": "Legal exposure from PFAS matters is material.", "evidence": ["legal"]},
        {"text": "Market risk is moderate with a beta below one.", "evidence": ["market_risk.beta_vs_benchmark"]},
    ],
}


def responder(body: dict) -> str:
    system = body["messages"][0]["content"]
    if '"title":"ReviewDecision"' in system:
        return json.dumps({"decision": "continue", "reason": "The plan still serves the goal.", "drift": "none"})
    if "Reply with exactly one JSON object" in system:
        return json.dumps(RECOMMENDATION)
    return "The figures are as reported by the tool."


def scripted_replies(decision: str = "renegotiate") -> list[str]:
    """Replies of a ScriptedChatModel for a due-diligence run up to the approval pause: six step
    observations with the goal review (every five plan steps) after the fifth, then the
    recommendation (:data:`RECOMMENDATION` with ``decision``)."""
    review = json.dumps({"decision": "continue", "reason": "on track", "drift": "none"})
    return ["Observation."] * 5 + [review, "Observation.", json.dumps({**RECOMMENDATION, "decision": decision})]
