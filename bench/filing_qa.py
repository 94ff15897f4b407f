"""Filing-QA benchmark: Chainproof's ``filing-qa`` graph against plain ReAct loops, on TAT-QA.

Three systems answer the same fixed, seeded sample of TAT-QA questions (``../shared/data/tatqa``,
test split with gold answers; CC BY 4.0, Zhu et al., ACL 2021), each with the same model and the
same two tools over the question's own document (its table, one paragraph per row with the column
headers, and its paragraphs, written as a filing-qa JSON document):

* ``chainproof``: ``chainproof run filing-qa --document F.json`` (the agent step, the evidence
  step, the typed answer with checked citations; audit, replay and all, reasoning cache off);
* ``react``: LangGraph's prebuilt ``create_react_agent`` with the same tools and the same
  iteration limit (``recursion_limit`` 2 x 6 + 1);
* ``react+retry``: the same loop, asked once more when its answer is invalid (empty, over 300
  characters, or no answer within the limit); its first attempt is the ``react`` loop's transcript
  (the model is greedy, so a second run would repeat it), so only the retry costs time.

Ablations (``--systems``, each a ``filing-qa`` graph without one part, to measure what the part
adds, or one it leaves out): ``chainproof-no-answer-checks`` (an answer is never sent back to the
calculator), ``chainproof-second-look`` (``FilingQA.second_look``: after NOT FOUND the model is shown
the rest of the search's paragraphs, or searches itself), ``chainproof-model-types`` (the typed answer is always the model's, never read from
the agent's by code), ``chainproof-free-start`` (the agent's first ``tool_choice`` is ``auto``, not
routed by the question), ``chainproof-engine-prompt`` (the engine's prompts, with the search step as
cited evidence, instead of the graph's own for the agent and decide calls),
``chainproof-template-tools`` (the graph as it is, on the embedded model set to show a forced
call's tool through the chat template's tools block, ``forced_call_prompt="template"``, rather than
one system line).

The embedded model runs with ``cache_prompt=False``: every prompt is read from scratch, so an
answer does not depend on which question ran before (with the KV prefix reused, llama.cpp's floats
depend on how the prompt was batched and a greedy reply can differ at a near-tie).

Scoring (the issue's rule): a number is right when the number given is within 1 % of the gold
answer (also when given in the scale's base unit: ``percent`` 12.5 as 0.125, ``million`` 1.5 as
1,500,000); the numbers are the ``arithmetic`` answers and the spans whose gold is one number
(``19.2``, scale ``million``: "$19.2 million" gives it). Any other ``span`` is right when the
answer equals the gold span after normalisation (case, articles, punctuation, ``$``, ``,``, ``%`` and citations such as
``[table ¶3]`` ignored). The sample is half arithmetic, half span, drawn with ``random.Random(seed)``
from the questions sorted by uid. Reported per system: accuracy, input and output tokens, model
calls and seconds per question (means), in one run, so the ratios compare like with like.

The embedded model (``--model local``, the default) needs the ``[local]`` extra; a question takes
one to a few minutes per system on 2 cores, so 16 questions take about an hour. Never run in CI.
``--model scripted`` is a smoke path of the plumbing only (a model that searches with the question
and answers with the first hit's first number; its accuracy means nothing).

``--answers FILE`` keeps each answer as one JSON line as soon as it is scored, and a later run
with the same file, seed and limit scores only the (system, question) pairs it does not hold yet:
an hour-long run stopped half-way is resumed, not restarted.

Usage: ``python bench/filing_qa.py [--limit 16] [--seed 7] [--model local|scripted] [--data DIR] [--home DIR] [--answers FILE] [--json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import StructuredTool

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/tatqa.py; never the repository root

from tatqa import NUM, document, is_correct, number_in, sample

from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ModelCallRecord
from chainproof.graphs.filing_qa import MAX_ITERATIONS, FilingQA, calculate
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from chainproof.tools.filing_search import load_source, search

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tatqa"
SYSTEMS = ("chainproof", "react", "react+retry")


class _NoAnswerChecks(FilingQA):
    """filing-qa without its answer check (an arithmetic answer is never sent back)."""

    def plan(self, inputs: dict[str, Any]) -> list[Any]:
        return [s.model_copy(update={"answer_checks": 0}) if s.kind == "agent" else s for s in super().plan(inputs)]


class _ModelTypes(FilingQA):
    """filing-qa whose typed answer is always the model's (no decision typed by code)."""

    def direct_decision(self, view: Any) -> None:
        return None


