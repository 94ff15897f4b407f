"""The second bundled graph: answer a question about a company's filing.

``chainproof run filing-qa --company MMM --question "..."``. Written with the public API only
(``from chainproof import ...``), like a graph of your own. The plan:

1. **answer** (an agent step, ReAct): the model chooses among two tools until it answers (its
   first reply must call one, ``first_tool_choice="required"``) —
   ``search_filing`` (BM25 over the filing's paragraphs, each hit cited ``section ¶n``) and
   ``calculate`` (safe arithmetic: the model writes the expression, code computes it). The document
   searched is fixed by the plan (``tool_args``), never chosen by the model.
2. **evidence** (a tool step, no model call): the paragraphs the answer cites, then the best BM25
   matches of the question and answer (at most four).
3. **decide**: the typed answer (:class:`FilingAnswer`: text, value, unit, citations by section
   and paragraph, confidence). Every citation must name one of the evidence paragraphs; one that
   does not is shown to the model, which answers again (bounded attempts); after them the agent's
   own answer is kept with the paragraphs it cited (or the best match) and confidence 0.

Two checks by code keep the small embedded model honest and the run cheap:

* **Arithmetic is the calculator's** (:meth:`FilingQA.check_answer`): when the question asks for
  a computed figure (:func:`needs_calculation`: a change, difference, average, ratio, percentage
  or a total across years) and the agent answers without having run ``calculate``, its answer is
  sent back once, asking for the calculation, and the model's next reply must call ``calculate``
  (a named ``tool_choice``). The 1.5B model otherwise subtracts in its head (it
  answered 3M's $608M - $595M as "$4 million").
* **A clean figure is typed by code** (:meth:`FilingQA.direct_decision`): when the agent's
  answer is short, states one number and every cite in it is one of the evidence paragraphs, the
  typed answer is read from it (no model call; ``confidence`` None, not rated); otherwise the
  model types it as above.

No approval is asked: the run answers a question and decides nothing for anyone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from langchain_core.tools import InjectedToolArg
from pydantic import BaseModel, Field

from chainproof import AgentAnswer, ApprovalPolicy, ChainSpec, ChainView, PlanStep, SendBack, clipped, tool
from chainproof.tools.calculator import evaluate
from chainproof.tools.dossier import resolve_dossier
from chainproof.tools.filing_search import evidence, load_source, search

__all__ = ["FilingAnswer", "FilingQA", "FilingQAInputs", "ParagraphCite", "calculate", "calculate_note", "filing_evidence",
           "needs_calculation", "search_filing"]

MAX_ITERATIONS = 6  # search, maybe a second search, a calculation, the answer, and room to repair a call
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
_YEAR = re.compile(r"(?:19|20)\d\d")  # a year named in an answer is not its figure
# a question asking for a figure computed from others; measured on TAT-QA's dev split (1,668
# questions): it names 97 % of the arithmetic questions and 10 % of the span questions
_COMPUTED = re.compile(r"\b(change|changes|changed|average|difference|ratio|increase|decrease|growth|sum|combined|"
                       r"proportion|percentage|percent)\b|how much (?:more|less|higher|lower)|"
                       r"\btotal\b.*\b(?:and|between|both|from|across)\b", re.I)
_EXPLAINED = re.compile(r"\bwhy\b|^\s*(?:how (?:did|does|is|are|was|were)|what (?:was|were|is|are) the (?:reasons?|causes?)|"
                        r"what caused|explain|which)\b|(?:due to|recognized as|attributable to)\?\s*$", re.I)
_CITED = re.compile(r"\[?\s*\b([a-z_]+)\s*¶\s*(\d+)\s*\]?")  # "[table ¶3]", or "table ¶3" as the 1.5B model writes it
_TRAILER = re.compile(r",?\s*(?:with (?:a |the )?cites? (?:of|from)?|citing|cited in|see|from)\s*$", re.I)
_LEAD = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:\-]?\s*", re.I)
EXPRESSION_CHARS = 160  # a calculator expression's length in the tool's schema (maxLength: llama.cpp's grammar
# then closes the string; greedy decoding once wrote "100.000000000000012500000..." up to max_tokens)
#: (words of the question, the form of the calculation), first match wins: the note names the operation asked
_OPERATIONS = ((re.compile(r"percent(?:age)?\s+(?:change|increase|decrease|growth)|growth rate", re.I),
                "(new - old) / old * 100"),
               (re.compile(r"\baverage\b", re.I), "avg(a, b)"),
               (re.compile(r"\b(?:ratio|proportion|percentage of|percent of)\b", re.I), "part / whole (* 100 for a percentage)"),
               (re.compile(r"\b(?:total|sum|combined)\b", re.I), "a + b"),
               (re.compile(r"\b(?:change|changes|changed|difference|increase|decrease|more|less|higher|lower)\b", re.I),
                "new - old"))


def calculate_note(question: str) -> str:
    """What an arithmetic answer given without ``calculate`` is told: call it, in the form the
    question's words ask for (:data:`_OPERATIONS`)."""
    form = next((f for words, f in _OPERATIONS if words.search(question)), "the arithmetic the question asks for")
    return (f"This question asks for a figure computed from others. Call calculate with the figures from the paragraphs "
            f"({form}), then answer with its result and the cites.")


