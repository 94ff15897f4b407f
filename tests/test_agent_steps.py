"""Agent steps (ReAct): the model chooses tools and arguments over audited iterations; invalid calls
are shown back and recorded; max_iterations and reviews end a step cleanly; replay reproduces every
iteration with zero model calls and no tool run; a tool step may skip the model's interpretation."""

from __future__ import annotations

import json

import pytest

from chainproof.agents.local_llm import LocalLlamaChat
from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ModelCallRecord, ReviewRecord, Step, ToolCallRecord
from chainproof.graphs.registry import register
from chainproof.graphs.spec import PlanStep
from chainproof.types import StepBudgetPause
from testkit import agent_graph
from testkit.agent_graph import DECISION, FINAL, AgentChain, call, five_iterations, looping, start_scripted
from testkit.fake_llama import FakeLlama
from testkit.toy_models import ModelMustNotBeCalled


def _run(settings, replies, **config):
    return start_scripted(settings, "agent-chain", lambda: AgentChain(**config), replies)


def _replayed_identically(app, run_id, tool_calls_served):
    agent_graph.RUNS.clear()
    app.models = StaticModels(ModelMustNotBeCalled())
    replay = app.replay(run_id)
    assert replay.outcome == "identical", [(s.step_no, s.differences) for s in replay.steps if s.differences]
    assert agent_graph.RUNS == {}  # no tool ran
    assert replay.tool_calls_served == tool_calls_served
    return replay


def _rows(app, run_id, kind):
    return app.audit.records_of(run_id, kind)


def test_an_agent_calls_three_tools_over_five_iterations_then_answers(settings):
    app, run, model = _run(settings, five_iterations())
    with app:
        assert run.status == "completed"
        steps = _rows(app, run.run_id, Step)
        iterations = [s for s in steps if s.node == "agent"]
        assert [s.title for s in iterations] == [f"Compare revenues: iteration {i}" for i in range(1, 7)]
        assert all(s.effort == "low" and s.input_tokens > 0 for s in iterations)  # each iteration audited
        tools = _rows(app, run.run_id, ToolCallRecord)
        assert [(t.step_no, t.tool, t.result) for t in tools] == [
            (2, "revenue", {"company": "ACME", "revenue": 1200.0}), (3, "revenue", {"company": "BETA", "revenue": 800.0}),
            (4, "ratio", {"ratio": 1.5}), (5, "multiply", {"product": 3.0}),
            (5, "revenue", {"company": "ACME", "revenue": 1200.0}), (6, "ratio", {"ratio": 3.0})]
        assert iterations[3].output["tool_calls"] == [{"id": "call_3_0", "tool": "multiply", "status": "ok"},
                                                     {"id": "call_3_1", "tool": "revenue", "status": "ok"}]
        calls = [m for m in _rows(app, run.run_id, ModelCallRecord) if m.node == "agent"]
        assert [c.step_no for c in calls] == [2, 3, 4, 5, 6, 7]
        assert calls[3].tool_calls[0]["name"] == "multiply" and calls[5].tool_calls == []
        # the tools were bound by their JSON schemas, and each result reached the model
        bound = model.bound[0]["tools"]
        assert [t["function"]["name"] for t in bound] == ["revenue", "ratio", "multiply"]
        assert bound[1]["function"]["parameters"]["required"] == ["numerator", "denominator"]
        last_prompt = model.calls[5]
        assert last_prompt[-1].tool_call_id == "call_4_0" and last_prompt[-1].content == '{"ratio":3.0}'
        assert run.state["findings"]["compare"]["summary"] == FINAL
        assert run.state["findings"]["compare"]["data"]["stop_reason"] == "answered"
        assert run.state["iterations"] == 6 and run.state["tools_used"] == ["multiply", "ratio", "revenue"]
        replay = _replayed_identically(app, run.run_id, 6)
        assert replay.model_calls_served == 7