class _FreeStart(FilingQA):
    """filing-qa whose agent chooses its first tool itself (``first_tool_choice="auto"``, tools shown)."""

    def plan(self, inputs: dict[str, Any]) -> list[Any]:
        return [s.model_copy(update={"first_tool_choice": "auto"}) if s.kind == "agent" else s
                for s in super().plan(inputs)]


class _SecondLook(FilingQA):
    """filing-qa that shows the model the rest of the search's paragraphs after NOT FOUND."""

    second_look = True


class _EnginePrompt(FilingQA):
    """filing-qa whose agent and decide calls get the engine's prompts (goal, progress, summary, the
    search step as cited evidence, task) instead of the graph's own (``agent_prompt``,
    ``decision_messages``)."""

    def plan(self, inputs: dict[str, Any]) -> list[Any]:
        return [s.model_copy(update={"evidence": ["search"]}) if s.kind == "agent" else s
                for s in super().plan(inputs)]

    def agent_prompt(self, step: Any, view: Any, task: str) -> None:
        return None

    def decision_messages(self, view: Any, task: str) -> None:
        return None


#: each chainproof system: the graph it runs (ablations leave out one part, to measure what it adds)
GRAPHS: dict[str, tuple[str, type[FilingQA]]] = {
    "chainproof": ("filing-qa", FilingQA), "chainproof-no-answer-checks": ("bench-fq-no-checks", _NoAnswerChecks),
    "chainproof-model-types": ("bench-fq-model-types", _ModelTypes), "chainproof-free-start": ("bench-fq-free", _FreeStart),
    "chainproof-engine-prompt": ("bench-fq-engine-prompt", _EnginePrompt),
    "chainproof-second-look": ("bench-fq-second-look", _SecondLook),
    "chainproof-template-tools": ("filing-qa", FilingQA)}
#: systems that run the graph on the embedded model set otherwise (``LocalModelSettings``)
LOCAL_OPTIONS: dict[str, dict[str, Any]] = {"chainproof-template-tools": {"forced_call_prompt": "template"}}
PLAIN_PROMPT = (FilingQA.system_prompt + " Call search_filing to find facts and calculate for any arithmetic. When you "
                "know the answer, reply with only the answer: a number or a short span copied from the document.")


@dataclass
class Answer:
    """One scored answer of one system, as ``--answers`` keeps it (tokens, calls, seconds per question)."""

    system: str
    uid: str
    correct: bool
    given: str
    input_tokens: int
    output_tokens: int
    model_calls: int
    seconds: float


def plain_tools(doc_path: str) -> list[StructuredTool]:
    """The same two tools for the plain loops: the search bound to the question's document."""
    source = load_source(doc_path)

    def search_filing(query: str, section: str | None = None) -> dict:
        return search(source, query, section=section).model_dump(mode="json")

    found = StructuredTool.from_function(search_filing, name="search_filing",
                                         description=FilingQA().tools()[0].description)
    # the plain loop reads the calculator's result itself (filing-qa's returns it directly)
    return [found, calculate.model_copy(update={"return_direct": False})]


def _usage(messages: list[BaseMessage]) -> tuple[int, int, int]:
    ais = [m for m in messages if isinstance(m, AIMessage)]
    return (sum((m.usage_metadata or {}).get("input_tokens", 0) for m in ais),
            sum((m.usage_metadata or {}).get("output_tokens", 0) for m in ais), len(ais))


def _loop(agent: Any, messages: list[BaseMessage]) -> tuple[list[BaseMessage], str | None]:
    """Run the ReAct loop; the messages at its end and why its answer is invalid (None: valid)."""
    from langgraph.errors import GraphRecursionError

    state: dict[str, Any] = {"messages": messages}
    try:
        for values in agent.stream({"messages": messages}, {"recursion_limit": 2 * MAX_ITERATIONS + 1},
                                   stream_mode="values"):
            state = values  # the last state reached, kept when the limit stops the loop
    except GraphRecursionError:
        return state["messages"], f"no answer within {MAX_ITERATIONS} iterations"
    last = state["messages"][-1]
    text = str(last.content).strip() if isinstance(last, AIMessage) else ""
    if not text:
        return state["messages"], "the answer was empty"
    if len(text) > 300:
        return state["messages"], "the answer was longer than 300 characters"
    return state["messages"], None


