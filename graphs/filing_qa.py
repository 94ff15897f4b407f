"""The second bundled graph: answer a question about a company's filing.

``chainproof run filing-qa --company MMM --question "..."``. Written with the public API only
(``from chainproof import ...``), like a graph of your own. The plan:

1. **search** (a tool step, no model call): the filing's paragraphs that best match the question
   (``search_filing``: BM25 over the paragraphs, each hit cited ``section ¶n``).
2. **answer** (an agent step, ReAct): the model reads the best three paragraphs and
   answers, with two tools it may call: ``search_filing`` (its own keywords; the document is fixed
   by the plan, ``tool_args``) and ``calculate`` (safe arithmetic: the model writes the
   expression, code computes it). Its prompt is the graph's own (:meth:`FilingQA.agent_prompt`:
   the paragraphs, the question and the task, no more), and its first ``tool_choice`` follows the
   question: a question that asks for a computed figure (:func:`needs_calculation`) must call
   ``calculate`` first, whose result is then the answer (``return_direct``, no model call reads
   it); any other question is answered from the paragraphs (``tool_choice="none"``: the embedded
   model is not even shown the tools). When the model says the paragraphs do not answer it,
   NOT FOUND is the answer (with :attr:`FilingQA.second_look`, it is first shown the rest of the
   search's six paragraphs, by code: :meth:`FilingQA.check_answer`).
3. **evidence** (a tool step, no model call): the paragraphs the answer cites, then the best BM25
   matches of the question and answer (at most four).
4. **decide**: the typed answer (:class:`FilingAnswer`: text, value, unit, citations by section
   and paragraph, confidence), typed by code when the answer settles it
   (:meth:`FilingQA.direct_decision`: a calculation's result, one stated figure, or words copied
   from a cited paragraph), else by the model. Every citation must name one of the evidence
   paragraphs; one that does not is shown to the model, which answers again (bounded attempts);
   after them the agent's own answer is kept with the paragraphs it cited (or the best match) and
   confidence 0.

Why this shape: ``bench/filing_qa.py`` (TAT-QA, the embedded model) measures it against a plain
ReAct loop with the same tools; one model call answers most questions. No approval is asked: the run answers a question and decides nothing for anyone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.tools import InjectedToolArg
from pydantic import BaseModel, Field

from chainproof import AgentAnswer, ApprovalPolicy, ChainSpec, ChainView, PlanStep, SendBack, tool
from chainproof.graphs.filing_qa_answers import FilingAnswer, ParagraphCite, cite_text, kept_answer, typed_answer
from chainproof.graphs.filing_qa_questions import NOT_FOUND, answer_task, calculate_note, needs_calculation, said_not_found
from chainproof.tools.calculator import evaluate
from chainproof.tools.dossier import resolve_dossier
from chainproof.tools.filing_search import evidence, load_source, search, searchable

__all__ = ["FilingAnswer", "FilingQA", "FilingQAInputs", "ParagraphCite", "calculate", "calculate_note", "clip",
           "filing_evidence", "more_paragraphs", "needs_calculation", "search_filing"]

MAX_ITERATIONS = 6  # the answer, a second search and its answer, a calculation, and room to repair a call
#: characters of the search step's best paragraphs the agent's prompt shows (their starts): more of
#: the best, less of the next two (a figure is often past a long paragraph's first sentences)
SHOWN_CHARS = (700, 200, 200)
#: characters of each search paragraph shown after the model says the paragraphs do not answer:
#: what the first prompt left out (the fourth paragraph, and the rest of the others), by code
MORE_CHARS = 400
MORE_TOTAL = 1200  # characters of all of them together
SEARCH_HITS = 6  # paragraphs the search step keeps: the prompt shows three, a second look the rest
DECIDE_CHARS = 300  # characters of each evidence paragraph the decide prompt shows (the model picks words and cites)
DECIDE_PARAGRAPHS = 2  # of the evidence step's (at most four, those the answer cites first); 3 cost 9 tokens a question
# more on TAT-QA (24 questions) and answered none more right
EXPRESSION_CHARS = 160  # a calculator expression's length in the tool's schema (maxLength: llama.cpp's grammar
# then closes the string; greedy decoding once wrote "100.000000000000012500000..." up to max_tokens)
def clip(text: str, start: int, stop: int) -> str:
    """``text[start:stop]`` without a word cut at either end (``"..."`` marks a cut), so a figure
    is never shown half (``"1,56"`` of ``"1,568.6"``)."""
    part = text[start:stop]
    if stop < len(text) and " " in part:
        part = part[:part.rindex(" ")] + " ..."
    if start and " " in part:
        part = "... " + part[part.index(" ") + 1:]
    return part.strip()


def more_paragraphs(hits: list[dict[str, Any]]) -> str:
    """The search's paragraphs (``{"cite", "text"}``) past what the answer prompt showed
    (:data:`SHOWN_CHARS`): the rest of each, and the ones it did not show, at most
    :data:`MORE_CHARS` characters each and :data:`MORE_TOTAL` in all, cited; empty when the prompt
    showed them all."""
    rest: list[str] = []
    room = MORE_TOTAL
    for i, hit in enumerate(hits):
        shown = SHOWN_CHARS[i] if i < len(SHOWN_CHARS) else 0
        if len(hit["text"]) > shown and room > 0:
            start = max(0, hit["text"].rfind(" ", 0, shown)) if shown else 0  # from the word the prompt cut
            part = clip(hit["text"], start, start + min(MORE_CHARS, room))
            rest.append(f"[{hit['cite']}] {part}")
            room -= len(part)
    return "\n".join(rest)


@tool
def search_filing(query: str, source: Annotated[str, InjectedToolArg], section: str | None = None,
                  limit: Annotated[int, InjectedToolArg] = 4) -> dict:
    """Search the company's filing for paragraphs about a few keywords (e.g. 'inventories 2019').
    Returns the best paragraphs, each with its cite such as 'table ¶3'. Give section to search one
    section only."""
    return search(load_source(source), query, section=section, limit=limit).model_dump(mode="json")


def _calculate(expression: Annotated[str, Field(max_length=EXPRESSION_CHARS)]) -> dict:
    """Compute arithmetic, e.g. avg(45, 43) or (159 - 182) / 182 * 100."""
    # "a - b = c, [table ¶2]": the left side is computed; the model's own result and notes are dropped
    left = expression.split("=", 1)[0].strip() if "=" in expression else expression
    return {"expression": left, "result": evaluate(left)}


#: the calculator; in this graph its result is the answer (``return_direct``): the question asked
#: for that figure, and reading it back through the model only risks a mistyped copy
calculate = tool(name="calculate", return_direct=True)(_calculate)


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


class FilingQA(ChainSpec[FilingAnswer]):
    """Answer a question about a company's filing: an agent searches its paragraphs and calculates,
    then a typed answer cites them."""

    name = "filing-qa"
    inputs_model = FilingQAInputs
    path_inputs = ("dossier", "document")
    decision_schema = FilingAnswer
    max_steps = 20
    decide_effort = "medium"
    #: the decide model's first answer and one retry with its error shown: on TAT-QA the 1.5B
    #: model's third attempt repeated its second's cites (``bench/filing_qa.py``), ~490 tokens for
    #: the same fallback
    decide_attempts = 2
    #: on NOT FOUND, show the model the rest of the search's paragraphs (or let it search, when the
    #: first prompt showed them all) before NOT FOUND is the answer. Off by default, measured: on
    #: TAT-QA with the embedded 1.5B model (24 questions, seed 7) the model said NOT FOUND on 3 and
    #: answered none of them on the second look, which cost 66 tokens a question over the run (432
    #: against 366; ``bench/filing_qa.py --systems chainproof,chainproof-second-look``); with a model that misses
    #: less of what it is shown, a second look at the paragraphs it was not shown may pay.
    second_look = False
    system_prompt = "Answer questions from a company's filing, using only its text. Be brief."

    def tools(self):
        return [search_filing, calculate, filing_evidence]

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """``question``: non-blank; ``company``: a ticker; the document searched is ``document``
        (a JSON file) when given, else the dossier (``dossier`` or the bundled one of the ticker;
        both given is refused). Raises ``ValueError`` naming the field (``DossierError`` for the
        document)."""
        inputs = {k: v.strip() if isinstance(v, str) else v for k, v in inputs.items()}
        if not inputs.get("question"):
            raise ValueError("question: expected a question about the filing, got an empty text")
        if not searchable(str(inputs["question"])):
            raise ValueError(f"question: expected words to search the filing for, got {inputs['question']!r}")
        if not inputs.get("company"):
            raise ValueError("company: expected a ticker such as MMM")
        given = super().validate_inputs(inputs)
        company = given["company"].upper()
        if given.get("document") and given.get("dossier"):
            raise ValueError("dossier: give either a dossier or a document to search, not both")
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
        question = inputs["question"]
        computed = needs_calculation(question)
        return [
            PlanStep(id="search", title="Search the filing", kind="tool", tool="search_filing", keep_data=True,
                     args={"source": "{inputs.source}", "query": "{inputs.question}", "limit": SEARCH_HITS},
                     interpret=False,
                     instruction="The paragraphs that best match the question."),
            PlanStep(id="answer", title="Answer from the filing", kind="agent", effort="medium",
                     keep_data=True,
                     tools=["search_filing", "calculate"], max_iterations=MAX_ITERATIONS, answer_checks=1,
                     # arithmetic is the calculator's, from its first reply; any other answer is read first
                     first_tool_choice="calculate" if computed else "none",
                     tool_args={"search_filing": {"source": "{inputs.source}"}},
                     instruction=answer_task(question)),
            PlanStep(id="evidence", title="Evidence for the answer", kind="tool", tool="filing_evidence",
                     args={"source": "{inputs.source}", "question": "{inputs.question}"},
                     args_from_summaries={"answer": "answer"}, keep_data=True, interpret=False,
                     instruction="The paragraphs the answer may cite."),
        ]

    def agent_prompt(self, step: PlanStep, view: ChainView, task: str) -> list[BaseMessage] | None:
        """The answer step's prompt: the system prompt, then the search step's best paragraphs
        (:data:`SHOWN_CHARS`, cited), the question and ``task``; the engine's goal, progress and
        summary lines would repeat them."""
        hits = view.data("search").get("hits", [])
        shown = "\n".join(f"[{h['cite']}] {clip(h['text'], 0, n)}" for h, n in zip(hits, SHOWN_CHARS)) or "(no paragraph matched)"
        return [SystemMessage(self.system_prompt),
                HumanMessage(f"Paragraphs of the filing:\n{shown}\n\nQuestion: {view.inputs['question']}\n{task}")]

    def summarize_result(self, step: PlanStep, result: Any) -> str:
        """The search and evidence steps' findings: the cites of their paragraphs."""
        cites = [p["cite"] for p in (result or {}).get("paragraphs" if step.id == "evidence" else "hits", [])]
        return f"{len(cites)} paragraphs: {', '.join(cites) or 'none'}"

    def decision_prompt(self, view: ChainView) -> str:
        found = view.finding("answer")
        paras = view.data("evidence").get("paragraphs", [])
        listed = "\n".join(f"[{p['cite']}] {clip(p['text'], 0, DECIDE_CHARS)}" for p in paras[:DECIDE_PARAGRAPHS])
        # the example cite is one of the paragraphs listed: the 1.5B model copied an example's cite literally
        shown = paras[0] if paras else {"cite": "table ¶3", "section": "table", "paragraph": 3}
        return (
            f"Question: {view.inputs['question']}\nThe agent's answer: {found.summary if found else '(none)'}\n\n"
            f"Paragraphs:\n{listed or '(none)'}\n\nGive the final answer as JSON. answer: only the answer itself (a "
            "number with its unit, or words copied from a paragraph), not a sentence; value: its number as stated, or "
            f'null; citations: the paragraphs above that state it, [{shown["cite"]}] as {{"section": '
            f'"{shown["section"]}", "paragraph": {shown["paragraph"]}}}.'
        )

    def decision_messages(self, view: ChainView, task: str) -> list[BaseMessage]:
        """The decide prompt: :meth:`decision_prompt` (question, the agent's answer, the evidence
        paragraphs) after the engine's JSON instruction, without the engine's goal, progress and
        summary lines, which repeat them (measured: 893 input tokens with them on a TAT-QA
        question), or the system prompt, which the task's own words say (a second system turn)."""
        return [HumanMessage(task)]

    def check_decision(self, decision: FilingAnswer, view: ChainView) -> None:
        """Every citation must name a paragraph of the evidence step (retrieved and shown)."""
        allowed = [p["cite"] for p in view.data("evidence").get("paragraphs", [])]
        bad = [cite_text(c.section, c.paragraph) for c in decision.citations if cite_text(c.section, c.paragraph) not in allowed]
        if bad:
            raise ValueError(f"citations: {bad} are not among the paragraphs given; cite only {allowed}")

    def check_answer(self, step: PlanStep, answer: AgentAnswer, view: ChainView) -> SendBack | None:
        """An answer goes back once (``answer_checks``): when the question needs arithmetic and
        ``calculate`` never ran in the step (:func:`calculate_note`; the next reply must call it);
        and, with :attr:`second_look`, when the model said the paragraphs do not answer it
        (:data:`NOT_FOUND`): with what its prompt left out of the search's paragraphs
        (:func:`more_paragraphs`, ``tool_choice="none"``: no tool schemas), or, when it showed them
        all, told to search with its own keywords (the next reply must call ``search_filing``).
        Otherwise NOT FOUND is the answer (``found`` False). Why not the model's own search first:
        on TAT-QA the embedded 1.5B model searched for "table ¶5" and "table ¶3", then said NOT
        FOUND again, at 1,178 input tokens a question (``bench/filing_qa.py``)."""
        if step.id != "answer":
            return None
        if needs_calculation(view.inputs["question"]) and "calculate" not in answer.tools_run and not answer.checks:
            return SendBack(calculate_note(view.inputs["question"]), tool="calculate")
        if not self.second_look or not said_not_found(answer.text) or answer.checks or "search_filing" in answer.tools_run:
            return None
        more = more_paragraphs(view.data("search").get("hits", []))
        if more:  # what the prompt left out, shown by code: no tool schemas, no search call of the model's
            return SendBack(f"More of the filing:\n{more}\n\nAnswer from these the same way, or reply {NOT_FOUND}.",
                            tool="none")
        return SendBack("Search the filing with other keywords (a few words, e.g. a table row's label and a "
                        "year), then answer from what it finds.", tool="search_filing")

    def direct_decision(self, view: ChainView) -> FilingAnswer | None:
        """The typed answer read by code from the agent's, when that settles it (the decide node then
        checks the cites against the evidence and asks the model when one does not hold):

        * a ``calculate`` result (the step ended ``returned``): ``value`` is the result, cited by
          the evidence paragraphs that state the expression's figures (none: the model types it);
        * an answer of at most 120 characters without its cites that states exactly one number
          besides years: that number, citing the paragraphs the answer names or else the first
          evidence paragraph that states it as written (none: the model types it);
        * any other answer of at most 400 characters whose words a cited or evidence paragraph
          contains as written (case aside), a sentence quoted too: those words, citing that
          paragraph (on TAT-QA the 1.5B model quoted a 370-character sentence, and the decide
          model's cut of it took two calls and 1,319 tokens, and was no more right).

        Otherwise None: which number, or which words of a sentence the model reworded, answer is
        the model's to say.
        ``confidence`` is None (not rated)."""
        return typed_answer(view.data("answer"), view.data("evidence").get("paragraphs", []), NOT_FOUND,
                            view.data("search").get("hits", []))  # what the model read its figures from

    def fallback_decision(self, view: ChainView, errors: list[str]) -> FilingAnswer | None:
        """The agent's answer (a calculation's result; else its text, first number as the value)
        citing the best evidence paragraph, with confidence 0; None when there is no evidence to cite."""
        paras = view.data("evidence").get("paragraphs", [])
        if not paras:
            return None
        found = view.finding("answer")
        return kept_answer((found.summary if found else "") or "(no answer)",
                           view.data("answer").get("stop_reason") == "returned", paras)

    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(nodes=[])

    def render_report(self, view: ChainView) -> str:
        answer = view.decision or {}
        paras = {p["cite"]: p["text"] for p in view.data("evidence").get("paragraphs", [])}
        lines = [f"# {view.inputs['document_name']}: {view.inputs['question']}", "",
                 f"**Answer:** {answer.get('answer', '(none)')}"]
        agent = view.data("answer")
        if agent.get("stop_reason") == "returned":  # the figures are the model's reading: show which it took
            try:
                done = json.loads(str(agent.get("answer") or ""))
                computed = f"{done['expression']} = {done['result']:g}"
            except (ValueError, KeyError, TypeError):
                computed = str(agent.get("answer") or "")
            lines.append(f"**Computed:** `{computed[:300]}` (the calculator's result from the figures the model read; "
                         "check them against the citations)")
        if answer.get("value") is not None:
            lines.append(f"**Value:** {answer['value']:g} {answer.get('unit') or ''}".rstrip())
        rated = answer.get("confidence")
        lines.append((f"**Confidence:** {rated:.2f}" if rated is not None else "**Confidence:** not rated (typed by "
                      "code from the agent's answer)")
                     + (" (fallback: the agent's own answer; the model gave no valid typed answer)"
                        if view.decision_fallback else ""))
        lines += ["", "## Citations", ""]
        for c in answer.get("citations", []):
            cite = cite_text(c["section"], c["paragraph"])
            lines.append(f"- **{cite}**: {paras.get(cite, '')[:600]}")
        if not answer.get("citations"):
            shown, kept = min(len(SHOWN_CHARS), len(view.data("search").get("hits", []))), len(view.data("search").get("hits", []))
            lines.append(f"None: the model found no answer in the paragraphs it read (the search's best {shown} of the "
                         f"{kept} it kept{', and the rest on a second look' if self.second_look else ''}); the filing "
                         "may still say it elsewhere.")
        found = view.finding("answer")
        if found is not None:
            lines += ["", "## The agent's answer", "", found.summary]
        return "\n".join(lines) + "\n"