def test_an_invalid_argument_is_shown_back_then_repaired(settings):
    replies = [call(("ratio", {"numerator": "lots", "denominator": 800.0}), ("sqrt", {"x": 4})),
               call(("ratio", {"numerator": 1200.0, "denominator": 800.0, "scale": 2})),
               call(("ratio", {"numerator": 1200.0, "denominator": 800.0})), FINAL, DECISION]
    app, run, model = _run(settings, replies)
    with app:
        assert run.status == "completed"
        tools = _rows(app, run.run_id, ToolCallRecord)
        assert [(t.tool, t.result is None) for t in tools] == [("ratio", True), ("sqrt", True), ("ratio", True),
                                                               ("ratio", False)]
        assert tools[0].error.startswith("InvalidToolCall: arguments of tool 'ratio': numerator: Input should be a valid number")
        assert tools[1].error == "InvalidToolCall: there is no tool 'sqrt'; the tools are ['revenue', 'ratio', 'multiply']"
        assert "scale: not an argument of the tool" in tools[2].error  # pydantic would have dropped it
        assert agent_graph.RUNS == {"ratio": 1}  # invalid calls never ran
        shown = model.calls[1][-2:]  # the model saw why each call was refused
        assert shown[0].status == "error" and "numerator: Input should be a valid number" in shown[0].content
        assert "there is no tool 'sqrt'" in shown[1].content
        agent = [s for s in _rows(app, run.run_id, Step) if s.node == "agent"]
        assert [x["status"] for x in agent[0].output["tool_calls"]] == ["invalid", "invalid"]
        assert run.state["findings"]["compare"]["data"]["invalid_calls"] == 3
        _replayed_identically(app, run.run_id, 1)


def test_more_invalid_calls_than_allowed_end_the_step_with_the_reason(settings):
    review = json.dumps({"decision": "continue", "reason": "the answer will do", "drift": "none"})
    replies = [call(("ratio", {"numerator": "x", "denominator": 1})), call(("ratio", {"numerator": "y", "denominator": 1})),
               review, DECISION]
    app, run, _ = _run(settings, replies, max_invalid_calls=1)
    with app:
        assert run.status == "completed"
        finding = run.state["findings"]["compare"]
        assert finding["data"]["stop_reason"] == "invalid_calls"
        assert "2 invalid tool calls, more than the 1 the step allows" in finding["summary"]
        assert [r.decision for r in _rows(app, run.run_id, ReviewRecord)] == ["continue"]  # the review decided
        _replayed_identically(app, run.run_id, 0)


def test_max_iterations_ends_the_step_cleanly_and_reviews_decide(settings):
    rescope = json.dumps({"decision": "rescope", "reason": "only the ratio matters",
                          "instruction": "Compute only the ratio of the two revenues."})
    carry_on = json.dumps({"decision": "continue", "reason": "progress"})
    terminate = json.dumps({"decision": "terminate", "reason": "the agent could not finish", "drift": "none"})
    replies = [*looping(2), rescope, call(("multiply", {"a": 1.5, "b": 2.0}), text="Partial: the ratio is 1.5."),
               *looping(1), carry_on, *looping(1), terminate, DECISION]
    app, run, model = _run(settings, replies, max_iterations=5, review_every=2)
    with app:
        assert run.status == "completed" and run.state["termination"]["by"] == "review"
        nodes = [(s.node, s.title) for s in _rows(app, run.run_id, Step)]
        assert [n for n, _ in nodes] == ["plan", "agent", "agent", "review", "agent", "agent", "review", "agent",
                                         "observe", "review", "decide", "report"]  # the best answer, then the report
        assert nodes[3][1] == "Goal review of Compare revenues after 2 iterations"
        assert [r.decision for r in _rows(app, run.run_id, ReviewRecord)] == ["rescope", "continue", "terminate"]
        assert "Your task now: Compute only the ratio of the two revenues." in model.calls[3][1].content
        finding = run.state["findings"]["compare"]
        assert finding["data"]["stop_reason"] == "max_iterations" and finding["data"]["iterations"] == 5
        assert finding["summary"] == ("Stopped without an answer (max_iterations (5) reached). "
                                      "Best answer available: Partial: the ratio is 1.5.")
        report = (settings.resolved_reports_dir / f"{run.run_id}.md").read_text()
        assert "Partial: the ratio is 1.5." in report and "the agent could not finish" in report
        _replayed_identically(app, run.run_id, 5)


def test_a_review_can_end_the_step_with_the_best_answer_built_by_code(settings):
    end = json.dumps({"decision": "end_step", "reason": "enough evidence"})
    app, run, _ = _run(settings, [*looping(2), end, DECISION], max_iterations=50, review_every=2)
    with app:
        assert run.status == "completed" and not run.state.get("termination")
        data = run.state["findings"]["compare"]["data"]
        assert data["stop_reason"] == "review" and data["answer"] is None
        assert data["best"] == ('No answer from the model; latest tool results: multiply -> {"product":0.0}; '
                                'multiply -> {"product":2.0}')
        _replayed_identically(app, run.run_id, 2)