def run_plain(model: Any, context_q: tuple[dict, dict], doc_path: str) -> tuple[Answer, Answer]:
    """``react`` and ``react+retry`` on one question. The retrying loop's first attempt *is* the
    plain loop: the embedded model is greedy (temperature 0), so running it again would give the
    same transcript; it is reused, and ``react+retry`` adds only the retry (its tokens, calls and
    seconds count the first attempt too)."""
    from langgraph.prebuilt import create_react_agent

    _, q = context_q
    started = time.perf_counter()
    with warnings.catch_warnings():  # "moved to langchain.agents": that package is not a dependency here
        warnings.simplefilter("ignore")
        agent = create_react_agent(model, plain_tools(doc_path), prompt=PLAIN_PROMPT)
    first: list[BaseMessage] = []
    try:
        first, invalid = _loop(agent, [HumanMessage(q["question"])])
    except Exception as exc:  # e.g. the history outgrew the context window: a wrong answer (its tokens lost)
        invalid = f"error: {type(exc).__name__}: {exc}"
    plain = _scored("react", q, first, invalid, time.perf_counter() - started)
    retried, again = first, invalid
    if invalid and first:
        try:
            retried, again = _loop(agent, [*first, HumanMessage(
                f"Your answer was not valid: {invalid}. Reply with only the answer: a number or a short span "
                "copied from the document.")])
        except Exception as exc:
            retried, again = [], f"error: {type(exc).__name__}: {exc}"
    return plain, _scored("react+retry", q, retried, again, time.perf_counter() - started)


def _scored(system: str, q: dict[str, Any], messages: list[BaseMessage], invalid: str | None, seconds: float) -> Answer:
    """Scored on the loop's last answer whatever its length (validity only decides the retry)."""
    last = messages[-1] if messages else None
    text = str(last.content).strip() if isinstance(last, AIMessage) else ""
    tokens_in, tokens_out, calls = _usage(messages)
    return Answer(system, q["uid"], bool(text) and is_correct(q, text, None), (text or invalid or "")[:200],
                  tokens_in, tokens_out, calls, round(seconds, 1))


def run_chainproof(app: Chainproof, context_q: tuple[dict, dict], doc_path: str, system: str = "chainproof") -> Answer:
    _, q = context_q
    started = time.perf_counter()
    try:
        run = app.start(GRAPHS[system][0], {"company": "TATQA", "question": q["question"], "document": doc_path}, cache=False)
        run_id, decision = run.run_id, run.state.get("decision") or {}
        text = str(decision.get("answer") or "")
    except Exception as exc:  # a failed run (e.g. a prompt over the context window) is a wrong answer
        run_id, decision, text = app.audit.list_runs(1)[0][0].run_id, {}, f"error: {type(exc).__name__}: {exc}"
    calls = app.audit.records_of(run_id, ModelCallRecord)
    return Answer(system, q["uid"], is_correct(q, text, decision.get("value")), text[:200],
                  sum(c.input_tokens for c in calls), sum(c.output_tokens for c in calls), len(calls),
                  round(time.perf_counter() - started, 1))


def scripted_model() -> ScriptedChatModel:
    """The smoke path's model: the plain loop searches with the question and answers with the
    first hit's first number; filing-qa's agent answers with the first number of the paragraphs
    it is shown, or calculates the difference of their first two when told to call calculate."""
    def reply(messages: list[BaseMessage]) -> Any:
        last = messages[-1]
        content = str(last.content)
        if "Give the final answer as JSON" in content:
            cite = re.search(r"\[(\w+) ¶(\d+)\]", content)
            answer = re.search(r"The agent's answer: (.*)", content)
            text = answer.group(1) if answer else "unknown"
            return json.dumps({"answer": text[:300] or "unknown", "value": number_in(text), "unit": None, "confidence": 0.5,
                               "citations": [{"section": cite.group(1), "paragraph": int(cite.group(2))}] if cite else []})
        if isinstance(last, ToolMessage):
            return str(number_in(content) or "unknown")
        if content.startswith("Paragraphs of the filing:"):  # filing-qa's answer step
            numbers = [m.group().replace(",", "") for m in NUM.finditer(content.split("Question:")[0])
                       if not m.group().startswith("(")][:2]
            if "Call calculate" in content and len(numbers) == 2:
                return ScriptedChatModel.tool_calls_reply(("calculate", {"expression": f"{numbers[0]} - {numbers[1]}"}))
            cite = re.search(r"\[(\w+ ¶\d+)\]", content)
            return f"{numbers[0] if numbers else 'NOT FOUND'} [{cite.group(1) if cite else ''}]"
        return ScriptedChatModel.tool_calls_reply(("search_filing", {"query": content[:200]}))
    return ScriptedChatModel(replies=[reply], repeat_last=True)


