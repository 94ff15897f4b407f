"""The filing-qa graph on the real embedded model (Qwen2.5-Coder-1.5B through llama.cpp): the
filing is searched (by code, with the question), the model's forced ``calculate`` call (a
llama.cpp grammar over the tool's arguments) is run and its result is the answer
(``return_direct``), the typed answer cites checked paragraphs, and the run replays with no model
call. Runs only where the ``[local]`` extra is installed (about a minute on 2 cores); skips
otherwise. The figures the 1.5B model reads are its own and are not asserted."""

from __future__ import annotations

import time

import pytest

from chainproof.agents.config import LocalModelSettings
from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ModelCallRecord, ToolCallRecord
from chainproof.settings import Settings
from testkit.real_model import SKIP_REASON, real_model_ready
from testkit.toy_models import ModelMustNotBeCalled

QUESTION = ("What is the difference, in USD millions, between 3M's respirator mask and asbestos accrual at the end "
            "of 2017 and a year earlier? Find both amounts with search_filing, then subtract them with calculate.")


@pytest.mark.skipif(not real_model_ready(), reason=SKIP_REASON)
def test_the_embedded_model_searches_then_calculates_then_answers(home, capsys):
    from chainproof.agents.local_weights import local_model_path

    settings = Settings(home=home, local=LocalModelSettings(gguf_path=local_model_path(), n_threads=2))
    started = time.perf_counter()
    with Chainproof(settings) as app:
        run = app.start("filing-qa", {"company": "MMM", "question": QUESTION})
        assert run.status == "completed"
        tools = app.audit.records_of(run.run_id, ToolCallRecord)
        ran = [t.tool for t in tools if t.error is None]
        assert "search_filing" in ran and "calculate" in ran, [(t.tool, t.args, t.error) for t in tools]
        agent_calls = [m for m in app.audit.records_of(run.run_id, ModelCallRecord) if m.node == "agent"]
        assert agent_calls[0].tool_calls[0]["name"] == "calculate"  # the adapter's grammar-forced call
        answer = run.state["findings"]["answer"]["data"]
        assert answer["stop_reason"] == "returned", answer
        decision = run.state["decision"]
        assert decision["citations"], decision
        elapsed = time.perf_counter() - started
        app.models = StaticModels(ModelMustNotBeCalled())
        assert app.replay(run.run_id).outcome == "identical"
    with capsys.disabled():
        calc = next(t for t in tools if t.tool == "calculate" and t.error is None)
        print(f"\n[real model filing-qa] {elapsed:.0f}s, {len(agent_calls)} agent iterations, "
              f"calculate({calc.args['expression']}) = {calc.result['result']}; answer: {decision['answer']!r} "
              f"value {decision['value']} cites {decision['citations']}")


@pytest.mark.skipif(not real_model_ready(), reason=SKIP_REASON)
def test_the_embedded_model_chooses_a_tool_itself_through_its_fenced_json_reply(home, capsys):
    """``tool_choice="auto"``: no grammar; the 1.5B model writes its call as fenced JSON in free
    text (not Qwen's ``<tool_call>`` tags), the adapter recovers it, and the agent step runs the
    tool it chose and records it; the run replays with no model call."""
    from chainproof import PlanStep
    from chainproof.agents.local_weights import local_model_path
    from chainproof.graphs.filing_qa import FilingQA
    from chainproof.graphs.registry import register

    class FreeStart(FilingQA):
        name = "filing-qa-free-start"

        def plan(self, inputs):
            return [s.model_copy(update={"first_tool_choice": "auto"}) if isinstance(s, PlanStep) and s.kind == "agent"
                    else s for s in super().plan(inputs)]

    register(FreeStart.name, FreeStart)
    settings = Settings(home=home, local=LocalModelSettings(gguf_path=local_model_path(), n_threads=2))
    with Chainproof(settings) as app:
        run = app.start(FreeStart.name, {"company": "MMM", "question": QUESTION})
        assert run.status == "completed"
        rows = [s for s in app.audit.records_of(run.run_id, "steps") if s.node == "agent"]
        assert "tool_choice" not in rows[0].inputs  # the model chose: no tool_choice was sent
        first = next(m for m in app.audit.records_of(run.run_id, ModelCallRecord) if m.node == "agent")
        chosen = [c["name"] for c in first.tool_calls]
        assert chosen and set(chosen) <= {"search_filing", "calculate"}, (first.output, first.tool_calls)
        ran = [t for t in app.audit.records_of(run.run_id, ToolCallRecord) if t.step_no == rows[0].step_no]
        assert [t.tool for t in ran] == chosen and all(t.error is None for t in ran), [(t.tool, t.error) for t in ran]
        app.models = StaticModels(ModelMustNotBeCalled())
        assert app.replay(run.run_id).outcome == "identical"
    with capsys.disabled():
        print(f"\n[real model, tool_choice auto] first reply's calls {[(c['name'], c['args']) for c in first.tool_calls]}; "
              f"answer {run.state['decision'].get('answer')!r}")