def test_the_step_budget_counts_iterations(settings):
    register("agent-chain", AgentChain)
    agent_graph.RUNS.clear()
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=five_iterations()))) as app:
        paused = app.start("agent-chain", {}, max_steps=3)
        assert isinstance(paused.pause, StepBudgetPause) and paused.state["iterations"] == 3
        assert agent_graph.RUNS == {"revenue": 2, "ratio": 1}
        done = app.resume(paused.run_id, max_steps=20)
        assert done.status == "completed" and done.state["findings"]["compare"]["summary"] == FINAL
        _replayed_identically(app, paused.run_id, 6)


def test_a_tool_step_without_interpretation_costs_no_model_call(settings):
    app, run, model = _run(settings, five_iterations(), with_tool_step=True)
    with app:
        assert run.status == "completed"
        assert len(model.calls) == 7  # six agent iterations and the decision: none for the tool step
        observe = next(s for s in _rows(app, run.run_id, Step) if s.node == "observe")
        assert observe.title == "Record ACME revenue" and observe.input_tokens == 0 and observe.model is None
        assert [m.step_no for m in _rows(app, run.run_id, ModelCallRecord)][0] == 4  # the agent's first iteration
        finding = run.state["findings"]["acme"]
        assert finding["summary"] == '{"company":"ACME","revenue":1200.0}'  # exact, built by code
        assert finding["data"] == {"company": "ACME", "revenue": 1200.0}
        _replayed_identically(app, run.run_id, 7)


def test_interpret_false_is_for_tool_steps_only():
    with pytest.raises(ValueError, match="interpret=False applies to tool steps only"):
        PlanStep(id="a", title="A", kind="agent", instruction="x", interpret=False)
    with pytest.raises(ValueError, match="an agent step chooses its tools"):
        PlanStep(id="a", title="A", kind="agent", instruction="x", tool="revenue")
    with pytest.raises(ValueError, match="tool_args applies to agent steps"):
        PlanStep(id="a", title="A", kind="tool", tool="t", instruction="x", tool_args={"t": {"k": 1}})
    plain = PlanStep(id="a", title="A", kind="tool", tool="t", instruction="x")
    assert "interpret" not in plain.model_dump() and "max_iterations" not in plain.model_dump()
    assert "tool_args" not in plain.model_dump()  # recorded plans dump as before the field existed
    assert "first_tool_choice" not in plain.model_dump()
    with pytest.raises(ValueError, match="first_tool_choice applies to agent steps"):
        PlanStep(id="a", title="A", kind="reason", instruction="x", first_tool_choice="required")
    with pytest.raises(ValueError, match="first_tool_choice"):
        PlanStep(id="a", title="A", kind="agent", instruction="x", first_tool_choice="any")


def test_first_tool_choice_required_binds_it_on_the_first_iteration_only(settings):
    """OpenAI's tool_choice="required" on iteration 1 (the model must call a tool before it may
    answer), then the model's own choice; recorded on the iteration's row and in the plan, replayed."""
    app, run, model = _run(settings, five_iterations(), first_tool_choice="required")
    with app:
        assert run.status == "completed"
        agent_bindings = [b for b in model.bound if b.get("tools")]
        assert [b["tool_choice"] for b in agent_bindings] == ["required", None, None, None, None, None]
        iterations = [s for s in _rows(app, run.run_id, Step) if s.node == "agent"]
        assert iterations[0].inputs["tool_choice"] == "required"
        assert all("tool_choice" not in s.inputs for s in iterations[1:])
        plan = next(s for s in _rows(app, run.run_id, Step) if s.node == "plan")
        assert plan.output["plan"][0]["first_tool_choice"] == "required"
        _replayed_identically(app, run.run_id, 6)


def _fenced(name, args):
    return f'I will call {name}.\n```json\n{json.dumps({"name": name, "arguments": args})}\n```'


def test_the_embedded_model_fenced_json_calls_run_the_same_agent_step(settings):
    """The local model's fenced-JSON tool calls become the same LangChain tool calls: the same
    tools run with the same arguments, and the step reaches the same answer."""
    replies = five_iterations()
    scripted_app, scripted, _ = _run(settings, replies)
    with scripted_app:
        expected = [(t.tool, t.args, t.result) for t in _rows(scripted_app, scripted.run_id, ToolCallRecord)]
    fenced = ["First ACME.\n```json\n" + json.dumps({"name": "revenue", "arguments": {"company": "ACME"}}) + "\n```",
              _fenced("revenue", {"company": "BETA"}), _fenced("ratio", {"numerator": 1200.0, "denominator": 800.0}),
              "```json\n" + json.dumps([{"name": "multiply", "arguments": {"a": 1.5, "b": 2}},
                                        {"name": "revenue", "arguments": {"company": "ACME"}}]) + "\n```",
              _fenced("ratio", {"numerator": 3.0, "denominator": 1}), FINAL, DECISION]
    local = LocalLlamaChat(llama=FakeLlama(*fenced))
    register("agent-chain", AgentChain)
    agent_graph.RUNS.clear()
    with Chainproof(settings, models=StaticModels(local)) as app:
        run = app.start("agent-chain", {})
        assert run.status == "completed"
        got = [(t.tool, t.args, t.result) for t in _rows(app, run.run_id, ToolCallRecord)]
        assert got == expected
        assert run.state["findings"]["compare"]["summary"] == FINAL
        first = next(m for m in _rows(app, run.run_id, ModelCallRecord) if m.node == "agent")
        assert first.tool_calls[0]["name"] == "revenue" and first.tool_calls[0]["type"] == "tool_call"
        _replayed_identically(app, run.run_id, 6)