_TYPES: dict[Any, Any] = {"str": str, "bool": bool, "int": int, "float": (int, float), str: str, bool: bool, int: int,
                          float: (int, float)}


def kept_answers(path: Path | None, model: str, uids: set[str]) -> list[Answer]:
    """The answers ``path`` (JSON lines) already holds for this model and these questions. Raises
    ``ValueError`` naming the file and line for a folder or a line that is not a kept answer."""
    if path is None:
        return []
    if not path.parent.is_dir():
        raise ValueError(f"--answers: the folder {path.parent} does not exist")
    if not path.exists():
        return []
    if not path.is_file():
        raise ValueError(f"--answers: expected a JSON-lines file, got the folder {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"--answers: {path} is not UTF-8 text ({exc.reason})") from None
    kept = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise TypeError(f"expected a JSON object, got {type(row).__name__}")
            answer = Answer(**{k: v for k, v in row.items() if k != "model"})
            wrong = [f.name for f in fields(Answer) if not isinstance(getattr(answer, f.name), _TYPES[f.type])]
            if wrong:
                raise TypeError(f"{', '.join(wrong)}: not of the kept types")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"--answers: {path} line {no} is not a kept answer ({exc}); move the file away or "
                             f"give another") from None
        if row.get("model") == model and answer.uid in uids:
            kept.append(answer)
    return kept


