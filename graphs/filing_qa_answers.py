"""The filing-qa graph's answers: :class:`FilingAnswer` and how code types one from the agent's
(:func:`typed_answer`), when a calculation's result, one stated figure or words a paragraph holds
settle it (``graphs/filing_qa.py``)."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chainproof import clipped

__all__ = ["FilingAnswer", "ParagraphCite", "cite_text", "figure", "kept_answer", "paragraph_cites", "typed_answer"]

# a figure as an answer writes it: commas only between groups of three ("1,5" is none), and "3M",
# "10-K", "FY19" are names, not figures
_NUMBER = re.compile(r"(?<![\w.,])-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w]|,\d|-[A-Za-z])")
_SCALE = re.compile(r"\s*(%|thousands?|millions?|billions?)?", re.I)
# words that turn a figure's meaning: the cited paragraph must say them too ("increased by $100 million" is not
# what "decreased by $100 million" says)
_TURNS = re.compile(r"\b(?:increas(?:e[sd]?|ing)|decreas(?:e[sd]?|ing)|r[io]se[sn]?|rising|f[ae]ll(?:s|ing)?|"
                    r"declin(?:e[sd]?|ing)|gr[eo]w(?:s|n|ing|th)?|drop(?:s|ped|ping)?|gain(?:s|ed)?|loss(?:es)?|lost|"
                    r"up|down|higher|lower|more|less|not|no|never|negative|positive)\b", re.I)
_YES_NO = re.compile(r"^(yes|no)\b[\s,.:;\-]*", re.I)
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATE = re.compile(rf"\b{_MONTH}\s+\d{{1,2}},?\s+(?:19|20)\d\d\b|\b\d{{1,2}}\s+{_MONTH}\s+(?:19|20)\d\d\b")
_YEAR = re.compile(r"(?:19|20)\d\d")  # a year named in an answer is not its figure
_CITED = re.compile(r"\[?\s*\b([a-z_]+)\s*¶\s*(\d+)\s*\]?")  # "[table ¶3]", or "table ¶3" as the 1.5B model writes it
# a cite without its section: "[¶2]", "(paragraph ¶2)", "[from paragraph 3]"
_LOOSE_CITE = re.compile(r"\(?\[?\s*(?:(?:in|see|from)\s+)?(?:(?:paragraph|para\.?)\s*¶?|¶)\s*\d+\s*\]?\)?", re.I)
SHORT_CHARS = 120  # an answer stating one figure, typed by code, is at most this long (else a sentence: which figure?)
QUOTED_CHARS = 400  # words a paragraph holds as written are typed by code up to this long (``FilingAnswer.answer``'s limit)
# square brackets ending the answer are its cites, as the prompt asks, whatever they say ("[Note 15]")
_BRACKETED_END = re.compile(r"(?:\s*\[[^\[\]]*\])+[\s.;,]*$")
_TRAILER = re.compile(r",?\s*(?:with (?:a |the )?cites? (?:of|from)?|citing|cited in|see|from)\s*$", re.I)
_LEAD = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:\-]?\s*", re.I)

class ParagraphCite(BaseModel):
    """A paragraph of the document: ``paragraph`` is its 1-based number in ``section``."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _untitled(schema))

    section: str = Field(min_length=1)
    paragraph: int = Field(ge=1)


def _shown_schema(schema: dict[str, Any]) -> None:
    """The JSON schema the decide model is shown (and, on the embedded model, constrained by):
    without the class docstring, written for developers (~130 prompt tokens), or pydantic's
    titles, which repeat the property names, and with
    ``citations`` required, so a grammar asks for them (a found answer must cite; the 1.5B model
    left them out and was asked again)."""
    schema.pop("description", None)
    schema["required"] = [*schema.get("required", []), "citations"]
    _untitled(schema)


def _untitled(schema: dict[str, Any]) -> None:
    """Drop pydantic's ``title`` keys, which repeat the model's and properties' names (prompt tokens)."""
    schema.pop("title", None)
    for part in schema.get("properties", {}).values():
        part.pop("title", None)


