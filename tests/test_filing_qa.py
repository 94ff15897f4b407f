"""The filing-qa graph on the bundled 3M dossier with scripted models: an agent searches the
filing and calculates, the typed answer cites checked paragraphs, replay needs no model, bad
input is refused naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import Step, ToolCallRecord
from chainproof.cli import app as cli_app
from chainproof.graphs.filing_qa import FilingAnswer, FilingQA, calculate, search_filing
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from chainproof.tools.calculator import CalculatorError, evaluate
from testkit.environ import without_settings
from testkit.fake_openai import FakeOpenAI
from testkit.toy_models import ModelMustNotBeCalled

REPO = Path(__file__).resolve().parents[1]
QUESTION = "By how much did 3M's accrual for respirator mask and asbestos claims change in 2017, in USD millions?"
INPUTS = {"company": "MMM", "question": QUESTION}
SPAN = {"company": "MMM", "question": "What was 3M's respirator mask and asbestos accrual at the end of 2017?"}
call = ScriptedChatModel.tool_calls_reply
SEARCH = ("search_filing", {"query": "respirator mask asbestos accrual"})
CALC = ("calculate", {"expression": "608 - 595"})
ANSWER_TEXT = "It rose by 13 (USD millions), from $595 million to $608 million [legal_note ¶4]."


def _answer(**over) -> str:
    answer = {"answer": "13 USD millions", "value": 13, "unit": "USD millions",
              "citations": [{"section": "legal_note", "paragraph": 4}], "confidence": 0.8}
    return json.dumps({**answer, **over})


class SecondLook(FilingQA):
    """filing-qa with its second look after NOT FOUND (off by default, measured)."""

    name = "filing-qa-second-look"
    second_look = True


register(SecondLook.name, SecondLook)


def _run(settings, replies, inputs=INPUTS, graph="filing-qa"):
    model = ScriptedChatModel(replies=replies)
    app = Chainproof(settings, models=StaticModels(model))
    return app, app.start(graph, inputs), model


def _replayed_identically(app, run_id):
    app.models = StaticModels(ModelMustNotBeCalled())
    replay = app.replay(run_id)
    assert replay.outcome == "identical", [(s.step_no, s.differences) for s in replay.steps if s.differences]
    return replay


def test_code_searches_the_model_calculates_and_the_result_is_the_answer_with_a_checked_citation(settings):
    """A computed figure: the search runs by code with the question, the model's one call must be
    ``calculate`` (shown the paragraphs found), its result is the answer (``return_direct``), and
    the typed answer is read by code citing the paragraph that states the figures: one model call."""
    app, run, model = _run(settings, [call(CALC)])
    with app:
        assert run.status == "completed"
        search, calc, evidence = app.audit.records_of(run.run_id, ToolCallRecord)
        # the document searched is the bundled dossier, fixed by the plan; the query is the question
        assert search.tool == "search_filing" and search.args == {
            "source": search.args["source"], "query": QUESTION, "limit": 6} and search.args["source"].endswith("dossiers/MMM")
        assert search.result["hits"][0]["cite"] == "legal_note ¶4"
        assert (calc.tool, calc.result) == ("calculate", {"expression": "608 - 595", "result": 13.0})
        assert evidence.tool == "filing_evidence" and evidence.result["paragraphs"][0]["cite"] == "legal_note ¶4"
        # one model call: the graph's own prompt (paragraphs, question, task), calculate forced
        assert len(model.calls) == 1 and [type(m).__name__ for m in model.calls[0]] == ["SystemMessage", "HumanMessage"]
        prompt = model.calls[0][1].content
        assert prompt.startswith("Paragraphs of the filing:\n[legal_note ¶4] In 2017 3M raised its accrual")
        assert f"Question: {QUESTION}\nCall calculate with the figures from the paragraphs (new - old)." in prompt
        assert model.bound[0]["tool_choice"] == "calculate"
        bound = {t["function"]["name"]: t["function"]["parameters"] for t in model.bound[0]["tools"]}
        assert sorted(bound) == ["calculate", "search_filing"] and "source" not in bound["search_filing"]["properties"]
        assert run.state["findings"]["answer"]["data"]["stop_reason"] == "returned"
        decide = next(s for s in app.audit.records_of(run.run_id, Step) if s.node == "decide")
        assert decide.output["by"] == "code" and decide.title == "Decide"  # the graph asks no approval
        answer = FilingAnswer.model_validate({k: v for k, v in run.state["decision"].items() if not k.startswith("_")})
        # the unit the paragraph states both figures in ("$608 million", "$595 million")
        assert (answer.answer, answer.value, answer.unit, answer.confidence) == ("13 USD millions", 13.0, "USD millions",
                                                                                 None)
        assert [(c.section, c.paragraph) for c in answer.citations] == [("legal_note", 4)]
        report = Path(run.report_path).read_text()
        assert "**Answer:** 13 USD millions" in report and "**legal_note ¶4**: In 2017 3M raised its accrual" in report
        replay = _replayed_identically(app, run.run_id)
        assert replay.model_calls_served == 1 and replay.tool_calls_served == 3


def test_a_second_look_after_not_found_shows_the_rest_of_the_paragraphs_by_code_without_tools(settings):
    """With ``second_look``, cheapest first: the model says NOT FOUND, and its next reply is shown
    what the first prompt left out (the fourth paragraph, the rest of the others, word-whole) with
    ``tool_choice="none"``: no search call of the model's, no tool schemas; its answer from them is
    typed by code."""
    app, run, model = _run(settings, ["NOT FOUND", "$608 million [legal_note ¶4]"], SPAN, SecondLook.name)
    with app:
        assert run.status == "completed" and len(model.calls) == 2
        assert model.bound[0]["tool_choice"] == "none" and model.bound[1]["tool_choice"] == "none"
        first, more = model.calls[0][1].content, model.calls[1][-1].content
        assert "[legal_note ¶10]" not in first  # the search's fourth paragraph was not shown first
        assert more.startswith("More of the filing:\n[legal_note ¶3] ... ")
        assert "[legal_note ¶10] 3M made aqueous film forming foam" in more and "reply NOT FOUND" in more
        # the rest of a paragraph starts at the word the first prompt cut, never half a word or figure
        cut = first.split("[legal_note ¶3] ", 1)[1].split(" ...", 1)[0]
        assert more.split("[legal_note ¶3] ... ", 1)[1].split()[0] == \
            run.state["findings"]["search"]["data"]["hits"][1]["text"][len(cut):].split()[0]
        assert [t.tool for t in app.audit.records_of(run.run_id, ToolCallRecord)] == ["search_filing", "filing_evidence"]
        assert run.state["decision"]["value"] == 608.0
        _replayed_identically(app, run.run_id)


def test_a_second_look_when_every_paragraph_was_shown_is_the_models_search_and_it_cannot_point_it_elsewhere(
        settings, tmp_path):
    """With ``second_look``, a document whose matches the first prompt showed whole: NOT FOUND sends the model to search
    with its own keywords (the next reply must call ``search_filing``); the document searched
    stays the plan's, whatever ``source`` the model writes."""
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"name": "ACME 10-K", "sections": {
        "legal": ["Respirator claims are pending.", "The accrual for respirator mask claims was $608 million."]}}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"name": "x", "sections": {"s": ["respirator mask asbestos accrual 999"]}}))
    query = {"query": "accrual respirator", "source": str(other)}
    question = {"company": "ACME", "question": "What is the asbestos reserve?", "document": str(doc)}
    app, run, model = _run(settings, ["NOT FOUND", call(("search_filing", query)), "$608 million [legal ¶2]"],
                           question, SecondLook.name)
    with app:
        assert run.status == "completed"
        assert [b["tool_choice"] for b in model.bound[:2]] == ["none", "search_filing"]
        assert "Search the filing with other keywords" in model.calls[1][-1].content
        searches = [t for t in app.audit.records_of(run.run_id, ToolCallRecord) if t.tool == "search_filing"]
        assert len(searches) == 2 and searches[1].args["source"] == str(doc.resolve())
        assert "999" not in json.dumps(searches[1].result)
        # the window shows the model its own call, without the plan's argument
        assert model.calls[2][-2].tool_calls[0]["args"] == {"query": "accrual respirator"}
        assert run.state["decision"]["value"] == 608.0 and len(model.calls) == 3
        _replayed_identically(app, run.run_id)