def _app(home: Path, model: str, local: dict[str, Any]) -> Chainproof:
    """The Chainproof app a system runs on: the scripted smoke model, or the embedded model from
    the default cache's model file (not a copy per run) with ``local`` options, its KV-prefix reuse
    off (``cache_prompt=False``) so a question's answer does not depend on the question before it
    (llama.cpp's floats depend on how a prompt was batched; greedy replies then differ at near-ties)."""
    if model == "scripted":
        from chainproof.agents.models import StaticModels

        return Chainproof(Settings(home=home), models=StaticModels(scripted_model()))
    from chainproof.agents.config import LocalModelSettings
    from chainproof.agents.local_weights import local_model_path

    return Chainproof(Settings(home=home, local=LocalModelSettings(gguf_path=local_model_path(), cache_prompt=False,
                                                                   **local)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=16, help="questions (half arithmetic, half span; default 16)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", choices=("local", "scripted"), default="local")
    parser.add_argument("--data", type=Path, default=DATA, help="the TAT-QA folder (default ../shared/data/tatqa)")
    parser.add_argument("--home", type=Path, help="keep chainproof's runs in this store (CHAINPROOF_HOME) to "
                                                   "inspect them with chainproof show; default: a temporary one")
    parser.add_argument("--answers", type=Path, help="a JSON-lines file that keeps each answer; resumes from it")
    parser.add_argument("--systems", default=",".join(SYSTEMS),
                        help=f"comma-separated systems (default {','.join(SYSTEMS)}; ablations: "
                             f"{', '.join(g for g in GRAPHS if g != 'chainproof')})")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    systems = tuple(n.strip() for n in args.systems.split(",") if n.strip())
    unknown = [n for n in systems if n not in (*SYSTEMS, *GRAPHS)]
    if unknown or not systems:
        print(f"--systems: unknown {unknown}; expected some of {[*SYSTEMS, *list(GRAPHS)[1:]]}", file=sys.stderr)
        return 2
    args.systems = systems
    if not (args.data / "tatqa_dataset_test_gold.json").is_file():
        print(f"TAT-QA not found: {args.data}/tatqa_dataset_test_gold.json (give --data)", file=sys.stderr)
        return 2
    if args.limit < 1:
        print("--limit: expected at least 1", file=sys.stderr)
        return 2
    pairs = sample(args.data, args.limit, args.seed)
    try:
        answers = kept_answers(args.answers, args.model, {q["uid"] for _, q in pairs})
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    done = {(a.system, a.uid) for a in answers}
    with tempfile.TemporaryDirectory() as tmp:
        home = args.home.expanduser().resolve() if args.home else Path(tmp) / "home"
        for name, graph in GRAPHS.values():
            if name != "filing-qa":
                register(name, type(graph.__name__, (graph,), {"name": name}))
        apps = {s: _app(home / s if s in LOCAL_OPTIONS else home, args.model, LOCAL_OPTIONS.get(s, {}))
                for s in ("chainproof", *[s for s in args.systems if s in LOCAL_OPTIONS])}
        app = apps["chainproof"]
        with contextlib.ExitStack() as stack:
            for each in apps.values():
                stack.enter_context(each)
            for k, pair in enumerate(pairs, 1):
                doc_path = Path(tmp) / f"q{k}.json"
                doc_path.write_text(json.dumps(document(pair[0])))
                plain_model = scripted_model() if args.model == "scripted" else app.models.chat("medium")
                plain: dict[str, Answer] = {}
                for system in args.systems:
                    if (system, pair[1]["uid"]) in done:
                        continue
                    if system in GRAPHS:
                        answer = run_chainproof(apps.get(system, app), pair, str(doc_path), system)
                    else:
                        plain = plain or dict(zip(("react", "react+retry"), run_plain(plain_model, pair, str(doc_path))))
                        answer = plain[system]
                    answers.append(answer)
                    if args.answers is not None:
                        with args.answers.open("a") as kept:
                            kept.write(json.dumps({"model": args.model, **asdict(answer)}) + "\n")
                    if not args.json:
                        print(f"[{k}/{len(pairs)}] {system:<12} {'right' if answer.correct else 'wrong'} "
                              f"({answer.seconds}s) gold {pair[1]['answer']!r} given {answer.given[:80]!r}",
                              file=sys.stderr, flush=True)
    results = summarise(answers, pairs, args)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"\nTAT-QA test, {len(pairs)} questions (seed {args.seed}; {results['arithmetic']} arithmetic, "
          f"{results['span']} span), model {args.model}\n")
    print("| system | accuracy | right | input tokens / q | output tokens / q | model calls / q | s / q |")
    print("|---|---|---|---|---|---|---|")
    for name in args.systems:
        s = results["systems"][name]
        print(f"| {name} | {s['accuracy']:.2f} | {s['right']}/{len(pairs)} | {s['input_tokens']:,.0f} | "
              f"{s['output_tokens']:,.0f} | {s['model_calls']:.1f} | {s['seconds']:.1f} |")
    print("\nBy question type (right): " + "; ".join(
        f"{name}: arithmetic {results['systems'][name]['right_arithmetic']}, span {results['systems'][name]['right_span']}"
        for name in args.systems))
    return 0


def summarise(answers: list[Answer], pairs: list[tuple[dict, dict]], args: argparse.Namespace) -> dict[str, Any]:
    kinds = {q["uid"]: q["answer_type"] for _, q in pairs}
    out: dict[str, Any] = {"questions": len(pairs), "seed": args.seed, "model": args.model,
                           "arithmetic": sum(k == "arithmetic" for k in kinds.values()),
                           "span": sum(k == "span" for k in kinds.values()), "systems": {},
                           "answers": [asdict(a) for a in answers]}
    for name in args.systems:
        mine = [a for a in answers if a.system == name]
        n = max(1, len(mine))
        out["systems"][name] = {
            "accuracy": round(sum(a.correct for a in mine) / n, 3), "right": sum(a.correct for a in mine),
            "right_arithmetic": sum(a.correct for a in mine if kinds[a.uid] == "arithmetic"),
            "right_span": sum(a.correct for a in mine if kinds[a.uid] == "span"),
            "input_tokens": sum(a.input_tokens for a in mine) / n, "output_tokens": sum(a.output_tokens for a in mine) / n,
            "model_calls": sum(a.model_calls for a in mine) / n, "seconds": sum(a.seconds for a in mine) / n}
    return out


if __name__ == "__main__":
    sys.exit(main())