def _figure(stated: str) -> float:
    """A number as an answer states it (``-$1,568.6``) as a float."""
    return float(stated.replace("$", "").replace(",", ""))


def needs_calculation(question: str) -> bool:
    """True when ``question`` asks for a figure computed from others (see :data:`_COMPUTED`), not
    for a reason or a span of text."""
    return bool(_COMPUTED.search(question)) and not _EXPLAINED.search(question)


@tool
def search_filing(query: str, source: Annotated[str, InjectedToolArg], section: str | None = None) -> dict:
    """Search the company's filing for paragraphs about a few keywords (e.g. 'inventories 2019').
    Returns the best paragraphs, each with its cite such as 'table ¶3'. Give section to search one
    section only."""
    return search(load_source(source), query, section=section).model_dump(mode="json")


@tool
def calculate(expression: Annotated[str, Field(max_length=EXPRESSION_CHARS)]) -> dict:
    """Compute an arithmetic expression such as 608 - 595, avg(45, 43) or 1568.6 / 1571.7. Numbers,
    + - * / **, parentheses, abs, round, min, max, sum, avg."""
    # "a - b = c, [table ¶2]": the left side is computed; the model's own result and notes are dropped
    left = expression.split("=", 1)[0].strip() if "=" in expression else expression
    return {"expression": left, "result": evaluate(left)}


@tool
def filing_evidence(source: str, question: str, answer: str) -> dict:
    """The paragraphs an answer may cite: those it cites, then the best matches of the question
    and answer (at most four), each with its cite."""
    hits = evidence(load_source(source), question, answer)
    return {"paragraphs": [h.model_dump(mode="json", exclude={"score"}) for h in hits]}


class FilingQAInputs(BaseModel):
    """The inputs of a filing-qa run."""

    company: str = Field(min_length=1, description="ticker, e.g. MMM")
    question: str = Field(min_length=1, max_length=1000, description="the question about the company's filing")
    dossier: str | None = Field(default=None, description="dossier folder (default: the bundled dossier of the ticker)")
    document: str | None = Field(default=None, description='a JSON document {"name", "sections": {section: '
                                                           '[paragraph, ...]}} searched instead of the filing texts')


class ParagraphCite(BaseModel):
    """A paragraph of the document: ``paragraph`` is its 1-based number in ``section``."""

    section: str = Field(min_length=1)
    paragraph: int = Field(ge=1)


class FilingAnswer(BaseModel):
    """The answer: ``answer`` as text; ``value`` the number when it is one (as stated or computed by
    the calculator), in ``unit`` (e.g. ``USD millions``, ``%``); ``citations`` the evidence
    paragraphs it rests on; ``confidence`` 0–1 as the model rates it (0 on the fallback; None
    when the answer was typed by code from the agent's own, :meth:`FilingQA.direct_decision`)."""

    answer: clipped(400, "the answer: a number with its unit, or a short span of the text")  # type: ignore[valid-type]
    value: float | None = None
    unit: str | None = Field(default=None, max_length=40)
    citations: list[ParagraphCite] = Field(min_length=1, max_length=4)
    confidence: float | None = Field(ge=0.0, le=1.0)


def _cite(section: str, paragraph: int) -> str:
    return f"{section} ¶{paragraph}"


