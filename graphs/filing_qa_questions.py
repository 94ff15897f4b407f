"""The filing-qa graph's questions: which ask for a computed figure (:func:`needs_calculation`),
the form of that calculation, and what the answer step is told to reply (:func:`answer_task`)
(``graphs/filing_qa.py``)."""

from __future__ import annotations

import re

__all__ = ["NOT_FOUND", "answer_task", "calculate_note", "needs_calculation", "said_not_found"]

NOT_FOUND = "NOT FOUND"

_YES_NO_WORDS = r"^\s*(?:did|does|do|is|are|was|were|has|have|had|can|could|will|would|should)\b"  # a yes/no question
_YES_NO = re.compile(_YES_NO_WORDS, re.I)
# a question asking for a figure computed from others; measured on TAT-QA's dev split (1,668
# questions): it names 97 % of the arithmetic questions and 10 % of the span questions
_COMPUTED = re.compile(r"\b(change|changes|changed|average|difference|ratio|increase|decrease|growth|sum|combined|"
                       r"proportion|percentage|percent)\b|how much (?:more|less|higher|lower)|"
                       r"\btotal\b.*\b(?:and|between|both|from|across)\b", re.I)
_EXPLAINED = re.compile(r"\bwhy\b|^\s*(?:how (?:did|does|is|are|was|were)|what (?:was|were|is|are) the (?:reasons?|causes?)|"
                        r"what caused|explain|which)\b|(?:due to|recognized as|attributable to)\?\s*$|"
                        # a yes/no question, a risk that could change something, what a text says: no figure asked
                        rf"{_YES_NO_WORDS}|"
                        r"\b(?:could|may|might|would|will|can) (?:change|increase|decrease)\b|\bclimate change\b|"
                        r"\bsays?\b", re.I)
#: (words of the question, the form of the calculation), first match wins: the note names the operation asked
_OPERATIONS = ((re.compile(r"percent(?:age)?\s+(?:change|increase|decrease|growth)|growth rate", re.I),
                "(new - old) / old * 100"),
               (re.compile(r"\baverage\b", re.I), "avg(a, b)"),
               (re.compile(r"\b(?:ratio|proportion|percentage of|percent of)\b", re.I), "part / whole (* 100 for a percentage)"),
               (re.compile(r"\b(?:total|sum|combined)\b", re.I), "a + b"),
               (re.compile(r"\b(?:change|changes|changed|difference|increase|decrease|more|less|higher|lower)\b", re.I),
                "new - old"))


def _form(question: str) -> str:
    """The form of the calculation the question's words ask for (:data:`_OPERATIONS`). Naming which
    year is new did not help the embedded 1.5B model, measured on TAT-QA (24 questions): it fixed
    one sign ("2926 - 2756" for a change "in 2019 from 2018") and broke another."""
    return next((f for words, f in _OPERATIONS if words.search(question)), "the arithmetic the question asks for")


def calculate_note(question: str) -> str:
    """What an arithmetic answer given without ``calculate`` is told: call it, in the form the
    question's words ask for."""
    return (f"This question asks for a figure computed from others. Call calculate with the figures from the paragraphs "
            f"({_form(question)}).")


def said_not_found(text: str) -> bool:
    """The reply is :data:`NOT_FOUND` as asked (upper case, first; "were not found to be
    material" is an answer)."""
    return text.strip().lstrip("*_ ").startswith(NOT_FOUND)




def answer_task(question: str) -> str:
    """The answer step's instruction: for a computed figure, the calculation's form; for a yes/no
    question, Yes or No with the words that say so (the fresh-user QA's "Has 3M recorded a
    liability for the Bair Hugger claims?" could be answered only with copied words); else the
    answer copied from the paragraphs."""
    if needs_calculation(question):
        return f"Call calculate with the figures from the paragraphs ({_form(question)})."
    what = ("Yes or No, then the words of the paragraphs that say so" if _YES_NO.search(question) else
            "the answer copied from the paragraphs (a figure with its unit, or a few words)")
    # no example answer: the embedded 1.5B model copied "1,568.6 [table ¶3]" as its answer
    return (f"Reply with one line: {what}, then the cites of the paragraphs you used, in square brackets. If they do "
            f"not answer it, reply {NOT_FOUND}.")


def needs_calculation(question: str) -> bool:
    """True when ``question`` asks for a figure computed from others (see :data:`_COMPUTED`), not
    for a reason or a span of text."""
    return bool(_COMPUTED.search(question)) and not _EXPLAINED.search(question)
