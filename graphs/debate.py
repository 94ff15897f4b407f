"""The debate pattern: two (or N) analysts argue a question from assigned positions for K rounds,
then a judge gives a verdict whose reasons cite the arguments by id ("multi-agent cross review").

A debate is one plan step (``kind="debate"``, made by :func:`debate_step`), usable in any graph.
The engine runs it (``graphs/_engine/nodes/debate.py``) as K rounds of parallel branches, one
LangGraph ``Send`` per position, each argument an audited super-step with its model call, under
step numbers fixed in position order; then one ``judge`` super-step asks the typed
:class:`DebateVerdict`, checked so that every cited argument exists and the winner is a position
(or ``undecided``). The step's finding is the verdict (summary) with the question, positions and
every argument (data), so later steps and the decision can cite it. Replay serves every argument
and the verdict from the record (zero model calls), matched by prompt hash as parallel steps are.

Arguments have ids ``POSITION.ROUND`` (``for.1``, ``against.2``). In round r each analyst sees the
arguments of rounds before r (both sides, in position order) and is asked to rebut the other
side's latest one. As the debate setups of Du et al. 2023 ("Improving Factuality and Reasoning in
Language Models through Multiagent Debate": agents see each other's previous answers each round)
and Liang et al. 2023 (MAD: affirmative and negative debaters, then a judge).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, Field, model_validator

from chainproof.agents.config import Effort
from chainproof.agents.structured import Clip

ARGUMENT_CHARS = 900  # an argument as later prompts and the finding keep it


class Position(BaseModel):
    """One side of a debate: ``id`` (lower-case, used in argument ids) and the ``stance`` its
    analyst must argue, e.g. ``"argue that the buyer should proceed"``."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=30)
    stance: str = Field(min_length=3, max_length=400)


class Debate(BaseModel):
    """A debate's setup: its ``positions`` (2 to 4, distinct ids) and ``rounds`` (K, 1 to 5)."""

    positions: list[Position] = Field(min_length=2, max_length=4)
    rounds: int = Field(default=2, ge=1, le=5)

    @model_validator(mode="after")
    def _distinct(self) -> Debate:
        ids = [p.id for p in self.positions]
        if len(set(ids)) != len(ids):
            raise ValueError(f"positions: ids must be distinct, got {ids}")
        return self


class VerdictReason(BaseModel):
    """One reason of the verdict and the argument ids it rests on (``for.1``)."""

    text: Annotated[str, Clip(300, "one or two sentences")]
    cites: list[str] = Field(min_length=1, max_length=6)


class DebateVerdict(BaseModel):
    """The judge's verdict: the ``winner`` (a position id, or ``undecided``), a short ``summary``
    and 1-4 ``reasons``, each citing the arguments it rests on."""

    winner: str = Field(min_length=1, max_length=30)
    summary: Annotated[str, Clip(500, "two or three sentences")]
    reasons: list[VerdictReason] = Field(min_length=1, max_length=4)


def debate_step(id: str, title: str, question: str, positions: list[Position] | list[tuple[str, str]], *,
                rounds: int = 2, evidence: list[str] | None = None, effort: Effort | None = None,
                keep_data: bool = True) -> Any:
    """A plan step that debates ``question`` (a ``PlanStep`` of ``kind="debate"``).

    ``positions``: :class:`Position` objects or ``(id, stance)`` pairs; ``rounds``: K;
    ``evidence``: ids of earlier findings every analyst and the judge read in full (cited, within
    the spec's ``evidence_tokens``); ``effort``: of every argument and the verdict (None: routed).
    Raises ``pydantic.ValidationError`` naming the bad field (fewer than two positions, K outside
    1..5, duplicate ids)."""
    from chainproof.graphs.spec import PlanStep

    sides = [p if isinstance(p, Position) else Position(id=p[0], stance=p[1]) for p in positions]
    return PlanStep(id=id, title=title, kind="debate", instruction=question, evidence=evidence, effort=effort,
                    keep_data=keep_data, debate=Debate(positions=sides, rounds=rounds))


def argument_id(position: str, round_no: int) -> str:
    return f"{position}.{round_no}"