def test_an_invalid_tool_call_is_shown_back_and_repaired(settings):
    replies = [call(("calculate", {"expr": "608 - 595"})), call(("calculate", {"expression": "__import__('os')"})),
               call(("calculate", {"expression": "608 - 595"}))]
    app, run, model = _run(settings, replies)
    with app:
        assert run.status == "completed"
        tools = app.audit.records_of(run.run_id, ToolCallRecord)[1:]
        assert tools[0].error.startswith("InvalidToolCall: arguments of tool 'calculate':")
        assert "expr: not an argument of the tool" in tools[0].error
        assert "not a number or arithmetic" in tools[1].error  # the safe calculator refused it
        assert tools[2].result == {"expression": "608 - 595", "result": 13.0}
        assert "expression: Field required" in model.calls[1][-1].content  # the model saw why
        assert run.state["findings"]["answer"]["data"]["invalid_calls"] == 1
        assert run.state["decision"]["value"] == 13.0
        _replayed_identically(app, run.run_id)


def test_a_citation_outside_the_evidence_is_refused_then_fixed(settings):
    bad = _answer(citations=[{"section": "legal_note", "paragraph": 9}])
    app, run, model = _run(settings, [ANSWER_TEXT, bad, _answer()], SPAN)  # a sentence: the model types it
    with app:
        assert run.status == "completed"
        decide = next(s for s in app.audit.records_of(run.run_id, Step) if s.node == "decide")
        assert "citations: ['legal_note ¶9'] are not among the paragraphs given" in decide.output["errors"][0]
        assert "legal_note ¶9" in model.calls[-1][-1].content
        assert run.state["decision"]["citations"] == [{"section": "legal_note", "paragraph": 4}]
        # the graph's own decide prompt (decision_messages): the schema, then the question, the agent's
        # answer and the paragraphs; not the engine's goal and progress lines, nor a second system turn
        schema, task = model.calls[1]
        assert task.content.startswith(f"Question: {SPAN['question']}\nThe agent's answer: ") and "Goal:" not in task.content
        # the schema the model is shown: no developer docstring, citations required (a grammar asks for them)
        shown = json.loads(schema.content.split("\n", 1)[1])
        assert "description" not in shown and shown["required"] == ["answer", "confidence", "citations"]


def test_without_a_valid_typed_answer_the_agents_answer_is_kept_with_confidence_zero(settings):
    """After ``decide_attempts`` (2: the first and one retry with its error shown) the agent's own
    answer is kept; no third decide call."""
    app, run, model = _run(settings, [ANSWER_TEXT, "not json", "still not", "never asked"], SPAN)
    with app:
        assert len(model.calls) == 3 and "not valid" in model.calls[-1][-1].content
        decision = run.state["decision"]
        assert decision["_fallback"] and decision["confidence"] == 0.0 and decision["value"] == 13.0
        assert decision["citations"] == [{"section": "legal_note", "paragraph": 4}]
        assert "fallback: the agent's own answer" in Path(run.report_path).read_text()


