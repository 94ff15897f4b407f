"""Scripted answers for a due-diligence run through the local OpenAI-compatible server."""

from __future__ import annotations

import json
import re

from langchain_core.messages import BaseMessage

from chainproof.agents.scripted import ScriptedChatModel

RECOMMENDATION = {
    "decision": "renegotiate",
    "confidence": 0.6,
    "summary": "Solid finances but material PFAS litigation exposure.",
    "reasons": [
        {"text": "Legal exposure from PFAS matters is material.", "evidence": ["legal"]},
        {"text": "Market risk is moderate with a beta below one.", "evidence": ["market_risk.beta_vs_benchmark"]},
    ],
}


VERDICT = {"winner": "caution", "summary": "The legal exposure outweighs the solid finances.",
           "reasons": [{"text": "The PFAS matters are material and unpriced.", "cites": ["caution.1", "caution.2"]},
                       {"text": "Finances are solid but do not offset the exposure.", "cites": ["proceed.2"]}]}
_POSITION = re.compile(r"You argue the position '(\w+)'.*?Round (\d+) of", re.S)


def debate_answer(system: str, human: str) -> str | None:
    """A debate's scripted answers (``--debate``): each argument names its position and round
    (and, after the first round, the arguments it answers), the judge gives :data:`VERDICT`."""
    if '"title":"DebateVerdict"' in system:
        return json.dumps(VERDICT)
    found = _POSITION.search(human)
    if found is None:
        return None
    position, round_no = found.groups()
    rebuts = sorted(set(re.findall(r"\[([a-z]\w*\.\d+)\]", human)))
    return f"{position} argues in round {round_no}" + (f", answering {', '.join(rebuts)}." if rebuts else ".")


def responder(body: dict) -> str:
    system = body["messages"][0]["content"]
    debated = debate_answer(system, body["messages"][-1]["content"])
    if debated is not None:
        return debated
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


_PARAGRAPH = re.compile(r'\{"cite":"([^"]+)","text":"((?:[^"\\]|\\.)*)"')
READ_MARKER = "5 to 15 words copied exactly"


def careful_reading(prompt: str, *, wrong: bool = False) -> str:
    """A map step's answer as a careful reader writes it: one line per paragraph shown, citing it
    and quoting ten of its words exactly. ``wrong`` adds two citations that do not hold: a paragraph
    that does not exist, and a real paragraph's words cited to another paragraph."""
    paras = [(cite, json.loads(f'"{text}"')) for cite, text in _PARAGRAPH.findall(prompt)]
    lines = [f'[{cite}] a matter named in the filing: "{" ".join(text.split()[2:12])}"' for cite, text in paras]
    if wrong and len(paras) >= 2:
        lines.append('[legal_note ¶999] an invented matter: "words that the filing never states anywhere"')
        lines.append(f'[{paras[1][0]}] the wrong paragraph: "{" ".join(paras[0][1].split()[2:12])}"')
    return "\n".join(lines) or "none"


def dd_model(decision: str = "renegotiate", *, wrong_citations: bool = False) -> ScriptedChatModel:
    """A scripted model for a due-diligence run on any dossier up to the approval pause, whatever its
    plan's length: goal reviews continue, map steps get :func:`careful_reading`, the decision is
    :data:`RECOMMENDATION` with ``decision``, every other step "Observation."."""

    def answer(messages: list[BaseMessage]) -> str:
        system, human = str(messages[0].content), str(messages[-1].content)
        debated = debate_answer(system, human)
        if debated is not None:
            return debated
        if '"title":"ReviewDecision"' in system:
            return json.dumps({"decision": "continue", "reason": "The plan still serves the goal.", "drift": "none"})
        if "Reply with exactly one JSON object" in system:
            return json.dumps({**RECOMMENDATION, "decision": decision})
        if READ_MARKER in human:
            return careful_reading(human, wrong=wrong_citations)
        return "Observation."

    return ScriptedChatModel(replies=[answer], repeat_last=True)