def ordered(arguments: Mapping[str, Mapping[str, Any]], debate: Debate) -> list[tuple[str, Mapping[str, Any]]]:
    """The arguments by round, then position order (never by which thread finished first)."""
    rank = {p.id: i for i, p in enumerate(debate.positions)}
    return sorted(arguments.items(), key=lambda kv: (kv[1]["round"], rank.get(kv[1]["position"], 99)))


def argue_task(question: str, debate: Debate, position: Position, round_no: int,
               arguments: Mapping[str, Mapping[str, Any]]) -> str:
    """The analyst's task in round ``round_no`` (the prompt text is part of the recorded hash)."""
    earlier = "\n".join(f"[{aid}] ({a['position']}) {a['text']}" for aid, a in ordered(arguments, debate)
                        if a["round"] < round_no)
    others = ", ".join(p.id for p in debate.positions if p.id != position.id)
    return (f"Debate question: {question}\nYou argue the position '{position.id}': {position.stance}. "
            f"Round {round_no} of {debate.rounds}; the other side(s): {others}.\n"
            + (f"Arguments so far:\n{earlier}\nRebut the other side's latest argument and strengthen yours. "
               if earlier else "Make your opening argument. ")
            + "Use only the facts given and quote figures exactly; cite findings as [finding id]. At most 120 words.")


def judge_task(question: str, debate: Debate, arguments: Mapping[str, Mapping[str, Any]]) -> str:
    """The judge's task: every argument with its id, the positions, and how to cite."""
    shown = "\n".join(f"[{aid}] ({a['position']}) {a['text']}" for aid, a in ordered(arguments, debate))
    sides = "; ".join(f"{p.id}: {p.stance}" for p in debate.positions)
    return (f"Judge this debate. Question: {question}\nPositions: {sides}\nArguments:\n{shown}\n\n"
            f"Give the winner (one of {[p.id for p in debate.positions] + ['undecided']}), a short summary, and 1-4 "
            "reasons; each reason cites the argument ids it rests on, e.g. "
            f'{{"text": "...", "cites": ["{argument_id(debate.positions[0].id, 1)}"]}}. Judge the evidence, not the '
            "eloquence.")


def check_verdict(verdict: DebateVerdict, debate: Debate, arguments: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` (shown to the judge) naming a winner that is no position or a cited
    argument id that does not exist."""
    winners = [p.id for p in debate.positions] + ["undecided"]
    if verdict.winner not in winners:
        raise ValueError(f"winner: {verdict.winner!r} is not one of {winners}")
    bad = sorted({c for r in verdict.reasons for c in r.cites if c not in arguments})
    if bad:
        raise ValueError(f"reasons.cites: {bad} are not argument ids; the arguments are {sorted(arguments)}")


def fallback_verdict(debate: Debate, arguments: Mapping[str, Mapping[str, Any]], errors: list[str]) -> DebateVerdict:
    """The verdict when the judge gave no valid one: ``undecided``, citing the last round's
    arguments, saying why (built by code; the judge step records ``fallback: true``)."""
    last = [aid for aid, a in ordered(arguments, debate) if a["round"] == debate.rounds] or sorted(arguments)[-1:]
    return DebateVerdict(winner="undecided", summary=f"No valid verdict from the judge after {len(errors)} attempts; "
                                                     "the last round's arguments stand unjudged.",
                         reasons=[VerdictReason(text="The judge's answers did not fit the verdict schema.",
                                                cites=last or ["none"])])


def verdict_summary(verdict: Mapping[str, Any]) -> str:
    """The finding's summary of a debate: the winner, the summary and each reason with its cites."""
    reasons = " ".join(f"{r['text']} [{', '.join(r['cites'])}]" for r in verdict["reasons"])
    return f"Verdict: {verdict['winner']}. {verdict['summary']} Reasons: {reasons}"

__all__ = ["ARGUMENT_CHARS", "Debate", "DebateVerdict", "Position", "VerdictReason", "argue_task", "argument_id",
           "check_verdict", "debate_step", "fallback_verdict", "judge_task", "ordered", "verdict_summary"]
