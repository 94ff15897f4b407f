"""What an agent step lets its graph decide about each model call: the first ``tool_choice``
(``none`` or a named tool, OpenAI's values), a ``return_direct`` tool whose result is the step's
answer (LangChain's flag, as LangGraph's ``create_react_agent`` honours it), and the prompt itself
(``ChainSpec.agent_prompt``, LangGraph's ``prompt=callable``). Each is recorded and replays with
zero model calls."""

from __future__ import annotations

import re
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from chainproof.agents.llama_messages import constrain
from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ModelCallRecord, Step, ToolCallRecord
from chainproof.errors import PlanError
from chainproof.graphs.registry import register
from chainproof.graphs.spec import PlanStep
from chainproof.graphs.tool import tool
from testkit import agent_graph
from testkit.agent_graph import DECISION, FINAL, AgentChain, call, multiply, ratio, revenue, start_scripted
from testkit.toy_models import ModelMustNotBeCalled


@tool(return_direct=True)
def growth(old: float, new: float) -> dict:
    """Percentage change from old to new; its result is the answer."""
    agent_graph.RUNS["growth"] = agent_graph.RUNS.get("growth", 0) + 1
    return {"growth_pct": round((new - old) / old * 100, 2)}


class ChoosingChain(AgentChain):
    """The agent chain with a ``return_direct`` tool and, optionally, its own compact prompt."""

    name = "choosing-chain"

    def __init__(self, first_tool_choice: str = "auto", own_prompt: bool = False, tools: list[str] | None = None):
        super().__init__(first_tool_choice=first_tool_choice)
        self.own_prompt = own_prompt
        self.step_tools = tools

    def tools(self):
        return [revenue, ratio, multiply, growth]

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        return [step.model_copy(update={"tools": self.step_tools}) for step in super().plan(inputs)]

    def agent_prompt(self, step, view, task):
        if not self.own_prompt:
            return None
        return [SystemMessage("Be brief."), HumanMessage(f"{task} Goal: {view.goal}")]


def _run(settings, replies, **config):
    return start_scripted(settings, "choosing-chain", lambda: ChoosingChain(**config), replies)


def _replayed_identically(app, run_id):
    agent_graph.RUNS.clear()
    app.models = StaticModels(ModelMustNotBeCalled())
    replay = app.replay(run_id)
    assert replay.outcome == "identical", [(s.step_no, s.differences) for s in replay.steps if s.differences]
    assert agent_graph.RUNS == {}


def test_a_return_direct_tool_ends_the_step_with_its_result_and_no_model_reads_it(settings):
    app, run, model = _run(settings, [call(("revenue", {"company": "ACME"})),
                                      call(("growth", {"old": 800.0, "new": 1200.0})), DECISION])
    with app:
        assert run.status == "completed"
        found = run.state["findings"]["compare"]
        assert found["summary"] == '{"growth_pct":50.0}'  # the tool's result, as the model would have seen it
        assert found["data"]["stop_reason"] == "returned" and found["data"]["iterations"] == 2
        assert "growth returned its result" in found["data"]["detail"]
        agent_calls = [m for m in app.audit.records_of(run.run_id, ModelCallRecord) if m.node == "agent"]
        assert len(agent_calls) == 2  # no third call to read the result
        _replayed_identically(app, run.run_id)


def test_an_invalid_call_of_a_return_direct_tool_goes_back_to_the_model(settings):
    app, run, _ = _run(settings, [call(("growth", {"old": "eight hundred", "new": 1200.0})),
                                  call(("growth", {"old": 800.0, "new": 1000.0})), DECISION])
    with app:
        assert run.status == "completed"
        data = run.state["findings"]["compare"]["data"]
        assert data["stop_reason"] == "returned" and data["invalid_calls"] == 1
        assert [t.error is None for t in app.audit.records_of(run.run_id, ToolCallRecord)] == [False, True]
        assert run.state["findings"]["compare"]["summary"] == '{"growth_pct":25.0}'


@pytest.mark.parametrize("choice", ["none", "ratio"])
def test_first_tool_choice_none_or_a_named_tool_is_sent_on_the_first_iteration_only(settings, choice):
    first = FINAL if choice == "none" else call(("ratio", {"numerator": 1200.0, "denominator": 800.0}))
    replies = [first, DECISION] if choice == "none" else [first, FINAL, DECISION]
    app, run, model = _run(settings, replies, first_tool_choice=choice)
    with app:
        assert run.status == "completed"
        choices = [b["tool_choice"] for b in model.bound if b.get("tools")]
        assert choices == ([choice] if choice == "none" else [choice, None])
        first_row = next(s for s in app.audit.records_of(run.run_id, Step) if s.node == "agent")
        assert first_row.inputs["tool_choice"] == choice
        _replayed_identically(app, run.run_id)