def test_an_arithmetic_answer_without_the_calculator_is_sent_back_once_then_stands(settings, tmp_path):
    """A model that answers without calculating (the 1.5B model subtracted in its head, when the
    first call was not forced): the answer goes back with the note, the model calculates; a model
    that answers again without calculating has its answer kept."""
    app, run, model = _run(settings, ["4 USD millions [legal_note ¶4]", call(CALC)])
    with app:
        assert run.status == "completed"
        agent_rows = [s for s in app.audit.records_of(run.run_id, Step) if s.node == "agent"]
        checked = [s for s in agent_rows if s.output.get("answer_check")]
        assert len(checked) == 1 and "Call calculate" in checked[0].output["answer_check"]
        assert "Call calculate" in model.calls[1][-1].content and model.calls[1][-2].content.startswith("4 USD")
        assert model.bound[1]["tool_choice"] == "calculate"
        decision = run.state["decision"]  # typed by code from the calculator's result
        assert (decision["answer"], decision["value"], decision["confidence"]) == ("13 USD millions", 13.0, None)
        assert len(model.calls) == 2  # no decide call
        assert "not rated (typed by code" in Path(run.report_path).read_text()
        _replayed_identically(app, run.run_id)
    stubborn = ["4 USD millions [legal_note ¶4]", "It is 4 USD millions [legal_note ¶4]"]
    app, run, model = _run(Settings(home=tmp_path / "other"), stubborn)  # another store: no cached replies
    with app:
        assert run.state["findings"]["answer"]["data"]["stop_reason"] == "answered"
        assert run.state["decision"]["value"] == 4.0 and len(model.calls) == 2


@pytest.mark.parametrize(("question", "form", "computed"), [
    ("What is the average cents per share for 2018 and 2019?", "avg(a, b)", True),
    ("What is the percentage change in revenue between 2018 and 2019?", "(new - old) / old * 100", True),
    ("What is the change in deferred revenue from 2018 to 2019?", "new - old", True),
    ("What is the total cost of revenue in both 2019 and 2018?", "a + b", True),
    ("Why did the valuation allowance increase in fiscal 2019?", None, False),
    ("What was the revenue in 2019?", None, False),
])
def test_a_computed_figure_is_recognised_and_the_note_names_its_operation(question, form, computed):
    from chainproof.graphs.filing_qa import calculate_note, needs_calculation

    assert needs_calculation(question) is computed
    if form:
        assert f"({form})" in calculate_note(question)


def test_the_calculator_schema_bounds_the_expression_so_a_grammar_closes_it():
    from langchain_core.utils.function_calling import convert_to_openai_tool

    assert convert_to_openai_tool(calculate)["function"]["parameters"]["properties"]["expression"]["maxLength"] == 160


def test_a_stated_figure_or_copied_words_are_typed_by_code_and_a_bad_cite_or_a_sentence_goes_to_the_model(
        settings, tmp_path):
    inputs = SPAN
    app, run, model = _run(settings, ["$608 million, with a cite of legal_note ¶4."], inputs)
    with app:
        decide = next(s for s in app.audit.records_of(run.run_id, Step) if s.node == "decide")
        assert decide.inputs == {"by": "code"} and decide.output["by"] == "code" and decide.effort is None
        decision = run.state["decision"]
        assert (decision["answer"], decision["value"], decision["citations"]) == (
            "$608 million", 608.0, [{"section": "legal_note", "paragraph": 4}])
        assert len(model.calls) == 1
        _replayed_identically(app, run.run_id)
    app, run, model = _run(Settings(home=tmp_path / "uncited"), ["$608 million at the end of 2017"], inputs)
    with app:  # no cite given: the evidence paragraph that states 608 is cited
        assert run.state["decision"]["citations"] == [{"section": "legal_note", "paragraph": 4}]
        assert len(model.calls) == 1
    words = "covers claims expected through about 2050"  # words of the paragraph, as written
    app, run, model = _run(Settings(home=tmp_path / "words"), [f"{words.capitalize()} [legal_note ¶4]"], inputs)
    with app:
        decision = run.state["decision"]
        assert (decision["answer"], decision["value"]) == (words.capitalize(), None) and len(model.calls) == 1
        assert decision["citations"] == [{"section": "legal_note", "paragraph": 4}]
    fixed = _answer(answer="$608 million", value=608, unit="USD millions")
    for k, (said, calls) in enumerate([("$608 million [legal_note ¶99]", 2), ("an accrual for probable liabilities "
                                        "[legal_note ¶4]", 2), ("$6,081 million", 2)]):
        # a cite that does not state the figure (the figure may be misread), words no paragraph holds, or
        # a figure no evidence states: the model types the answer, and its cites are checked
        app, run, model = _run(Settings(home=tmp_path / f"h{k}"), [said, fixed], inputs)
        with app:
            assert run.state["decision"]["citations"] == [{"section": "legal_note", "paragraph": 4}]
            assert len(model.calls) == calls


@pytest.mark.parametrize(("inputs", "message"), [
    ({"company": "MMM", "question": "   "}, "question: expected a question about the filing"),
    ({"company": "MMM"}, "question: expected a question about the filing"),
    ({"company": "ZZZZ", "question": "What?"}, "ZZZZ"),
    ({"company": "MMM", "question": "What?", "document": "notes.txt"}, "document: expected a .json file"),
])
def test_bad_input_is_refused_naming_the_field_before_anything_runs(settings, inputs, message):
    with Chainproof(settings, models=StaticModels(ModelMustNotBeCalled())) as app:
        with pytest.raises(ValueError, match=message):
            app.start("filing-qa", inputs)
        assert app.audit.list_runs() == []