class FilingAnswer(BaseModel):
    """The answer: ``answer`` as text; ``value`` the number when it is one (as stated or computed by
    the calculator), in ``unit`` (e.g. ``USD millions``, ``%``); ``citations`` the evidence
    paragraphs it rests on (at least one unless ``found`` is False: the agent found no answer in
    the paragraphs it searched, and says so rather than guess); ``confidence`` 0–1 as the model
    rates it (0 on the fallback; None when the answer was typed by code from the agent's own,
    :meth:`FilingQA.direct_decision`)."""

    model_config = ConfigDict(json_schema_extra=_shown_schema)

    answer: clipped(400, "the answer: a number with its unit, or a short span of the text")  # type: ignore[valid-type]
    value: float | None = None
    unit: str | None = Field(default=None, max_length=40)
    citations: list[ParagraphCite] = Field(default_factory=list, max_length=4)
    confidence: float | None = Field(ge=0.0, le=1.0)
    found: bool = True

    @model_validator(mode="after")
    def _cited_when_found(self) -> FilingAnswer:
        if self.found and not self.citations:
            raise ValueError("citations: expected at least one paragraph the answer rests on")
        return self


def cite_text(section: str, paragraph: int) -> str:
    return f"{section} ¶{paragraph}"


def paragraph_cites(paras: list[dict[str, Any]]) -> list[ParagraphCite]:
    return [ParagraphCite(section=p["section"], paragraph=p["paragraph"]) for p in paras]


_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> str:
    """``text``'s words (letters and digits of any script), lower case, one space apart."""
    return " ".join(_WORD.findall(text.lower()))


def _holds(paras: list[dict[str, Any]], cite: ParagraphCite, words: str) -> bool:
    """Whether the evidence paragraph ``cite`` contains ``words`` as written, as whole words (case,
    spacing and punctuation aside: "yes" is not in "Eyes"; "Restructuring expenses in the" is in
    '“Restructuring expenses” in the')."""
    text = next((p["text"] for p in paras if (p["section"], p["paragraph"]) == (cite.section, cite.paragraph)), "")
    wanted = _words(words)
    return bool(wanted) and f" {wanted} " in f" {_words(text)} "


def _stated(figure: str) -> str:
    """The regex of ``figure`` as a paragraph states it, once thousands separators are dropped from
    both (``1568.6`` matches ``1,568.6``; ``68`` is not the start of ``680`` or ``68.5``; ``3`` is
    not the 3 of "3M", nor ``10`` that of "10-K")."""
    return rf"(?<![\w.]){re.escape(figure.replace(',', ''))}(?![\w]|\.\d|-[A-Za-z])"


def _stating(paras: list[dict[str, Any]], figures: list[str]) -> list[ParagraphCite]:
    """The evidence paragraphs that state any of ``figures``, in order."""
    return [ParagraphCite(section=p["section"], paragraph=p["paragraph"]) for p in paras
            if any(re.search(_stated(f), p["text"].replace(",", "")) for f in figures)]


def _number_text(value: float) -> str:
    """A computed figure as an answer states it: at most four decimals, no trailing zeros."""
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def _result(returned: str) -> tuple[str, float, str] | None:
    """``(answer text, value, expression)`` of a ``calculate`` result's JSON text; None when it is not one."""
    try:
        done = json.loads(returned)
        value = float(done["result"])
    except (ValueError, KeyError, TypeError):
        return None
    return _number_text(value), value, str(done.get("expression", ""))


def _unit(expression: str, figures: list[str], paras: list[dict[str, Any]]) -> str | None:
    """The unit of a calculation's result: ``%`` when the expression multiplies by 100; else, for
    sums, differences and averages (not products or ratios), the unit every figure has where a
    paragraph states it (``$608 million`` is ``USD millions``, ``12.5%`` is ``%``); else None."""
    if re.search(r"\*\s*100(?![\d.])", expression):
        return "%"
    if re.search(r"[*/]", expression):
        return None
    units = set()
    for f in figures:
        stated = next((m for p in paras for m in [re.search(
            rf"(\$)?\s?{_stated(f)}\s*(%|million|billion|thousand)?",
            p["text"].replace(",", ""))] if m), None)
        if stated is None:
            return None
        units.add("%" if stated.group(2) == "%" else f"USD {stated.group(2)}s" if stated.group(1) and stated.group(2)
                  else None)
    return units.pop() if len(units) == 1 else None


