"""Tools tagged ``requires_approval`` in agent steps: the call pauses before it runs, bound to (run,
checkpoint, tool_call_id, hash of the arguments); a person approves, rejects (the model sees the
reason) or edits the arguments (checked against the tool's schema), from any process; replay
reproduces it all with zero model calls and no tool run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

import chainproof.cli as cli
from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import ApprovalRecord, Step, ToolCallRecord
from chainproof.graphs.approval import ApprovalRefused
from chainproof.graphs.registry import register
from chainproof.types import ApprovalPause
from testkit import agent_graph
from testkit.agent_graph import ApprovalAgentChain, call

register("agent-approval", ApprovalAgentChain)

PAID = "Paid ACME 1.2 USD; the ratio is 1.2."
DECISION = json.dumps({"answer": PAID})
ASK = call(("transfer", {"account": "ACME", "amount": 12000.0}), ("ratio", {"numerator": 1200.0, "denominator": 1000.0}))

EDITOR = textwrap.dedent("""
    import json, sys
    from chainproof.agents.models import StaticModels
    from chainproof.agents.scripted import ScriptedChatModel
    from chainproof.app import Chainproof
    from chainproof.graphs.registry import register
    from testkit import agent_graph
    from testkit.agent_graph import ApprovalAgentChain
    register("agent-approval", ApprovalAgentChain)
    run_id, final, decision = sys.argv[1:4]
    model = ScriptedChatModel(replies=[final, decision])
    with Chainproof(models=StaticModels(model)) as app:
        r = app.decide(run_id, action="edit", approver="Dana Approver", changes=["amount=1.2"], comment="in thousands")
    print(json.dumps({"status": r.status, "runs": agent_graph.RUNS,
                      "shown": [m.content for m in model.calls[0] if type(m).__name__ == "ToolMessage"]}))
