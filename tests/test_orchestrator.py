"""The generic orchestrator on a toy graph with scripted models: path, pause, resume, audit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof, RunNotFound
from chainproof.checkpoints.audit_schema import ApprovalRecord, ModelCallRecord, Step, ToolCallRecord
from chainproof.errors import GraphNotFound, InputError
from chainproof.graphs.approval import ApprovalRefused
from chainproof.graphs.registry import register
from testkit import toy_graph
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)

GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})


def _model(decision_replies=(GOOD,)):
    return ScriptedChatModel(replies=["The square is 49.", "The double is 98.", "It is large.", *decision_replies])


def _app(settings, model):
    return Chainproof(settings, models=StaticModels(model))


def test_run_pauses_for_approval_then_completes_with_named_approver(settings):
    toy_graph.CALLS.clear()
    model = _model()
    events = []
    with _app(settings, model) as app:
        result = app.start("toy", {"x": 7}, started_by="ana", on_progress=events.append)
        assert result.status == "paused"
        [request] = result.requests
        assert request["proposed"] == {"verdict": "yes", "reason": "the doubled square is 98"}
        assert [e["node"] for e in events] == ["plan", "act", "observe", "act", "observe", "act", "observe", "decide"]
        done = app.decide(result.run_id, action="approve", approver="Dana Reviewer", comment="ok")
        assert done.status == "completed"
        report = open(done.report_path).read()
        assert "approved by: Dana Reviewer" in report
        steps = app.audit.records_of(result.run_id, Step)
        assert [s.step_no for s in steps] == list(range(1, 11))
        assert [s.node for s in steps][-3:] == ["decide", "approve", "report"]
        tools = app.audit.records_of(result.run_id, ToolCallRecord)
        assert [(t.tool, t.result) for t in tools] == [("square", {"x": 7, "squared": 49}), ("double", {"doubled": 98})]
        calls = app.audit.records_of(result.run_id, ModelCallRecord)
        assert len(calls) == 4 and all(c.input_tokens > 0 for c in calls)
        approvals = app.audit.records_of(result.run_id, ApprovalRecord)
        assert [(a.action, a.approver) for a in approvals] == [("requested", None), ("approve", "Dana Reviewer")]
        assert approvals[0].proposed_hash == approvals[1].proposed_hash
        assert app.audit.run_status(result.run_id) == "completed"
    # each tool ran once even though the run paused and resumed
    assert toy_graph.CALLS == {"count": 1, "double": 1}
    # the prompt of a later step carries the goal and summary, not the whole history
    last_observe_prompt = model.calls[1][-1].content
    assert "Goal: Decide whether 7" in last_observe_prompt and "The square is 49." in last_observe_prompt


def test_effort_per_step_is_recorded(settings):
    with _app(settings, _model()) as app:
        result = app.start("toy", {"x": 3})
        steps = {(s.node, s.title): (s.effort, s.effort_reason) for s in app.audit.records_of(result.run_id, Step)}
    assert steps[("observe", "Interpret Square x")] == ("low", "static: set on the plan step")
    # no static effort: the routing policy reads the instruction ("Say what the double is.": short, no cues)
    assert steps[("observe", "Interpret Double it")] == ("low", "complexity 0.02 (words 0.02) -> low")
    assert steps[("act", "Think")] == ("high", "static: set on the plan step")


def test_malformed_decision_is_retried_with_the_error_then_accepted(settings):
    model = _model(("I think yes!", json.dumps({"verdict": "maybe", "reason": "hmm"}), GOOD))
    with _app(settings, model) as app:
        result = app.start("toy", {"x": 2})
        assert result.requests[0]["proposed"]["verdict"] == "yes"
        decide = [s for s in app.audit.records_of(result.run_id, Step) if s.node == "decide"][0]
    assert decide.output["fallback"] is False
    assert len(decide.output["errors"]) == 2 and "verdict" in decide.output["errors"][1]
    assert "not valid" in model.calls[-1][-1].content  # the error was shown to the model


def test_decision_falls_back_after_bounded_attempts(settings):
    with _app(settings, _model(("nope", "nope", "nope"))) as app:
        result = app.start("toy", {"x": 2})
        proposed = result.requests[0]["proposed"]
        decide = [s for s in app.audit.records_of(result.run_id, Step) if s.node == "decide"][0]
    assert proposed["verdict"] == "no" and proposed["reason"].startswith("fallback")
    assert decide.output["fallback"] is True and len(decide.output["errors"]) == 3


def test_refused_answers_execute_and_record_nothing(settings):
    with _app(settings, _model()) as app:
        run = app.start("toy", {"x": 5})
        before = len(app.audit.records(run.run_id))
        with pytest.raises(ApprovalRefused, match="not pending.*pending:"):
            app.decide(run.run_id, action="approve", approver="x", request_id="stale-id")
        with pytest.raises(ApprovalRefused, match="needs a reason"):
            app.decide(run.run_id, action="reject", approver="x")
        with pytest.raises(ValueError, match="approver"):
            app.decide(run.run_id, action="approve", approver="  ")
        assert len(app.audit.records(run.run_id)) == before
        assert app.pending_requests(run.run_id)[0]["request_id"] == run.requests[0]["request_id"]
        done = app.decide(run.run_id, action="reject", approver="Lee", comment="numbers too thin")
        assert done.state["approval"]["action"] == "reject"
        with pytest.raises(ApprovalRefused, match="no pending approval"):
            app.decide(run.run_id, action="approve", approver="Lee")


def test_bad_inputs_and_unknown_runs_are_clear_errors(settings):
    with _app(settings, _model()) as app:
        with pytest.raises(InputError, match="x: expected an integer"):
            app.start("toy", {"x": "seven"})
        assert app.audit.list_runs() == []
        with pytest.raises(GraphNotFound, match="unknown graph 'nope'.*toy"):
            app.start("nope", {})
        with pytest.raises(RunNotFound, match="no run 'missing'"):
            app.decide("missing", action="approve", approver="x")


def test_approval_from_another_process(settings, home):
    with _app(settings, _model()) as app:
        run = app.start("toy", {"x": 4})
    script = textwrap.dedent(f"""
        from chainproof.graphs.registry import register
        from chainproof.app import Chainproof
        from chainproof.settings import Settings
        from testkit.toy_graph import ToyGraph
        register("toy", ToyGraph)
        with Chainproof(Settings(home={str(home)!r})) as app:
            r = app.decide({run.run_id!r}, action="approve", approver="Other Process")
            print(r.status, r.report_path)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=str(toy_graph.__file__).rsplit("/tests/", 1)[0], timeout=120)
    assert out.returncode == 0, out.stderr
    status, path = out.stdout.split()
    assert status == "completed"
    assert "approved by: Other Process" in open(path).read()


def test_a_tool_that_raises_fails_the_run_naming_the_tool(settings):
    from langchain_core.tools import StructuredTool

    from chainproof.errors import RunError, ToolFailed

    def broken(x: int) -> dict:
        raise ValueError("supplier feed unavailable")

    class BrokenToy(ToyGraph):
        def tools(self):
            return [StructuredTool.from_function(broken, name="square", description="square x"), *super().tools()[1:]]

    register("toy-broken", BrokenToy)
    with _app(settings, _model()) as app:
        with pytest.raises(ToolFailed, match=r"tool square \(plan step square\) failed: ValueError: supplier feed") as err:
            app.start("toy-broken", {"x": 3})
        assert isinstance(err.value, RunError) and err.value.exit_code == 1
        (run, status, _), = app.audit.list_runs()
        assert status == "failed"