def test_empty_question_on_the_command_line_exits_2_naming_the_field(home):
    result = CliRunner().invoke(cli_app, ["run", "filing-qa", "--company", "MMM", "--question", ""])
    assert result.exit_code == 2, result.output
    assert "question: expected a question about the filing" in result.output and "Traceback" not in result.output


def test_a_json_document_source_is_searched_and_a_malformed_one_refused(settings, tmp_path):
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"name": "Acme report", "sections": {
        "table": ["Revenue: 2019 1,200; 2018 1,000.", "Net income: 2019 90; 2018 80."],
        "text": ["Revenue grew on higher volumes in Europe."]}}))
    assert search_filing.invoke({"query": "net income 2019", "source": str(doc)})["hits"][0]["cite"] == "table ¶2"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "sections": {"table": "not a list"}}))
    with Chainproof(settings, models=StaticModels(ModelMustNotBeCalled())) as app:
        with pytest.raises(ValueError, match=r"bad.json: expected .*sections.table: Input should be a valid list"):
            app.start("filing-qa", {"company": "ACME", "question": "Revenue?", "document": str(bad)})
        # fresh-user QA: nested past the decoder, no text, a misspelt key, and a dossier beside a document
        for content, why in [("[" * 100000 + "]" * 100000, "nested too deeply"),
                             (json.dumps({"name": "x", "sections": {"text": ["", "  "]}}), "hold no text to search"),
                             (json.dumps({"name": "x", "sections": {"t": ["a"]}, "sectoins": {}}), "sectoins: Extra inputs")]:
            bad.write_text(content)
            with pytest.raises(ValueError, match=why):
                app.start("filing-qa", {"company": "ACME", "question": "Revenue?", "document": str(bad)})
        bad.write_text(json.dumps({"name": "x", "sections": {"t": ["Revenue was 5."]}}))
        with pytest.raises(ValueError, match="dossier: give either a dossier or a document"):
            app.start("filing-qa", {"company": "ACME", "question": "Revenue?", "document": str(bad),
                                    "dossier": str(tmp_path)})


def test_the_calculator_computes_and_refuses_what_is_not_arithmetic():
    assert evaluate("(1,568.6 - 1,571.7) / 1,571.7 * 100") == pytest.approx(-0.1972387865)
    assert evaluate("round(2 / 3, 2)") == 0.67 and evaluate("max(1, 7, 3) - min(4, 2)") == 5.0
    assert evaluate("avg(2, 4, 9)") == 5.0 and evaluate("$1,200 / 2") == 600.0 and evaluate("0.1 + 0.2") == 0.3
    for bad, why in [("__import__('os').system('true')", "not a number or arithmetic"), ("9 ** 9 ** 9", "exponent"),
                     ("1 / 0", "division by zero"), ("12.5% * 4", "'%' is allowed only when every number is a percentage"), ("21% - 3", "every number"), ("x + 1", "'x'"),
                     ("(-8) ** 0.5", "not a real number"), ("abs(1, 2)", "does not take 2 numbers"), ("", "got nothing"), ("1" * 501, "at most 500")]:
        with pytest.raises(CalculatorError, match=why):
            evaluate(bad)
    assert calculate.invoke({"expression": "2 * 3"}) == {"expression": "2 * 3", "result": 6.0}
    # a "$" only leads a number ("1$2" is not 12); numbers in decimal digits, not Python's other literals
    assert evaluate("-$5 + $1.5e1") == 10.0
    for bad, why in [("1$2", "not arithmetic"), ("0x10 + 1", "'0x10': write numbers in decimal digits"),
                     ("1_000 * 2", "'1_000'"), ("2j + 1", "'2j'"), ("0b11", "'0b11'")]:
        with pytest.raises(CalculatorError, match=why):
            evaluate(bad)
    # percentages only, nothing multiplied: percentage points (the 1.5B model wrote "21% - 20.98%")
    assert evaluate("21% - 20.98%") == 0.02 and evaluate("avg(12.5%, 13.1%)") == 12.8
    # the embedded model writes its own result (and cites) after "=": the left side is computed, not trusted
    assert calculate.invoke({"expression": "(45 + 43) / 2 = 45.50 cents, see table ¶3"}) == {
        "expression": "(45 + 43) / 2", "result": 44.0}
    with pytest.raises(CalculatorError, match="got nothing"):
        calculate.invoke({"expression": "= 12"})


def test_a_comma_that_may_separate_thousands_or_arguments_is_refused_not_guessed():
    """``avg(45,430)`` read as 45,430 was 190 times the mean of 45 and 430 (fresh-user QA): a call
    whose commas could be either is refused naming both spellings; ``", "`` between arguments
    makes a comma between digits a thousands separator."""
    for ambiguous in ("avg(45,430)", "sum(1,234,5)", "avg(1,568.6,1,571.7)", "round(avg(45,430), 1)"):
        with pytest.raises(CalculatorError, match=r"separate arguments or thousands.*avg\(45, 430\).*45430"):
            evaluate(ambiguous)
    assert evaluate("avg(45, 430)") == 237.5 and evaluate("avg(1,568.6, 1,571.7)") == 1570.15
    assert evaluate("max(1,2)") == 2.0 and evaluate("1,568.6 - 1,571.7") == pytest.approx(-3.1)
    # commas that separate neither thousands nor arguments (fresh-user QA: read as 2.0 and 1.234567)
    for misread in ("max(1,0000, 2)", "1.234,567", "1.5,000"):
        with pytest.raises(CalculatorError, match="separate neither thousands .* nor arguments"):
            evaluate(misread)
    assert evaluate("max(1.5,2.5)") == 2.5 and evaluate("1,234,567.5 + 1") == 1234568.5
    with pytest.raises(CalculatorError, match="division by zero"):
        evaluate("0 ** -1")