class FilingQA(ChainSpec[FilingAnswer]):
    """Answer a question about a company's filing: an agent searches its paragraphs and calculates,
    then a typed answer cites them."""

    name = "filing-qa"
    inputs_model = FilingQAInputs
    path_inputs = ("dossier", "document")
    decision_schema = FilingAnswer
    max_steps = 20
    decide_effort = "medium"
    system_prompt = ("You answer questions about a company's filing from its text. Use only what the tools return. "
                     "Be brief.")

    def tools(self):
        return [search_filing, calculate, filing_evidence]

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """``question``: non-blank; ``company``: a ticker; the document searched is ``document``
        (a JSON file) when given, else the dossier (``dossier`` or the bundled one of the ticker).
        Raises ``ValueError`` naming the field (``DossierError`` for the document)."""
        inputs = {k: v.strip() if isinstance(v, str) else v for k, v in inputs.items()}
        if not inputs.get("question"):
            raise ValueError("question: expected a question about the filing, got an empty text")
        if not inputs.get("company"):
            raise ValueError("company: expected a ticker such as MMM")
        given = super().validate_inputs(inputs)
        company = given["company"].upper()
        if given.get("document"):
            if not str(given["document"]).lower().endswith(".json"):
                raise ValueError(f"document: expected a .json file of sections, got {given['document']!r}")
            source = str(Path(given["document"]).expanduser().resolve())
        else:
            source = str(resolve_dossier(company, given.get("dossier")))
        doc = load_source(source)  # refuses a missing or malformed source before anything runs
        return {"company": company, "question": given["question"], "source": source, "document_name": doc.name}

    def subject(self, inputs: dict[str, Any]) -> str | None:
        return inputs.get("company")

    def goal(self, inputs: dict[str, Any]) -> str:
        return f"Answer from the filing of {inputs['document_name']}: {inputs['question']}"

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        return [
            PlanStep(id="answer", title="Answer from the filing", kind="agent", effort="medium", keep_data=True,
                     tools=["search_filing", "calculate"], max_iterations=MAX_ITERATIONS,
                     # the embedded model otherwise answers at once from memory, calling no tool
                     first_tool_choice="required", answer_checks=1,
                     tool_args={"search_filing": {"source": "{inputs.source}"}},
                     # no example answer: the embedded 1.5B model copied "1,568.6 [table ¶3]" as its answer
                     instruction=(f"Answer: {inputs['question']}\nFirst call search_filing with a few keywords; never "
                                  "answer before you have searched. Do any arithmetic with calculate. When you know "
                                  "the answer, reply with one line: the answer, then the cite of each paragraph you "
                                  "used in square brackets as the search results give it.")),
            PlanStep(id="evidence", title="Evidence for the answer", kind="tool", tool="filing_evidence",
                     args={"source": "{inputs.source}", "question": "{inputs.question}"},
                     args_from_summaries={"answer": "answer"}, keep_data=True, interpret=False,
                     instruction="The paragraphs the answer may cite."),
        ]

    def summarize_result(self, step: PlanStep, result: Any) -> str:
        """The evidence step's finding: the cites of its paragraphs."""
        cites = [p["cite"] for p in (result or {}).get("paragraphs", [])]
        return f"{len(cites)} paragraphs: {', '.join(cites) or 'none'}"

    def decision_prompt(self, view: ChainView) -> str:
        found = view.finding("answer")
        paras = view.data("evidence").get("paragraphs", [])
        listed = "\n".join(f"[{p['cite']}] {p['text'][:500]}" for p in paras) or "(none)"
        return (
            f"Question: {view.inputs['question']}\nThe agent's answer: {found.summary if found else '(none)'}\n\n"
            f"Paragraphs:\n{listed}\n\nGive the final answer as JSON: "
            '{"answer": "...", "value": number or null, "unit": "..." or null, '
            '"citations": [{"section": "table", "paragraph": 3}], "confidence": 0.0 to 1.0}. '
            "answer: only the answer itself (a number with its unit, or the words copied from a paragraph), not a "
            "sentence. value: the number of the answer exactly as the agent's answer or a paragraph states it; do not "
            "compute. "
            "Cite only paragraphs listed above that support the answer."
        )

    def check_decision(self, decision: FilingAnswer, view: ChainView) -> None:
        """Every citation must name a paragraph of the evidence step (retrieved and shown)."""
        allowed = [p["cite"] for p in view.data("evidence").get("paragraphs", [])]
        bad = [_cite(c.section, c.paragraph) for c in decision.citations if _cite(c.section, c.paragraph) not in allowed]
        if bad:
            raise ValueError(f"citations: {bad} are not among the paragraphs given; cite only {allowed}")

    def check_answer(self, step: PlanStep, answer: AgentAnswer, view: ChainView) -> SendBack | None:
        """The answer of a question that needs arithmetic goes back once when ``calculate`` never
        ran in the step (:func:`calculate_note`), and the model's next reply must call it."""
        if step.id == "answer" and needs_calculation(view.inputs["question"]) and "calculate" not in answer.tools_run:
            return SendBack(calculate_note(view.inputs["question"]), tool="calculate")
        return None

    def direct_decision(self, view: ChainView) -> FilingAnswer | None:
        """The typed answer read from the agent's own when it answered, is at most 120 characters
        without its cites and states exactly one number besides years (a text answer goes to the model, which
        picks the words that answer), citing the paragraphs it names or, when it names none, the
        first evidence paragraph that states that number as written (none: the model types it).
        The decide node then checks the cites against the evidence, and asks the model when one
        does not hold. ``value`` is that number, ``confidence`` None (not rated)."""
        data = view.data("answer")
        text = str(data.get("answer") or "") if data.get("stop_reason") == "answered" else ""
        cites = [ParagraphCite(section=m.group(1), paragraph=int(m.group(2))) for m in _CITED.finditer(text)]
        bare = _TRAILER.sub("", _LEAD.sub("", _CITED.sub(" ", text)).strip(" .;:,\n")).strip(" .;:,")
        stated = [n for n in _NUMBER.findall(bare) if not _YEAR.fullmatch(n)]  # "for 2018 and 2019 is 45.5"
        if not bare or len(bare) > 120 or len(stated) != 1:
            return None  # which number is the answer, or which words of a sentence, is the model's to say
        if not cites:  # uncited: the evidence paragraph that states the number, when one does
            figure = stated[0].lstrip("-$")
            cites = [ParagraphCite(section=p["section"], paragraph=p["paragraph"])
                     for p in view.data("evidence").get("paragraphs", []) if re.search(rf"(?<![\d.,]){re.escape(figure)}(?![\d]|[.,]\d)", p["text"])][:1]
            if not cites:
                return None
        unique = list({(c.section, c.paragraph): c for c in cites}.values())
        return FilingAnswer(answer=bare, value=_figure(stated[0]), unit=None,
                            citations=unique[:4], confidence=None)

    def fallback_decision(self, view: ChainView, errors: list[str]) -> FilingAnswer | None:
        """The agent's answer, its first number as the value, and the paragraphs it cited (else the
        best evidence paragraph), with confidence 0; None when there is no evidence to cite."""
        paras = view.data("evidence").get("paragraphs", [])
        if not paras:
            return None
        found = view.finding("answer")
        text = (found.summary if found else "") or "(no answer)"
        number = _NUMBER.search(text)
        value = _figure(number.group()) if number else None
        return FilingAnswer(answer=text[:400], value=value, unit=None, confidence=0.0,
                            citations=[ParagraphCite(section=p["section"], paragraph=p["paragraph"]) for p in paras[:1]])

    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(nodes=[])

    def render_report(self, view: ChainView) -> str:
        answer = view.decision or {}
        paras = {p["cite"]: p["text"] for p in view.data("evidence").get("paragraphs", [])}
        lines = [f"# {view.inputs['document_name']}: {view.inputs['question']}", "",
                 f"**Answer:** {answer.get('answer', '(none)')}"]
        if answer.get("value") is not None:
            lines.append(f"**Value:** {answer['value']:g} {answer.get('unit') or ''}".rstrip())
        rated = answer.get("confidence")
        lines.append((f"**Confidence:** {rated:.2f}" if rated is not None else "**Confidence:** not rated (typed by "
                      "code from the agent's answer)")
                     + (" (fallback: the agent's own answer; the model gave no valid typed answer)"
                        if view.decision_fallback else ""))
        lines += ["", "## Citations", ""]
        for c in answer.get("citations", []):
            cite = _cite(c["section"], c["paragraph"])
            lines.append(f"- **{cite}**: {paras.get(cite, '')[:600]}")
        found = view.finding("answer")
        if found is not None:
            lines += ["", "## The agent's answer", "", found.summary]
        return "\n".join(lines) + "\n"