def _constants(expression: str) -> set[str]:
    """The numbers of ``expression`` that belong to its arithmetic: 100 multiplying or dividing
    (a percentage) and a whole divisor up to 12 (``/ 2`` of an average, ``/ 12`` months)."""
    return {m.group(1) for m in re.finditer(r"[*/]\s*(100)(?![\d.])", expression)} | {
        m.group(1) for m in re.finditer(r"/\s*(\d{1,2})(?![\d.])", expression) if 0 < int(m.group(1)) <= 12}


def _calculated(returned: str, paras: list[dict[str, Any]], seen: list[dict[str, Any]]) -> FilingAnswer | None:
    """The typed answer of a ``calculate`` result, cited by the evidence paragraphs that state
    the expression's figures, in the unit they share (:func:`_unit`); ``found`` False when a
    figure it uses (:func:`_constants` aside) is stated by no paragraph the model was shown
    (``seen``: the evidence and the search's; the fresh-user QA's "CEO's salary" was computed
    from two invented figures); None when the result is not a number."""
    computed = _result(returned)
    if computed is None:
        return None
    figures = [n.lstrip("-$") for n in _NUMBER.findall(computed[2])]
    # "* 100", "/ 100" (a percentage), "/ 2" (an average) are the arithmetic's, not the filing's
    operands = [f for f in figures if f not in _constants(computed[2])]
    unstated = list(dict.fromkeys(f for f in operands if not _stating(seen, [f])))
    if unstated:  # the model read figures the filing does not state: no answer rests on them
        return FilingAnswer(answer=f"not established: the calculation {computed[2]} uses {', '.join(unstated)}, which "
                                   "no paragraph searched states", found=False, confidence=None)
    cites = _stating(paras, figures)[:4]
    if not cites:
        return None
    unit = _unit(computed[2], figures, paras)
    text = computed[0] + ("%" if unit == "%" else f" {unit}" if unit else "")
    return FilingAnswer(answer=text, value=computed[1], unit=unit, citations=cites, confidence=None)


def figure(stated: str) -> float:
    """A number as an answer states it (``-$1,568.6``) as a float."""
    return float(stated.replace("$", "").replace(",", ""))



def typed_answer(data: dict[str, Any], paras: list[dict[str, Any]], not_found: str,
                 seen: list[dict[str, Any]] | None = None) -> FilingAnswer | None:
    """The answer typed by code from the agent step's outcome ``data`` and the evidence ``paras``
    (``{"section", "paragraph", "text"}``), or None when the model must type it; ``not_found``
    is the reply that means the paragraphs did not answer: the answer is then ``found=False``,
    never a figure or words the model would have to invent. ``seen``: every paragraph the model
    was shown (default ``paras``), where a calculation's figures must be stated."""
    if data.get("stop_reason") == "returned":
        return _calculated(str(data.get("answer") or ""), paras, [*paras, *(seen or [])])
    text = str(data.get("answer") or "") if data.get("stop_reason") == "answered" else ""
    cites = [ParagraphCite(section=m.group(1), paragraph=int(m.group(2))) for m in _CITED.finditer(text)]
    # "[from paragraph 3]", "[¶2]": a cite without its section names the paragraph number, and is no figure
    loose = {int(n) for m in _LOOSE_CITE.finditer(_CITED.sub(" ", text)) for n in re.findall(r"\d+", m.group())}
    bare = _TRAILER.sub("", _LEAD.sub("", _LOOSE_CITE.sub(" ", _CITED.sub(" ", _BRACKETED_END.sub("", text) or text))
                                      ).strip(" .;:,\n")).strip(" .;:,")
    if bare.startswith(not_found) and len(bare) <= 120:  # said after its search: no guess from the model
        return FilingAnswer(answer="not found in the filing's paragraphs the model read", found=False, confidence=None)
    if not bare or len(bare) > QUOTED_CHARS or not_found in bare:
        return None
    # "for 2018 and 2019 is 45.5", "as of September 29, 2019": years and dates are not the figure
    stated = [n for n in _NUMBER.findall(_DATE.sub(" ", bare)) if not _YEAR.fullmatch(n)]
    if len(stated) == 1 and len(bare) <= SHORT_CHARS:
        return _figure_answer(bare, stated[0], cites, loose, paras)
    return _words_answer(bare, cites, loose, paras)


