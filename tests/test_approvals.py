"""Approvals that can be trusted: each decision applies to exactly one pending request, once, by an
allowed person, at the checkpoint the run paused at — and is on record. Refusals execute and
record nothing."""

from __future__ import annotations

import json

import pytest
from langgraph.types import Command
from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import ApprovalRecord, Step
from chainproof.cli import app as cli
from chainproof.graphs.approval import ApprovalRefused
from chainproof.graphs.approval_policy import ApprovalPolicy, CostAbove, FieldBelow, FieldEquals, SensitiveToolUsed
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit import toy_graph
from testkit.toy_graph import ParallelToy, ToyGraph

register("toy", ToyGraph)
register("toy-parallel", ParallelToy)

YES = json.dumps({"verdict": "yes", "reason": "the doubled square is large"})


def _model(*decisions: str) -> ScriptedChatModel:
    return ScriptedChatModel(replies=["The square.", "The double.", "Large.", *(decisions or (YES,))])


def _engine(settings: Settings, model: ScriptedChatModel | None = None, **kw) -> Chainproof:
    return Chainproof(settings, models=StaticModels(model or _model()), **kw)


def _decisions(app: Chainproof, run_id: str) -> list[tuple[str, str | None]]:
    return [(a.action, a.approver) for a in app.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"]


@pytest.fixture(autouse=True)
def _counters():
    toy_graph.CALLS.clear()
    toy_graph.PREPARED.clear()


# ------------------------------------------------------------------ binding
def test_unknown_or_stale_request_id_is_refused_and_nothing_runs_again(settings):
    policy = ApprovalPolicy(on_reject="replan")
    model = _model(YES, YES)
    with _engine(Settings(home=settings.home, approval_policies={"toy": policy}), model) as app:
        run = app.start("toy", {"x": 7})
        first = run.requests[0]["request_id"]
        again = app.decide(run.run_id, action="reject", approver="Lee", comment="numbers too thin")
        assert again.status == "paused"
        second = again.requests[0]["request_id"]
        assert second != first
        records, model_calls, tools = len(app.audit.records(run.run_id)), len(model.calls), dict(toy_graph.CALLS)
        for stale in ("no-such-request", first):
            with pytest.raises(ApprovalRefused, match=rf"pending: {second} \(Approve this decision\?\)"):
                app.decide(run.run_id, action="approve", approver="Dana", request_id=stale)
        assert len(app.audit.records(run.run_id)) == records  # nothing recorded
        assert len(model.calls) == model_calls and toy_graph.CALLS == tools  # nothing executed
        assert [r["request_id"] for r in app.pending_requests(run.run_id)] == [second]
        # the rejection reason reached the new decision's prompt
        assert "Rejected by Lee: numbers too thin" in model.calls[-1][-1].content
        done = app.decide(run.run_id, action="approve", approver="Dana", request_id=second)
        assert done.status == "completed" and done.state["approval"]["approver"] == "Dana"
        assert _decisions(app, run.run_id) == [("reject", "Lee"), ("approve", "Dana")]


def test_request_of_another_run_is_refused(settings):
    with _engine(settings, _model(YES)) as one, _engine(settings, _model(YES)) as two:
        a, b = one.start("toy", {"x": 1}), two.start("toy", {"x": 2})
        with pytest.raises(ApprovalRefused, match=rf"belongs to run {b.run_id}, not {a.run_id}"):
            one.decide(a.run_id, action="approve", approver="Dana", request_id=b.requests[0]["request_id"])
        assert _decisions(one, a.run_id) == [] and _decisions(one, b.run_id) == []


def test_second_decision_on_a_decided_request_is_refused(settings):
    with _engine(settings) as app:
        run = app.start("toy-parallel", {"x": 3})
        alpha, beta, gamma = (r["request_id"] for r in run.requests)
        app.decide(run.run_id, action="approve", approver="Ana", request_id=alpha)
        with pytest.raises(ApprovalRefused, match=rf"{alpha} was already decided: approve by Ana .*pending: {beta} "):
            app.decide(run.run_id, action="reject", approver="Bob", comment="no", request_id=alpha)
        assert _decisions(app, run.run_id) == [("approve", "Ana")]
        app.decide(run.run_id, action="approve", approver="Bob", request_id=beta)
        done = app.decide(run.run_id, action="approve", approver="Bob", request_id=gamma)
    # the branch that Ana answered kept Ana's answer; Bob's refused answer reached nothing
    assert {(a["subject"], a["action"], a["approver"]) for a in done.state["approvals"]} == {
        ("item:alpha", "approve", "Ana"), ("item:beta", "approve", "Bob"), ("item:gamma", "approve", "Bob")}


def test_decision_made_for_another_fork_is_refused(settings):
    with _engine(settings) as app:
        run = app.start("toy", {"x": 3})
        request = run.requests[0]
        # fork the paused thread (as time travel / update_state does) and run it to the pause again:
        # the same request id is pending, at another checkpoint
        with app._thread(run.run_id, "toy") as (graph, config, ctx):
            paused = graph.get_state(config)
            graph.update_state(paused.config, {"requests": [request]}, as_node="decide")
            graph.invoke(None, config, context=ctx, durability="sync")
            fork = graph.get_state(config)
        assert [i.value["request_id"] for i in fork.interrupts] == [request["request_id"]]
        assert fork.config["configurable"]["checkpoint_id"] != paused.config["configurable"]["checkpoint_id"]
        records = len(app.audit.records(run.run_id))
        with pytest.raises(ApprovalRefused, match="forked or its state updated since the pause.*pending: "):
            app.decide(run.run_id, action="approve", approver="Dana")
        assert len(app.audit.records(run.run_id)) == records and _decisions(app, run.run_id) == []


def test_answer_that_bypasses_the_record_is_refused_by_the_graph(settings):
    with _engine(settings) as app:
        run = app.start("toy", {"x": 3})
        with app._thread(run.run_id, "toy") as (graph, config, ctx):
            [pending] = graph.get_state(config).interrupts
            answer = {"request_id": run.requests[0]["request_id"], "action": "approve", "approver": "Sneaky"}
            with pytest.raises(ApprovalRefused, match="not recorded in the audit store"):
                graph.invoke(Command(resume={pending.id: answer}), config, context=ctx, durability="sync")
        assert "report" not in [s.node for s in app.audit.records_of(run.run_id, Step)]


# ------------------------------------------------------- parallel + resumes
def test_answering_one_parallel_request_leaves_the_others_paused_and_prepared_once(settings):
    with _engine(settings) as app:
        run = app.start("toy-parallel", {"x": 3})
        assert [r["subject"] for r in run.requests] == ["item:alpha", "item:beta", "item:gamma"]
        assert toy_graph.PREPARED == {"alpha": 1, "beta": 1, "gamma": 1}
        with pytest.raises(ApprovalRefused, match="3 pending requests; name one with --request"):
            app.decide(run.run_id, action="approve", approver="Ana")
        by_subject = {r["subject"]: r["request_id"] for r in run.requests}
        after = app.decide(run.run_id, action="approve", approver="Ana", request_id=by_subject["item:beta"])
        assert after.status == "paused"
        assert [r["request_id"] for r in after.requests] == [by_subject["item:alpha"], by_subject["item:gamma"]]
        assert toy_graph.PREPARED == {"alpha": 1, "beta": 1, "gamma": 1}
        assert [s.node for s in app.audit.records_of(run.run_id, Step)].count("approve") == 1


def test_pre_approval_work_runs_once_across_three_resumes(settings):
    model = _model()
    with _engine(settings, model) as app:
        run = app.start("toy-parallel", {"x": 3})
        calls = len(model.calls)
        statuses = [app.decide(run.run_id, action="approve", approver="Ana", request_id=r["request_id"]).status
                    for r in run.requests]
        steps = [s.node for s in app.audit.records_of(run.run_id, Step)]
    assert statuses == ["paused", "paused", "completed"]
    assert toy_graph.PREPARED == {"alpha": 1, "beta": 1, "gamma": 1}
    assert toy_graph.CALLS == {"count": 1, "double": 1}
    assert len(model.calls) == calls  # no model call repeated
    assert steps.count("decide") == 1 and steps.count("approve") == 3 and steps.count("report") == 1


def test_recorded_decision_that_never_reached_the_run_is_applied_by_resume(settings, monkeypatch):
    with _engine(settings) as app:
        run = app.start("toy", {"x": 3})

        def crash(*_a, **_k):
            raise KeyboardInterrupt("process stopped")

        monkeypatch.setattr(app, "_stream", crash)
        with pytest.raises(KeyboardInterrupt):
            app.decide(run.run_id, action="approve", approver="Ana", comment="fine")
        monkeypatch.undo()
        with pytest.raises(ApprovalRefused, match=rf"already decided: approve by Ana.*chainproof resume {run.run_id}"):
            app.decide(run.run_id, action="reject", approver="Bob", comment="no")
        done = app.resume(run.run_id)
    assert done.status == "completed" and done.state["approval"]["approver"] == "Ana"
    assert done.state["approval"]["comment"] == "fine"


# ------------------------------------------------------------ edit + policy
def test_edit_is_validated_against_the_schema_and_recorded_with_its_hash(settings):
    with _engine(settings) as app:
        run = app.start("toy", {"x": 3})
        with pytest.raises(ApprovalRefused, match=r"edited: .*verdict: Input should be 'yes' or 'no'"):
            app.decide(run.run_id, action="edit", approver="Dana", changes=["verdict=maybe"])
        with pytest.raises(ApprovalRefused, match="expected FIELD=VALUE"):
            app.decide(run.run_id, action="edit", approver="Dana", changes=["verdict"])
        assert _decisions(app, run.run_id) == []
        done = app.decide(run.run_id, action="edit", approver="Dana", changes=["verdict=no"], comment="too small")
        [record] = [a for a in app.audit.records_of(run.run_id, ApprovalRecord) if a.action == "edit"]
    edited = {"verdict": "no", "reason": "the doubled square is large"}
    assert done.state["decision"]["verdict"] == "no" and done.state["decision"]["_edited_by"] == "Dana"
    assert record.payload["decided_hash"] == sha256_hex(edited) != record.proposed_hash
    assert "verdict: no" in open(done.report_path).read()


def test_edit_from_the_command_line(settings, home):
    with _engine(settings) as app:
        run = app.start("toy", {"x": 3})
    bad = CliRunner().invoke(cli, ["edit", run.run_id, "--as", "Dana", "--set", "verdict=maybe"])
    assert bad.exit_code == 2 and "verdict: Input should be 'yes' or 'no'" in " ".join(bad.output.split())
    (home / "list.json").write_text("[1, 2]")
    not_object = CliRunner().invoke(cli, ["edit", run.run_id, "--as", "Dana", "--file", str(home / "list.json")])
    assert not_object.exit_code == 2 and "expected a JSON object, got list" in not_object.output
    (home / "proposal.json").write_text(json.dumps({"verdict": "yes", "reason": "no"}))
    too_short = CliRunner().invoke(cli, ["edit", run.run_id, "--as", "Dana", "--file", str(home / "proposal.json")])
    assert too_short.exit_code == 2 and "reason: String should have at least 3 characters" in " ".join(too_short.output.split())
    ok = CliRunner().invoke(cli, ["edit", run.run_id, "--as", "Dana", "--set", "verdict=no", "--comment", "smaller"])
    assert ok.exit_code == 0, ok.output
    shown = CliRunner().invoke(cli, ["show", run.run_id], env={"COLUMNS": "220"})
    assert "edit" in shown.output and "Dana" in shown.output and "smaller" in shown.output


def test_pending_lists_open_requests_across_runs(settings):
    with _engine(settings) as app, _engine(settings) as other:
        parallel, single = app.start("toy-parallel", {"x": 3}), other.start("toy", {"x": 2})
    shown = CliRunner().invoke(cli, ["pending"], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    for run in (parallel, single):
        for request in run.requests:
            assert request["request_id"] in shown.output
    assert "item:gamma" in shown.output and "policy: decide always needs approval" in shown.output


def test_disallowed_approver_is_refused(settings):
    policy = ApprovalPolicy(approvers=["Dana Approver", "role:credit-committee"])
    configured = Settings(home=settings.home, approval_policies={"toy": policy},
                          approver_roles={"Lee Chair": ["credit-committee"], "Mallory": ["intern"]})
    with _engine(configured) as app:
        run = app.start("toy", {"x": 3})
        with pytest.raises(ApprovalRefused, match=r"'Mallory' may not decide.*allowed: Dana Approver, role:credit-committee"):
            app.decide(run.run_id, action="approve", approver="Mallory")
        assert _decisions(app, run.run_id) == [] and app.pending_requests(run.run_id)
        done = app.decide(run.run_id, action="approve", approver="lee chair")  # by role, any case
    assert done.state["approval"]["approver"] == "lee chair"


@pytest.mark.parametrize(
    ("policy", "decision", "cost", "reasons"),
    [
        (ApprovalPolicy(nodes=[], conditions=[FieldEquals(field="verdict", value="yes")]), "no", None, []),
        (ApprovalPolicy(nodes=[], conditions=[FieldEquals(field="verdict", value="yes")]), "yes", None, ["verdict is 'yes'"]),
        (ApprovalPolicy(nodes=[], conditions=[FieldBelow(field="confidence", threshold=0.5)]), "no", None,
         ["confidence is missing or not a number (None); threshold 0.5"]),
        (ApprovalPolicy(nodes=[], conditions=[SensitiveToolUsed(tools=["double"])]), "no", None, ["sensitive tool(s) used: double"]),
        (ApprovalPolicy(nodes=[], conditions=[SensitiveToolUsed(tools=["unused"])]), "no", None, []),
        (ApprovalPolicy(nodes=[], conditions=[CostAbove(usd=1.0)]), "no", 0.25, []),
        (ApprovalPolicy(nodes=[], conditions=[CostAbove(usd=1.0)]), "no", 2.5, ["run cost 2.5000 USD is above 1.00 USD"]),
        (ApprovalPolicy(nodes=[], conditions=[CostAbove(usd=1.0)]), "no", None, ["run cost is not known, limit 1.00 USD"]),
    ],
)
def test_policy_conditions_add_an_approval_at_run_time(settings, policy, decision, cost, reasons):
    verdict = json.dumps({"verdict": decision, "reason": "a stated reason"})
    configured = Settings(home=settings.home, approval_policies={"toy": policy})
    with _engine(configured, _model(verdict), cost_of_run=lambda run_id: cost) as app:
        run = app.start("toy", {"x": 3})
    if reasons:
        assert run.status == "paused" and run.requests[0]["reasons"] == reasons
    else:
        assert run.status == "completed" and not run.state.get("approvals")


def test_policy_names_only_nodes_that_can_ask_for_approval():
    with pytest.raises(ValueError, match=r"nodes: \['report'\] cannot ask for approval; approval points are \['decide'\]"):
        ApprovalPolicy(nodes=["report"])


def test_rejection_ends_the_run_after_max_replans(settings):
    policy = ApprovalPolicy(on_reject="replan", max_replans=1)
    with _engine(Settings(home=settings.home, approval_policies={"toy": policy}), _model(YES, YES)) as app:
        run = app.start("toy", {"x": 3})
        second = app.decide(run.run_id, action="reject", approver="Lee", comment="first reason")
        done = app.decide(second.run_id, action="reject", approver="Lee", comment="second reason")
    assert done.status == "completed" and done.state["approval"]["comment"] == "second reason"
    assert [a["round"] for a in done.state["approvals"]] == [0, 1]


def test_who_may_approve_is_fixed_at_the_start_not_by_the_answering_shells_settings(home):
    strict = Settings(home=home, approval_policies={"toy": ApprovalPolicy(approvers=["Dana", "role:committee"])},
                      approver_roles={"Lee": ["committee"]})
    with Chainproof(strict, models=StaticModels(_model())) as app:
        run = app.start("toy", {"x": 7})
    # another shell, another chainproof.toml: no policy for the graph, and Eve made a committee member
    lax = Settings(home=home, approver_roles={"Eve": ["committee"]})
    with Chainproof(lax, models=StaticModels(_model())) as app:
        before = len(app.audit.records(run.run_id))
        with pytest.raises(ApprovalRefused, match="'Eve' may not decide"):
            app.decide(run.run_id, action="approve", approver="Eve")
        assert len(app.audit.records(run.run_id)) == before  # nothing recorded
        done = app.decide(run.run_id, action="approve", approver="Lee")  # a role recorded at the start
        assert done.status == "completed"