def test_the_embedded_model_is_made_to_call_a_tool_on_the_first_iteration(settings):
    """first_tool_choice="required" with three tools bound: the embedded model's first reply is
    constrained to one call among them (a JSON schema over names and arguments), later replies are free."""
    replies = five_iterations()
    scripted_app, scripted, _ = _run(settings, replies)
    with scripted_app:
        expected = [(t.tool, t.args, t.result) for t in _rows(scripted_app, scripted.run_id, ToolCallRecord)]
    constrained = json.dumps({"name": "revenue", "arguments": {"company": "ACME"}})  # what the grammar lets it write
    fake = FakeLlama(constrained, _fenced("revenue", {"company": "BETA"}),
                     _fenced("ratio", {"numerator": 1200.0, "denominator": 800.0}),
                     "```json\n" + json.dumps([{"name": "multiply", "arguments": {"a": 1.5, "b": 2}},
                                               {"name": "revenue", "arguments": {"company": "ACME"}}]) + "\n```",
                     _fenced("ratio", {"numerator": 3.0, "denominator": 1}), FINAL, DECISION)
    register("agent-chain", lambda: AgentChain(first_tool_choice="required"))
    agent_graph.RUNS.clear()
    with Chainproof(settings, models=StaticModels(LocalLlamaChat(llama=fake))) as app:
        run = app.start("agent-chain", {})
        assert run.status == "completed"
        assert [(t.tool, t.args, t.result) for t in _rows(app, run.run_id, ToolCallRecord)] == expected
        first, second = fake.requests[0], fake.requests[1]
        names = [b["properties"]["name"]["const"] for b in first["response_format"]["schema"]["anyOf"]]
        assert names == ["revenue", "ratio", "multiply"] and "tool_choice" not in first
        assert "response_format" not in second and len(second["tools"]) == 3  # auto from iteration 2
        _replayed_identically(app, run.run_id, 6)


def test_a_decision_the_embedded_model_types_is_asked_by_its_keys_and_replays_identically(settings, monkeypatch):
    """The embedded model's typed answers are held to the schema by llama.cpp's grammar: it reads
    the keys, not the schema (prompt tokens), while the audit records the instruction as asked, so
    the replay, which binds no schema, asks the same and is identical (fresh-user QA: it diverged
    at the decide node when the instruction depended on the binding)."""
    from pathlib import Path

    from chainproof.agents.models import ConfiguredModels
    from chainproof.agents.structured import SCHEMA_INSTRUCTION

    fake = FakeLlama(*[_fenced("revenue", {"company": "ACME"}), FINAL, DECISION])
    monkeypatch.setattr(ConfiguredModels, "_build_local", lambda self, effort: LocalLlamaChat(llama=fake))
    monkeypatch.setattr(ConfiguredModels, "preflight", lambda self: None)  # no llama-cpp-python in the test venv
    local = settings.model.model_copy(update={"provider": "local"})
    register("agent-chain", AgentChain)
    agent_graph.RUNS.clear()
    with Chainproof(settings, models=ConfiguredModels(local, settings.local, Path("/x"))) as app:
        run = app.start("agent-chain", {})
        assert run.status == "completed"
        decide = fake.requests[-1]
        system = decide["messages"][0]["content"]
        assert "schema" in decide["response_format"] and system.startswith(
            "Reply with exactly one JSON object and nothing else, with the keys: ") and '"properties"' not in system
        recorded = next(m for m in _rows(app, run.run_id, ModelCallRecord) if m.node == "decide")
        assert recorded.messages[0]["content"].startswith(SCHEMA_INSTRUCTION)  # as asked, whichever model answers
        _replayed_identically(app, run.run_id, 1)