def _responder(body: dict) -> object:
    """The filing-qa conversation as an OpenAI-compatible model would hold it: the forced call."""
    assert body["tool_choice"] == {"type": "function", "function": {"name": "calculate"}}, body.get("tool_choice")
    return {"tool_calls": [{"name": "calculate", "arguments": {"expression": "608 - 595"}}]}


def test_chainproof_run_filing_qa_answers_on_the_bundled_company(home):
    env = without_settings()
    with FakeOpenAI(_responder) as server:
        env.update(CHAINPROOF_HOME=str(home), CHAINPROOF_MODEL__PROVIDER="openai", CHAINPROOF_MODEL__MODEL="fake-model",
                   CHAINPROOF_MODEL__BASE_URL=server.base_url, CHAINPROOF_MODEL__API_KEY="sk-test", COLUMNS="200")
        done = subprocess.run([sys.executable, "-m", "chainproof.cli", "run", "filing-qa", "--company", "MMM",
                               "--question", QUESTION], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed" in done.stdout
    report = next((home / "reports").glob("*.md")).read_text()
    assert "**Answer:** 13 USD millions\n" in report and "**Value:** 13 USD millions\n" in report
    run_id = next((home / "reports").glob("*.md")).stem
    replayed = subprocess.run([sys.executable, "-m", "chainproof.cli", "replay", run_id], capture_output=True,
                              text=True, env=env, cwd=REPO, timeout=300)
    assert replayed.returncode == 0 and "identical: all" in replayed.stdout, replayed.stdout + replayed.stderr


def _bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_filing_qa", REPO / "bench" / "filing_qa.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_scores_numbers_within_one_percent_and_spans_exactly():
    bench = _bench()
    arith = {"answer_type": "arithmetic", "answer": 12.5, "scale": "percent"}
    assert bench.is_correct(arith, "12.6%", None) and bench.is_correct(arith, "", 0.125)
    assert not bench.is_correct(arith, "In 2019 it was 12.8 [table ¶3]", None)  # 2.4 % off; the year is skipped
    assert bench.is_correct({"answer_type": "arithmetic", "answer": -3.1, "scale": ""}, "(3.1)", None)
    span = {"answer_type": "span", "answer": ["the modified retrospective method"], "scale": ""}
    assert bench.is_correct(span, "Modified retrospective method. [text ¶1]", None)
    assert not bench.is_correct(span, "It used the modified retrospective method", None)
    figure = {"answer_type": "span", "answer": ["19.2"], "scale": "million"}  # a span that is one number
    assert bench.is_correct(figure, "It rose by $19.2 million in 2019", None)
    assert not bench.is_correct(figure, "It rose by $19.9 million", None) and not bench.is_correct(figure, "", None)


def test_the_benchmark_smoke_path_runs_three_systems_on_a_seeded_sample(shared_data):
    done = subprocess.run([sys.executable, str(REPO / "bench" / "filing_qa.py"), "--model", "scripted", "--limit", "2",
                           "--seed", "3", "--json"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert (results["questions"], results["arithmetic"], results["span"]) == (2, 1, 1)
    assert sorted(results["systems"]) == ["chainproof", "react", "react+retry"]
    assert all(s["model_calls"] >= 1 and s["input_tokens"] > 0 for s in results["systems"].values())
    again = subprocess.run([sys.executable, str(REPO / "bench" / "filing_qa.py"), "--model", "scripted", "--limit", "2",
                            "--seed", "3", "--json"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert [a["uid"] for a in json.loads(again.stdout)["answers"]] == [a["uid"] for a in results["answers"]]


def test_the_benchmark_names_columns_from_every_heading_row():
    """TAT-QA tables put a year over several columns in a row above their own headings; the
    benchmark's document names each column from all its heading rows (the same for every system)."""
    _bench()  # puts bench/ on the path, as running the script does
    import tatqa as bench
    spread = [["", "2019", "", "", "", "2018", ""],  # the year sits inside its span of three columns
              ["", "CENTS PER", "TOTAL", "DATE OF", "CENTS PER", "TOTAL", "DATE OF"],
              ["", "SHARE", "AMOUNT", "PAYMENT", "SHARE", "AMOUNT", "PAYMENT"],
              ["Current year interim", "45", "593", "5 April 2019", "43", "561", "6 April 2018"]]
    doc = bench.document({"table": {"table": spread}, "paragraphs": []})
    assert doc["sections"]["table"][1] == ("Current year interim: 2019 CENTS PER SHARE: 45; 2019 TOTAL AMOUNT: 593; "
                                           "2019 DATE OF PAYMENT: 5 April 2019; 2018 CENTS PER SHARE: 43; "
                                           "2018 TOTAL AMOUNT: 561; 2018 DATE OF PAYMENT: 6 April 2018")
    pairs = [["", "", "2019", "", "2018"],  # the year sits at the right of its two columns
             ["", "Gross", "Amortization", "Gross", "Amortization"],
             ["Brands", "$3,678.0", "$—", "$918.3", "$—"]]
    assert bench.column_names(pairs, bench.header_rows(pairs)) == [
        "label", "2019 Gross", "2019 Amortization", "2018 Gross", "2018 Amortization"]
    plain = [["Current assets", "As Reported", "Adjustments"], ["Inventories", "1,571.7", "(3.1)"]]
    assert bench.header_rows(plain) == 1  # a row of figures is never a heading
    assert bench.document({"table": {"table": plain}, "paragraphs": []})["sections"]["table"] == [
        "Columns: Current assets | As Reported | Adjustments", "Inventories: As Reported: 1,571.7; Adjustments: (3.1)"]


@pytest.mark.parametrize(("expression", "texts", "unit"), [
    ("608 - 595", ["It stood at $608 million ($595 million a year earlier)."], "USD millions"),
    ("avg(12.5, 13.1)", ["Margin: 2019: 12.5%; 2018: 13.1%"], "%"),
    ("(159 - 182) / 182 * 100", ["Other financial income: 2019: 159; 2018: 182"], "%"),
    ("1568.6 / 1571.7", ["Inventories: $1,571.7 million; adjusted $1,568.6 million"], None),  # a ratio has no unit
    ("45 + 43", ["Cents per share: 2019: 45; 2018: 43"], None),  # stated without a unit
    ("608 - 43", ["$608 million", "43%"], None),  # figures in different units
])
def test_a_calculated_answer_takes_the_unit_its_figures_are_stated_in(expression, texts, unit):
    from chainproof.graphs.filing_qa_answers import typed_answer

    paras = [{"section": "text", "paragraph": k, "text": t} for k, t in enumerate(texts, 1)]
    result = json.dumps({"expression": expression, "result": 1.0})
    answer = typed_answer({"stop_reason": "returned", "answer": result}, paras, "NOT FOUND")
    assert answer is not None and answer.unit == unit and answer.value == 1.0
    assert answer.answer == {"%": "1%", None: "1"}.get(unit, f"1 {unit}")


def test_a_date_in_an_answer_is_not_its_figure():
    from chainproof.graphs.filing_qa_answers import typed_answer

    paras = [{"section": "text", "paragraph": 4, "text": "There were 1,677,983 shares available for future issuance "
                                                         "as of September 29, 2019 under the plan."}]
    said = "1,677,983 shares available for future issuance as of September 29, 2019. [text ¶4]"
    answer = typed_answer({"stop_reason": "answered", "answer": said}, paras, "NOT FOUND")
    assert answer is not None and answer.value == 1677983.0 and answer.citations[0].paragraph == 4
    two = typed_answer({"stop_reason": "answered", "answer": "45 cents on 5 April 2019 and 43 cents [text ¶4]"}, paras,
                       "NOT FOUND")
    assert two is None  # two figures besides the date: the model says which answers


@pytest.mark.parametrize("graph", ["filing-qa", SecondLook.name])
def test_not_found_is_the_answer_not_a_guess_of_the_model(settings, graph):
    """The fresh-user QA's case: a question the filing does not answer. The agent says NOT FOUND
    (with ``second_look``: reads the rest of the paragraphs and says it again): the typed answer
    says so (found=False), with no model guess."""
    question = {"company": "MMM", "question": "Who is the chief executive officer of 3M?"}
    looks = 2 if graph == SecondLook.name else 1
    app, run, model = _run(settings, ["NOT FOUND"] * looks, question, graph)
    with app:
        assert run.status == "completed" and len(model.calls) == looks  # no decide call to invent a name
        assert model.calls[-1][-1].content.startswith("More of the filing:" if looks == 2 else "Paragraphs of the filing:")
        decision = run.state["decision"]
        assert decision["found"] is False and decision["citations"] == [] and decision["value"] is None
        assert "not found in the filing" in Path(run.report_path).read_text()
    with pytest.raises(ValueError, match="citations: expected at least one paragraph"):
        FilingAnswer(answer="John Doe", citations=[], confidence=0.9)  # a found answer must cite


def test_a_cite_must_state_the_figure_and_words_match_whole_words():
    from chainproof.graphs.filing_qa_answers import ParagraphCite, typed_answer

    paras = [{"section": "legal_note", "paragraph": 3, "text": "About 2,230 claimants."},
             {"section": "legal_note", "paragraph": 4, "text": "Insurance receivables were $4 million."},
             {"section": "text", "paragraph": 1, "text": "Eyes were on the ball; no litigation."}]
    # the model's cite does not state its figure: the figure may be misread (fresh-user QA: "2,660
    # [legal_note ¶4]" was the year-earlier count of ¶3); no cite is swapped in, the model types it
    said = {"stop_reason": "answered", "answer": "$4 million [legal_note ¶3]"}
    assert typed_answer(said, paras, "NOT FOUND") is None
    uncited = {"stop_reason": "answered", "answer": "$4 million"}  # no cite given: the one that states it
    assert typed_answer(uncited, paras, "NOT FOUND").citations[0].paragraph == 4
    loose = {"stop_reason": "answered", "answer": "They were $4 million. This is found in paragraph [¶4]."}
    assert typed_answer(loose, paras, "NOT FOUND").value == 4.0  # "¶4" without its section is no second figure
    assert typed_answer({"stop_reason": "answered", "answer": "Yes [text ¶1]"}, paras, "NOT FOUND") is None
    # words that say "not found" are an answer, not NOT FOUND; "3M" is a name, not the figure 3
    words = {"stop_reason": "answered", "answer": "were on the ball [text ¶1]"}
    assert typed_answer(words, paras, "NOT FOUND").found
    material = {"stop_reason": "answered", "answer": "Claims were not found to be material [legal_note ¶3]"}
    assert typed_answer(material, paras, "NOT FOUND") is None  # words no paragraph holds: the model types them
    cited = {"stop_reason": "answered", "answer": "US$4 million [from paragraph 4]"}  # a cite in words, no section
    assert (typed_answer(cited, paras, "NOT FOUND").answer, typed_answer(cited, paras, "NOT FOUND").value) == (
        "US$4 million", 4.0)
    # punctuation aside: the words of a quoted name are held however the paragraph quotes them
    quoting = [{"section": "text", "paragraph": 3, "text": "Charges are included in “Restructuring expenses” in the "
                                                           "statements (see Note 15)."}]
    held = typed_answer({"stop_reason": "answered", "answer": "Restructuring expenses in the statements"}, quoting,
                        "NOT FOUND")
    assert held is not None and held.citations == [ParagraphCite(section="text", paragraph=3)]
    assert typed_answer({"stop_reason": "answered", "answer": "Restructuring costs in the statements"}, quoting,
                        "NOT FOUND") is None
    # square brackets ending the answer are its cites (as the prompt asks), whatever they say
    noted = {"stop_reason": "answered", "answer": "Were on the ball [Note 15]."}
    assert (typed_answer(noted, paras, "NOT FOUND").answer, typed_answer(noted, paras, "NOT FOUND").citations) == (
        "Were on the ball", [ParagraphCite(section="text", paragraph=1)])
    # a sentence quoted as written (up to the answer's 400 characters) is typed by code, one reworded is not
    long = ("On 28 June 2019, the Group entered into an agreement for the sale of commercial investment property "
            "in Dunedin, New Zealand for NZD $1.3m less cost of sale of NZD $0.1m (AUD $1.2m less cost of sale of "
            "$0.1m). This has resulted in an unrealised gain of NZD $1.2m (AUD $1.1m) on the asset's carrying value.")
    quoted = [{"section": "text", "paragraph": 3, "text": long}]
    said = long.split(", the ", 1)[1]
    typed = typed_answer({"stop_reason": "answered", "answer": f"The {said} [text ¶3]"}, quoted, "NOT FOUND")
    assert typed is not None and typed.answer == f"The {said}".rstrip(".") and typed.value is None and len(said) > 200
    reworded = {"stop_reason": "answered", "answer": f"The {said.replace('entered into', 'signed')} [text ¶3]"}
    assert typed_answer(reworded, quoted, "NOT FOUND") is None
    over = [{"section": "text", "paragraph": 3, "text": long * 2}]
    assert typed_answer({"stop_reason": "answered", "answer": long * 2}, over, "NOT FOUND") is None
    named = [{"section": "text", "paragraph": 2, "text": "3M makes respirators."}]
    assert typed_answer({"stop_reason": "answered", "answer": "3M makes [text ¶2]"}, named, "NOT FOUND").value is None


@pytest.mark.parametrize(("said", "typed"), [
    ("The accrual increased by $100 million [legal_note ¶4]", None),  # the paragraph says it decreased
    ("The accrual decreased by $100 million [legal_note ¶4]", (-0.0 + 100.0, 4)),
    ("$1.2 billion", None), ("$1.2 million", (1.2, 5)),  # a scale the paragraph does not state it in
    ("-608", None), ("$(75)", (-75.0, 6)), ("-75 [legal_note ¶6]", (-75.0, 6)),  # a sign it does not state
    ("1,5 [legal_note ¶5]", None),  # no figure: commas group three digits
    ("3 [legal_note ¶4]", None), ("10 years", None),  # the 3 of "3M", the 10 of "10-K" are no figures
    ("$100 million [from paragraph 4]", (100.0, 4)), ("$100 million [from paragraph 5]", None),  # a loose cite
    ("No", None), ("the", None), ("material", None),  # one word: what it means is the model's to say
    ("accrual decreased [legal_note ¶5]", None),  # the words are ¶4's: never re-cited by code
    ("No, 3M has recorded no liability for these claims [legal_note ¶5]", (None, 5)),
    ("$1.2 million, see the Note on insurance risk [legal_note ¶5]", (1.2, 5)),  # "Note", "risk" turn nothing
])
def test_code_types_an_answer_only_where_the_cited_paragraph_says_it(said, typed):
    """Fresh-user QA: code typed answers the paragraph does not support (another direction, scale,
    sign, a name's digit, a single common word, a cite moved by code); these go to the model."""
    from chainproof.graphs.filing_qa_answers import typed_answer

    paras = [{"section": "legal_note", "paragraph": 4, "text": "In 2017 3M's accrual decreased by $100 million (10-K)."},
             {"section": "legal_note", "paragraph": 5, "text": "Insurance was $1.2 million. 3M has recorded no "
                                                               "liability for these claims. It is not material."},
             {"section": "legal_note", "paragraph": 6, "text": "Other, net: 2019: (75); 2018: 12"}]
    answer = typed_answer({"stop_reason": "answered", "answer": said}, paras, "NOT FOUND")
    if typed is None:
        assert answer is None
    else:
        assert answer is not None and (answer.value, answer.citations[0].paragraph) == typed


def test_a_calculation_from_figures_no_paragraph_states_is_not_an_answer():
    """The fresh-user QA's "CEO's salary": the forced calculation used two figures the filing does
    not state; the typed answer says so (found=False), never a figure with an unrelated cite."""
    from chainproof.graphs.filing_qa_answers import typed_answer

    paras = [{"section": "legal_note", "paragraph": 4, "text": "The accrual was $608 million, from $595 million."},
             {"section": "risk_factors", "paragraph": 12, "text": "Litigation could harm results."}]

    def calc(expression, result):
        return {"stop_reason": "returned", "answer": json.dumps({"expression": expression, "result": result})}

    invented = typed_answer(calc("(10500 - 9800) / 9800 * 100", 7.1429), paras, "NOT FOUND")
    assert not invented.found and invented.citations == [] and "10500, 9800" in invented.answer
    assert not typed_answer(calc("999 - 595", 404.0), paras, "NOT FOUND").found  # one figure of the filing is not enough
    # 100 of a percentage and the 2 of an average are the arithmetic's own
    change = typed_answer(calc("(608 - 595) / 595 * 100", 2.1849), paras, "NOT FOUND")
    assert change.found and change.unit == "%" and [c.paragraph for c in change.citations] == [4]
    assert typed_answer(calc("(608 + 595) / 2", 601.5), paras, "NOT FOUND").value == 601.5
    # a figure the search showed the model but the evidence step did not keep is still stated
    shown = [{"section": "table", "paragraph": 7, "text": "Options: 2019: 3,617; 2018: 3,622"}]
    kept = typed_answer(calc("3617 - 608", 3009.0), paras, "NOT FOUND", shown)
    assert kept.found and [c.paragraph for c in kept.citations] == [4]
    assert "uses 3617, which" in typed_answer(calc("3617 - 3617 + 608", 608.0), paras, "NOT FOUND").answer


@pytest.mark.parametrize("question", ["What does the climate change risk factor say?",
                                      "What risk factors could change 3M's results?",
                                      "Did the asbestos accrual increase in 2017?"])
def test_questions_that_ask_for_no_figure_are_not_sent_to_the_calculator(question):
    from chainproof.graphs.filing_qa import needs_calculation

    assert not needs_calculation(question)


def test_a_question_without_words_or_an_oversized_document_is_refused_before_anything_runs(settings, tmp_path):
    from chainproof.tools import input_files

    with Chainproof(settings, models=StaticModels(ModelMustNotBeCalled())) as app:
        with pytest.raises(ValueError, match="question: expected words to search the filing for, got '\\?\\?\\?'"):
            app.start("filing-qa", {"company": "MMM", "question": "???"})
        big = tmp_path / "big.json"
        big.write_text(json.dumps({"name": "x", "sections": {"s": ["word " * 60_000]}}))
        folder = tmp_path / "folder.json"
        folder.mkdir()
        with pytest.raises(ValueError, match="document: expected a JSON file, got a folder"):
            app.start("filing-qa", {"company": "ACME", "question": "Revenue?", "document": str(folder)})
        input_files.configure(0.1)
        try:
            with pytest.raises(ValueError, match=r"document .*big.json: 0.3 MiB, more than the 0.1 MiB limit"):
                app.start("filing-qa", {"company": "ACME", "question": "Revenue?", "document": str(big)})
        finally:
            input_files.configure(settings.input_file_max_mb)
        assert app.audit.list_runs() == []


def test_the_report_shows_which_figures_a_calculation_took(settings):
    app, run, _ = _run(settings, [call(("calculate", {"expression": "30 - 13"}))],
                       {"company": "MMM", "question": "By how much did the asbestos accrual change in 2017?"})
    with app:
        report = Path(run.report_path).read_text()
        assert "**Computed:** `30 - 13 = 17`" in report
        assert "check them against the citations" in report


def test_the_benchmark_refuses_an_answers_file_it_cannot_resume_from(tmp_path, shared_data):
    """``--answers`` given a folder or a file of other lines: exit 2 naming the file and line, and
    the file is left as it was (an hour of kept answers is never overwritten)."""
    bench = _bench()
    with pytest.raises(ValueError, match="expected a JSON-lines file, got the folder"):
        bench.kept_answers(tmp_path, "local", {"q1"})
    corrupt = tmp_path / "answers.jsonl"
    good = {"system": "react", "uid": "q1", "correct": True, "given": "1", "input_tokens": 3, "output_tokens": 1,
            "model_calls": 1, "seconds": 1.0, "model": "local"}
    for bad in ("{not json", "[1, 2]", json.dumps({**good, "input_tokens": "x"})):
        corrupt.write_text(json.dumps(good) + "\n" + bad + "\n")
        with pytest.raises(ValueError, match="answers.jsonl line 2 is not a kept answer"):
            bench.kept_answers(corrupt, "local", {"q1"})
    corrupt.write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="answers.jsonl is not UTF-8"):
        bench.kept_answers(corrupt, "local", {"q1"})
    with pytest.raises(ValueError, match="the folder .*nowhere does not exist"):
        bench.kept_answers(tmp_path / "nowhere" / "a.jsonl", "local", {"q1"})
    corrupt.write_text(json.dumps(good) + "\n")
    assert [a.uid for a in bench.kept_answers(corrupt, "local", {"q1"})] == ["q1"]
    done = subprocess.run([sys.executable, str(REPO / "bench" / "filing_qa.py"), "--model", "scripted", "--limit", "2",
                           "--answers", str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 2 and "--answers: expected a JSON-lines file" in done.stderr and "Traceback" not in done.stderr


def test_a_yes_no_question_is_answered_with_the_words_that_say_so(settings, tmp_path):
    """Fresh-user QA: "Did Acme pay a dividend?" ended NOT FOUND, the prompt asking for copied words
    only. A yes/no question asks for Yes or No with the words that say so; those words, held by
    the cited paragraph, are typed by code; a NOT FOUND report says what the model read."""
    doc = tmp_path / "doc.json"
    doc.write_text(json.dumps({"name": "Acme report", "sections": {"text": [
        "Revenue grew on higher volumes.", "The board did not declare or pay a dividend in 2017.",
        "Dividends may resume in 2019."]}}))
    question = {"company": "ACME", "question": "Did Acme pay a dividend to shareholders in 2017?", "document": str(doc)}
    app, run, model = _run(settings, ["No, the board did not declare or pay a dividend in 2017 [text ¶2]"], question)
    with app:
        assert "Yes or No, then the words of the paragraphs that say so" in model.calls[0][-1].content
        decision = run.state["decision"]
        assert decision["answer"] == "No, the board did not declare or pay a dividend in 2017" and len(model.calls) == 1
        assert decision["citations"] == [{"section": "text", "paragraph": 2}]
    app, run, model = _run(Settings(home=tmp_path / "nf"), ["NOT FOUND"], question)
    with app:
        report = Path(run.report_path).read_text()
        assert "None: the model found no answer in the paragraphs it read (the search's best 2 of the 2 it kept)" in report
