"""Branching on results: a plan step's typed condition on an earlier finding decides whether it
runs; the path taken, the values read and why are recorded as a ``condition`` step, shown by
``chainproof show``, and replayed identically with zero model calls; a bad condition is a spec
error naming the field."""

from __future__ import annotations

import pytest

from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import Step
from chainproof.errors import PlanError
from chainproof.graphs.branching import BranchOutcome, Condition
from chainproof.graphs.registry import register
from chainproof.graphs.spec import PlanStep
from testkit import agent_graph
from testkit.branch_graph import BranchChain, branch_model


def _run(settings, company, spec=BranchChain):
    register("branch-chain", spec)
    app = Chainproof(settings, models=StaticModels(branch_model()))
    return app, app.start("branch-chain", {"company": company})


def _branches(app, run_id):
    return [BranchOutcome.model_validate(s.output) for s in sorted(app.audit.records_of(run_id, Step),
                                                                   key=lambda s: s.step_no) if s.kind == "branch"]


@pytest.mark.parametrize(("company", "ran", "skipped"), [("BETA", "deep_dive", "growth"), ("ACME", "growth", "deep_dive")])
def test_each_branch_is_taken_on_the_tool_result_recorded_with_its_reason_and_replayed(settings, company, ran, skipped):
    agent_graph.REVENUE["BETA"] = 800.0
    app, run = _run(settings, company)
    with app:
        assert run.status == "completed"
        assert list(run.state["findings"]) == ["revenue", ran, "wrap_up"]
        value = agent_graph.REVENUE[company]
        first, second = _branches(app, run.run_id)
        assert (first.plan_step, first.taken, first.read) == ("deep_dive", ran == "deep_dive", {"revenue.revenue": value})
        assert (second.plan_step, second.taken) == ("growth", ran == "growth")
        assert first.reason == f"revenue.revenue = {value!r}, so revenue.revenue < 1000 is " \
                               f"{'true' if ran == 'deep_dive' else 'false'}"
        assert [b.skipped for b in (first, second)] == ([[], ["growth"]] if ran == "deep_dive" else [["deep_dive"], []])
        titles = [s.title for s in sorted(app.audit.records_of(run.run_id, Step), key=lambda s: s.step_no)]
        assert f"Branch: skip {'Growth note' if ran == 'deep_dive' else 'Deep dive'}" in titles
        assert run.state["done_count"] == 3  # revenue, the branch taken, wrap-up
        replay = app.replay(run.run_id)
        assert replay.outcome == "identical", [(s.step_no, s.differences) for s in replay.steps if s.differences]
        assert replay.model_calls_served == 3  # the reasoning steps and the decision: the branches call no model
        branch_steps = [s for s in replay.steps if s.node == "condition"]
        assert len(branch_steps) == 2 and all(s.status == "identical" for s in branch_steps)


def test_show_prints_the_path_taken_and_why(settings, capsys):
    from typer.testing import CliRunner

    from chainproof.cli import app as cli

    app, run = _run(settings, "BETA")
    app.close()
    result = CliRunner().invoke(cli, ["show", run.run_id], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "branch at step 4: run deep_dive — revenue.revenue = 800.0, so revenue.revenue < 1000 is true" in result.output
    assert "branch at step 7: skip growth — revenue.revenue = 800.0, so revenue.revenue >= 1000 is false (skipped: growth)" in result.output


def test_the_spec_overrides_the_choice_and_the_override_is_recorded_as_its_own(settings):
    app, run = _run(settings, "BETA", lambda: BranchChain(override=True))
    with app:
        assert list(run.state["findings"]) == ["revenue", "wrap_up"]  # deep dive and growth skipped
        (only,) = _branches(app, run.run_id)
        assert (only.by, only.taken, only.skipped) == ("spec", False, ["deep_dive", "growth"])
        assert only.reason.startswith("the analyst asked for the short path (the condition said: revenue.revenue")
        assert app.replay(run.run_id).outcome == "identical"


def test_a_condition_on_an_unknown_finding_or_field_is_a_spec_error_naming_the_field(settings):
    bad_finding = lambda: BranchChain(condition=Condition(finding="revnue", field="revenue", op="<", value=1))  # noqa: E731
    register("branch-chain", bad_finding)
    with Chainproof(settings, models=StaticModels(branch_model())) as app:
        with pytest.raises(PlanError, match=r"plan step 'deep_dive': when.finding 'revnue' is not an earlier plan step; "
                                            r"the earlier ones are \['revenue'\]"):
            app.start("branch-chain", {"company": "BETA"})
    register("branch-chain", lambda: BranchChain(condition=Condition(finding="revenue", field="sales", op="<", value=1)))
    with Chainproof(settings, models=StaticModels(branch_model())) as app:
        with pytest.raises(PlanError, match=r"plan step 'deep_dive': when.field 'sales' is not a field of finding "
                                            r"'revenue'; its fields are \['summary', 'company', 'revenue'\]"):
            app.start("branch-chain", {"company": "BETA"})
    with pytest.raises(ValueError, match="value: op '<' compares numbers; got 'high'"):
        Condition(finding="revenue", field="revenue", op="<", value="high")
    with pytest.raises(ValueError, match="when.finding names the step itself"):
        PlanStep(id="x", title="X", kind="reason", instruction="i", when=Condition(finding="x", field="summary",
                                                                                   op="present"))