def _own(cites: list[ParagraphCite], loose: set[int], fitting: list[ParagraphCite]) -> list[ParagraphCite] | None:
    """The paragraphs an answer rests on among ``fitting`` (those that state or hold it): the ones
    it cites (a loose cite by its number); when it cites some and none fits, None (the model's
    cites do not state it: which is right is the model's to say, never re-cited by code); when it
    cites none, the first that fits."""
    if cites or loose:
        own = [c for c in fitting if c in cites or (not cites and c.paragraph in loose)]
        return own or None
    return fitting[:1] or None


def _figure_answer(bare: str, stated: str, cites: list[ParagraphCite], loose: set[int],
                   paras: list[dict[str, Any]]) -> FilingAnswer | None:
    """An answer stating one figure: cited by a paragraph that states it in the same scale
    (``$1.2 billion`` is not ``$1.2 million``; a table's bare ``1.2`` may be either) and sign
    (``-608`` or ``(608)`` needs a paragraph's ``-608`` or ``(608)``), and says the words that turn
    its meaning (:data:`_TURNS`); else None (the model types it)."""
    number = stated.lstrip("-$")
    at = bare.find(number)
    scale = (_SCALE.match(bare, at + len(number)).group(1) or "").lower().rstrip("s")  # type: ignore[union-attr]
    negative = stated.startswith("-") or bool(re.search(rf"\(\s*\$?\s*{re.escape(number)}\s*\)", bare))
    turns = {w.lower() for w in _TURNS.findall(bare)}
    fitting = []
    for p in paras:
        text = p["text"].replace(",", "")
        for m in re.finditer(_stated(number), text):
            said = (_SCALE.match(text, m.end()).group(1) or "").lower().rstrip("s")  # type: ignore[union-attr]
            signed = text[max(0, m.start() - 3):m.start()].rstrip(" $").endswith(("-", "(", "−"))
            if (not scale or not said or said == scale) and (signed or not negative) and \
                    turns <= {w.lower() for w in _TURNS.findall(p["text"])}:
                fitting.append(ParagraphCite(section=p["section"], paragraph=p["paragraph"]))
                break
    own = _own(cites, loose, fitting)
    value = figure(number) * (-1 if negative else 1)
    return None if own is None else FilingAnswer(answer=bare, value=value, unit=None, citations=_unique(own), confidence=None)


def _words_answer(bare: str, cites: list[ParagraphCite], loose: set[int], paras: list[dict[str, Any]]) -> FilingAnswer | None:
    """Words (a quoted sentence too, or ``Yes``/``No`` followed by the words that say so) that a
    paragraph holds as written, at least two words of it; else None (the model types it)."""
    said = _YES_NO.sub("", bare, count=1)
    if len(_WORD.findall(said)) < 2:  # "No", "the", "material": what a one-word answer means is the model's to say
        return None
    own = _own(cites, loose, [c for c in paragraph_cites(paras) if _holds(paras, c, said)])
    return None if own is None else FilingAnswer(answer=bare, value=None, unit=None, citations=_unique(own), confidence=None)


def _unique(cites: list[ParagraphCite]) -> list[ParagraphCite]:
    return list({(c.section, c.paragraph): c for c in cites}.values())[:4]


def kept_answer(text: str, returned: bool, paras: list[dict[str, Any]]) -> FilingAnswer:
    """The agent's own answer kept when the model gave no valid typed one: a calculation's result
    (``returned``: ``text`` is its JSON), else ``text`` with its first number as the value, citing
    the first evidence paragraph, with confidence 0 (``paras`` must not be empty)."""
    computed = _result(text) if returned else None
    number = _NUMBER.search(text)
    value = computed[1] if computed else figure(number.group()) if number else None
    return FilingAnswer(answer=computed[0] if computed else text[:400], value=value, unit=None, confidence=0.0,
                        citations=paragraph_cites(paras[:1]))