""")


def _start(settings, replies):
    agent_graph.RUNS.clear()
    app = Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=replies)))
    return app, app.start("agent-approval", {})


def _replay(app, run_id, tool_calls_served, model_calls_served):
    agent_graph.RUNS.clear()
    app.models = StaticModels(ScriptedChatModel(replies=[]))  # any model call would fail the replay
    replay = app.replay(run_id)
    assert replay.outcome == "identical", [(s.step_no, s.differences) for s in replay.steps if s.differences]
    assert agent_graph.RUNS == {}
    assert (replay.tool_calls_served, replay.model_calls_served) == (tool_calls_served, model_calls_served)


def test_a_tool_call_paused_is_edited_in_another_process_then_runs_with_the_edited_arguments(settings, home, monkeypatch):
    app, run = _start(settings, [call(("revenue", {"company": "ACME"})), ASK])
    with app:
        assert run.status == "paused"
        [pause] = run.pauses
        assert isinstance(pause, ApprovalPause) and pause.subject == "tool:transfer:call_1_0"
        assert pause.proposed == {"account": "ACME", "amount": 12000.0}
        assert pause.proposed_hash == sha256_hex({"account": "ACME", "amount": 12000.0})
        assert agent_graph.RUNS == {"revenue": 1}  # neither the transfer nor the ratio asked with it ran
        held = [s for s in app.audit.records_of(run.run_id, Step) if s.node == "agent"][-1]
        assert held.output["tool_calls"] == [{"id": "call_1_0", "tool": "transfer", "status": "awaiting_approval"},
                                             {"id": "call_1_1", "tool": "ratio", "status": "held"}]
        monkeypatch.setattr(cli.console, "_width", 250)
        listed = CliRunner().invoke(cli.app, ["pending"])
        assert listed.exit_code == 0 and pause.request_id[:8] in listed.output and "transfer" in listed.output
        with pytest.raises(ApprovalRefused, match=r"edited: arguments of tool 'transfer': amount: Input should be a "
                                                  r"valid number.*; nothing was decided"):
            app.decide(run.run_id, action="edit", approver="Dana Approver", changes=["amount=lots"])
        with pytest.raises(ApprovalRefused, match="memo: not an argument of the tool"):
            app.decide(run.run_id, action="edit", approver="Dana Approver", changes=["memo=x"])
        assert [a.action for a in app.audit.records_of(run.run_id, ApprovalRecord)] == ["requested"]

    child = subprocess.run([sys.executable, "-c", EDITOR, run.run_id, PAID, DECISION], capture_output=True,
                           text=True, timeout=120, env={**os.environ, "CHAINPROOF_HOME": str(home)})
    assert child.returncode == 0, child.stderr
    out = json.loads(child.stdout)
    assert out["status"] == "completed" and out["runs"] == {"transfer": 1, "ratio": 1}
    assert out["shown"][-2] == ('Dana Approver changed the arguments to {"account":"ACME","amount":1.2}; '
                                'result: {"account":"ACME","sent":1.2}')

    with Chainproof(settings) as app:
        tools = app.audit.records_of(run.run_id, ToolCallRecord)
        assert [(t.step_no, t.tool, t.args, t.result) for t in tools] == [
            (2, "revenue", {"company": "ACME"}, {"company": "ACME", "revenue": 1200.0}),
            (5, "transfer", {"account": "ACME", "amount": 1.2}, {"account": "ACME", "sent": 1.2}),
            (5, "ratio", {"numerator": 1200.0, "denominator": 1000.0}, {"ratio": 1.2})]
        steps = [(s.step_no, s.node, s.title) for s in app.audit.records_of(run.run_id, Step)]
        assert steps[2:5] == [(3, "agent", "Pay the supplier: iteration 2"),
                              (4, "approve", "Human decision on tool:transfer:call_1_0: edit"),
                              (5, "agent", "Pay the supplier: iteration 2, after approval")]
        decided = [a for a in app.audit.records_of(run.run_id, ApprovalRecord) if a.action == "edit"]
        assert decided[0].approver == "Dana Approver" and decided[0].payload["edited"] == {"account": "ACME",
                                                                                          "amount": 1.2}
        assert decided[0].proposed_hash == pause.proposed_hash  # bound to the arguments the model asked for
        _replay(app, run.run_id, 3, 4)


def test_a_rejected_call_never_runs_and_the_model_sees_why(settings):
    model = ScriptedChatModel(replies=[ASK, "I did not pay: the transfer was refused.", DECISION])
    agent_graph.RUNS.clear()
    with Chainproof(settings, models=StaticModels(model)) as app:
        run = app.start("agent-approval", {})
        with pytest.raises(ApprovalRefused, match="comment: a rejection needs a reason"):
            app.decide(run.run_id, action="reject", approver="Dana Approver")
        done = app.decide(run.run_id, action="reject", approver="Dana Approver", comment="not before the audit")
        assert done.status == "completed" and agent_graph.RUNS == {"ratio": 1}
        shown = [m for m in model.calls[1] if type(m).__name__ == "ToolMessage"]
        assert shown[0].status == "error"
        assert shown[0].content == "Error: Dana Approver did not allow this call: not before the audit"
        tools = app.audit.records_of(run.run_id, ToolCallRecord)
        assert [(t.tool, t.error) for t in tools] == [
            ("transfer", "RejectedToolCall: by Dana Approver: not before the audit"), ("ratio", None)]
        assert done.state["decision"]["answer"] == PAID  # the final decision was not asked for approval
        assert done.state.get("approval") is None and not done.state.get("replan")
        _replay(app, run.run_id, 1, 3)


def test_an_approved_call_runs_as_asked_and_a_decision_is_bound_to_its_request(settings):
    app, run = _start(settings, [ASK, PAID, DECISION])
    with app:
        with pytest.raises(ApprovalRefused, match="is not pending"):
            app.decide(run.run_id, action="approve", approver="Dana Approver", request_id="0" * 32)
        done = app.decide(run.run_id, action="approve", approver="Dana Approver")
        assert done.status == "completed" and agent_graph.RUNS == {"transfer": 1, "ratio": 1}
        [transfer, _] = app.audit.records_of(run.run_id, ToolCallRecord)
        assert transfer.args == {"account": "ACME", "amount": 12000.0}
        with pytest.raises(ApprovalRefused, match="has no pending approval request"):
            app.decide(run.run_id, action="approve", approver="Dana Approver")
        _replay(app, run.run_id, 2, 3)
