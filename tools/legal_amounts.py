"""The dollar amounts of a legal matter that are exposure: an amount counts toward the legal review's
largest amount (``LegalReview.max_amount_usd_millions``, which the scorecard sets against net income)
only when the sentence stating it speaks of an accrual, damages, a settlement, a fine or penalty, a
claim, a judgment, verdict or award, or a loss, and not of a guarantee, commitment, revenue, credit
line or debt. "The State's damages expert ... contends the State incurred $5 billion in damages"
(3M 2017) counts; "gross gaming revenue ... MOP 180 billion ($22.4 billion ...)" (MGM 2022's Macau
investment commitment) and "bank guarantees ... $124 million" do not."""

from __future__ import annotations

import re

from chainproof.tools.legal import parse_amounts_usd_millions

__all__ = ["exposure_amounts_usd_millions"]

_EXPOSURE = re.compile(r"\b(?:accru\w*|damages|settle\w*|fines?|fined|penalt\w*|claim\w*|judgments?|verdicts?|award\w*|"
                       r"loss(?:es)?|restitution|disgorgement|sanctions?)\b", re.I)
_NOT_EXPOSURE = re.compile(r"\b(?:guarantee\w*|commitments?|revenues?|credit facilit\w*|commercial paper|letters? of credit|"
                           r"outstanding borrowings|notes due|market capitali[sz]ation)\b", re.I)
_SENTENCES = re.compile(r"(?<=[.;])\s+(?=[A-Z(\u201c\"])")


def exposure_amounts_usd_millions(text: str) -> list[float]:
    """``[USD millions]`` of the amounts in ``text`` (parsed as
    :func:`chainproof.tools.legal.parse_amounts_usd_millions`) whose sentence reads as legal exposure
    (module docstring), in order of appearance."""
    out: list[float] = []
    for sentence in _SENTENCES.split(" ".join(text.split())):
        if _EXPOSURE.search(sentence) and not _NOT_EXPOSURE.search(sentence):
            out += parse_amounts_usd_millions(sentence)
    return out
