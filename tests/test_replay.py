"""Replay: a recorded run is reproduced step for step from the record with zero model calls and no
tool side effects; a code change is reported at the first step it changes; the original run is
never written."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from chainproof.agents.models import ConfiguredModels, StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_hashing import Redactor
from chainproof.checkpoints.audit_schema import ToolCallRecord
from chainproof.cli import app as cli
from chainproof.graphs.registry import register
from chainproof.graphs.replay import RecordedCalls, ReplayDivergence
from testkit import toy_graph
from testkit.toy_graph import ToyGraph
from testkit.toy_models import ModelMustNotBeCalled

GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})



class ToyWithNewDecisionPrompt(ToyGraph):
    """The toy graph after a code change: the decision prompt is reworded."""

    def decision_prompt(self, view):
        return "Give the verdict, briefly."


class ToyWithNewInstruction(ToyGraph):
    """The toy graph after a code change: the second step's instruction is reworded."""

    def plan(self, inputs):
        steps = super().plan(inputs)
        steps[1] = steps[1].model_copy(update={"instruction": "State the doubled value."})
        return steps


@pytest.fixture(autouse=True)
def toy_registered():
    register("toy", ToyGraph)
    yield
    register("toy", ToyGraph)


def _recorded(app: Chainproof, decide: bool = True) -> str:
    app.models = StaticModels(ScriptedChatModel(replies=["The square is 49.", "The double is 98.", "It is large.", GOOD]))
    run = app.start("toy", {"x": 7})
    if decide:
        app.decide(run.run_id, action="approve", approver="Dana", comment="fine")
    return run.run_id


def test_replay_is_identical_with_zero_model_calls_and_no_tool_runs(settings):
    with Chainproof(settings) as app:
        run_id = _recorded(app)
        before = [(type(r).__tablename__, r.id, r.record_hash) for r in app.audit.records(run_id)]
        report_file = settings.resolved_reports_dir / f"{run_id}.md"
        report_text = report_file.read_text()
        toy_graph.CALLS.clear()
        app.models = StaticModels(ModelMustNotBeCalled())
        replay = app.replay(run_id)
        after = [(type(r).__tablename__, r.id, r.record_hash) for r in app.audit.records(run_id)]
    assert replay.outcome == "identical", [(s.step_no, s.differences) for s in replay.steps]
    assert [s.status for s in replay.steps] == ["identical"] * 10
    assert (replay.model_calls_served, replay.tool_calls_served) == (4, 2)
    assert toy_graph.CALLS == {}  # no tool ran
    assert after == before  # the original run was not written
    assert report_file.read_text() == report_text and list(settings.resolved_reports_dir.iterdir()) == [report_file]


def test_replay_of_a_paused_run_stops_at_the_same_approval(settings):
    with Chainproof(settings) as app:
        run_id = _recorded(app, decide=False)
        replay = app.replay(run_id)
    assert replay.outcome == "identical" and [s.node for s in replay.steps][-1] == "decide"


def _replay_after_change(settings, changed_spec):
    """Record a run of the toy graph, swap in ``changed_spec`` (the code change), replay."""
    with Chainproof(settings) as app:
        run_id = _recorded(app)
        register("toy", changed_spec)
        return app.replay(run_id)


def test_a_reworded_prompt_is_the_first_divergence(settings):
    replay = _replay_after_change(settings, ToyWithNewDecisionPrompt)
    first = replay.first_divergence
    assert replay.outcome == "divergent"
    assert [s.status for s in replay.steps[:7]] == ["identical"] * 7
    assert (first.step_no, first.node) == (8, "decide")
    assert "prompt_hash" in first.differences[0] and "message 3 (user) differs at character" in first.differences[0]
    assert "Give the verdict, briefly." in first.differences[0]
    assert {s.status for s in replay.steps[8:]} == {"not-replayed"}


def test_a_reworded_plan_step_diverges_at_the_plan(settings):
    replay = _replay_after_change(settings, ToyWithNewInstruction)
    first = replay.first_divergence
    assert (first.step_no, first.node) == (1, "plan") and first.differences == ["steps.output: keys ['plan']"]


def test_served_tool_calls_check_name_and_arguments(settings):
    with Chainproof(settings) as app:
        run_id = _recorded(app)
        tools = app.audit.records_of(run_id, ToolCallRecord)
    source = RecordedCalls([], tools, Redactor())
    with pytest.raises(ReplayDivergence, match=r"tool square arguments differ: keys \['x'\]") as caught:
        source.tool_result("square", {"x": 8})
    assert caught.value.step_no == tools[0].step_no
    with pytest.raises(ReplayDivergence, match="tool: recorded double, replayed square"):
        source.tool_result("square", {"squared": {"x": 7, "squared": 49}})
    with pytest.raises(ReplayDivergence, match="an extra tool call"):
        source.tool_result("square", {"x": 7})
    assert source.tool_calls_served == 0


def test_cli_replay_reports_identical_then_divergent_with_exit_codes(settings, monkeypatch):
    with Chainproof(settings) as app:
        run_id = _recorded(app)

    def refuse(*_args, **_kwargs):
        raise AssertionError("replay built a model")

    monkeypatch.setattr(ConfiguredModels, "chat", refuse)
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    same = runner.invoke(cli, ["replay", run_id])
    assert same.exit_code == 0, same.output
    assert "identical: all 10 steps reproduced exactly" in same.output and "0 model calls made" in same.output
    one = runner.invoke(cli, ["replay", run_id, "--step", "6"])
    assert one.exit_code == 0 and "recorded · model_calls" in one.output and "replayed · model_calls" in one.output
    register("toy", ToyWithNewDecisionPrompt)
    changed = runner.invoke(cli, ["replay", run_id])
    assert changed.exit_code == 1 and "divergent at step 8 (decide: Decide and request approval)" in changed.output
    bad_step = runner.invoke(cli, ["replay", run_id, "--step", "99"])
    assert bad_step.exit_code == 2 and "has steps 1..10, not 99" in bad_step.output