def test_a_first_tool_choice_naming_another_tool_is_refused(settings):
    with pytest.raises(ValueError, match="first_tool_choice: expected 'auto', 'required', 'none' or one of"):
        PlanStep(id="a", title="A", kind="agent", instruction="x", tools=["ratio"], first_tool_choice="revenue")
    with pytest.raises(ValueError, match="first_tool_choice"):
        PlanStep(id="a", title="A", kind="agent", instruction="x", first_tool_choice="any")  # LangChain's spelling
    with pytest.raises(PlanError, match="first_tool_choice names tool 'transfer', which the graph does not have"):
        _run(settings, [FINAL, DECISION], first_tool_choice="transfer")  # the step binds every tool of the graph


def test_the_spec_prompt_replaces_the_engine_prompt_and_the_window_follows(settings):
    app, run, model = _run(settings, [call(("revenue", {"company": "ACME"})), FINAL, DECISION], own_prompt=True)
    with app:
        assert run.status == "completed"
        first, second = model.calls[0], model.calls[1]
        assert [type(m).__name__ for m in first] == ["SystemMessage", "HumanMessage"]
        assert first[0].content == "Be brief." and first[1].content.startswith("Find both revenues")
        assert "Plan steps done" not in first[1].content  # none of the engine's parts
        assert [type(m).__name__ for m in second] == ["SystemMessage", "HumanMessage", "AIMessage", "ToolMessage"]
        assert '"revenue":1200.0' in second[-1].content
        _replayed_identically(app, run.run_id)


def test_the_embedded_model_is_shown_only_the_forced_tool():
    tools = [revenue, ratio, multiply]
    shown, forced, required, _ = constrain(tools, "ratio", None)
    assert [t["function"]["name"] for t in shown] == ["ratio"] and forced is not None and not required
    shown, forced, required, fmt = constrain(tools, "required", None)
    assert len(shown) == 3 and forced is None and required and fmt is not None
    assert constrain(tools, "none", None)[0] is None  # not shown at all


class _BadPrompt(ChoosingChain):
    def __init__(self, returned):
        super().__init__()
        self.returned = returned

    def agent_prompt(self, step, view, task):
        return self.returned


class _BadDecidePrompt(_BadPrompt):
    name = "bad-decide-prompt"

    def agent_prompt(self, step, view, task):
        return None

    def decision_messages(self, view, task):
        return self.returned


@pytest.mark.parametrize(("returned", "got"), [("just a string", "got str"), ([], "got an empty list"),
                                               ([HumanMessage("x"), 3], "a list holding ['HumanMessage', 'int']")])
def test_an_agent_prompt_that_is_not_messages_is_refused_naming_the_hook(settings, returned, got):
    with pytest.raises(PlanError, match=f"_BadPrompt.agent_prompt for plan step 'compare': expected None or a "
                                        f"non-empty list of LangChain messages .*{re.escape(got)}"):
        start_scripted(settings, "bad-prompt", lambda: _BadPrompt(returned), [FINAL, DECISION])


def test_a_decision_prompt_that_is_not_messages_is_refused_naming_the_hook(settings):
    with pytest.raises(PlanError, match="_BadDecidePrompt.decision_messages: expected None or a non-empty list of "
                                        "LangChain messages .*got str"):
        start_scripted(settings, "bad-decide-prompt", lambda: _BadDecidePrompt("decide!"), [FINAL, DECISION])


@pytest.mark.parametrize("attempts", [0, 2.0, True, "3"])
def test_decide_attempts_that_are_not_a_whole_number_of_at_least_one_are_refused_before_the_run(settings, attempts):
    """Refused when the run starts, naming the setting: no run recorded, no model called."""
    spec = type("_Attempts", (_BadDecidePrompt,), {"decide_attempts": attempts})
    register("bad-decide-attempts", lambda: spec(None))
    model = ScriptedChatModel(replies=[FINAL, DECISION])
    with Chainproof(settings, models=StaticModels(model)) as app:
        with pytest.raises(PlanError, match=f"_Attempts.decide_attempts: expected a whole number of at least 1, got "
                                            f"{re.escape(repr(attempts))}"):
            app.start("bad-decide-attempts", {})
        assert app.audit.list_runs(5) == [] and model.calls == []


@pytest.mark.parametrize(("choice", "reply", "why"), [
    ("none", call(("revenue", {"company": "ACME"})), "this reply's tool_choice was 'none': no tool may be called"),
    ("ratio", call(("growth", {"old": 1.0, "new": 2.0})), "this reply's tool_choice was 'ratio': only 'ratio' may"),
])
def test_a_call_the_tool_choice_does_not_allow_is_refused_not_run(settings, choice, reply, why):
    """A server may ignore tool_choice: the reply is checked, and a call it does not allow is
    recorded as invalid and shown back, never run (not even a return_direct tool)."""
    app, run, model = _run(settings, [reply, FINAL, DECISION], first_tool_choice=choice)
    with app:
        assert run.status == "completed"
        refused = app.audit.records_of(run.run_id, ToolCallRecord)[0]
        assert why in refused.error and refused.result is None
        assert agent_graph.RUNS == {}  # nothing ran
        assert run.state["findings"]["compare"]["data"]["stop_reason"] == "answered"
        assert why in model.calls[1][-1].content
