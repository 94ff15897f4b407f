"""Goal reviews every N steps, step budgets and bounded state on long chains (scripted models)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import Step
from chainproof.graphs.registry import register
from testkit import long_graph
from testkit.long_graph import LongChain, long_model

register("long", LongChain)


def _app(settings, reviews=None):
    return Chainproof(settings, models=StaticModels(long_model(reviews)))


def _reviews(app, run_id):
    return [s for s in app.audit.records_of(run_id, Step) if s.node == "review"]


def test_sixty_step_chain_reviews_every_five_steps_and_completes(settings):
    long_graph.TICKS.clear()
    with _app(settings) as app:
        run = app.start("long", {"n": 60})
        reviews = _reviews(app, run.run_id)
    assert run.status == "completed"
    assert all(long_graph.TICKS[f"s{i}"] == 1 for i in range(1, 61)) and len(long_graph.TICKS) == 60
    # after steps 5, 10, ..., 55 (not after 60: nothing is left to review)
    assert [r.inputs["done_count"] for r in reviews] == list(range(5, 60, 5))
    assert all(r.output["decision"] == "continue" and r.effort == "medium" for r in reviews)
    assert all(r.input_tokens > 0 for r in reviews)


def test_replan_replaces_the_remaining_plan(settings):
    long_graph.TICKS.clear()
    replan = json.dumps({"decision": "replan", "reason": "skip ahead", "drift": "slight",
                         "revised_plan": [{"id": "s9"}, {"id": "wrap_up", "instruction": "Summarise the walk."}]})
    with _app(settings, [replan]) as app:
        run = app.start("long", {"n": 12})
        review = _reviews(app, run.run_id)[0]
    assert run.status == "completed"
    assert sorted(long_graph.TICKS) == ["s1", "s2", "s3", "s4", "s5", "s9"]  # s6-s8, s10-s12 dropped
    assert review.output["decision"] == "replan" and [p["id"] for p in review.output["revised_plan"]] == ["s9", "wrap_up"]
    assert "wrap_up" in run.state["findings"] and run.state["done_count"] == 7


def test_terminate_ends_the_run_with_the_best_answer_available_and_a_report_that_says_why(settings):
    long_graph.TICKS.clear()
    stop = json.dumps({"decision": "terminate", "reason": "the goal is already met", "drift": "none"})
    with _app(settings, [stop]) as app:
        run = app.start("long", {"n": 20})
        steps = sorted(app.audit.records_of(run.run_id, Step), key=lambda s: s.step_no)
    assert run.status == "completed" and len(long_graph.TICKS) == 5
    assert [s.node for s in steps][-3:] == ["review", "decide", "report"]  # an answer, never silence
    decide = steps[-2]
    assert decide.inputs["termination"] == {"reason": "the goal is already met", "at_step": 5, "by": "review"}
    assert run.state["decision"]["verdict"] == "done"
    report = open(run.report_path).read()
    assert "Terminated after 5 plan steps" in report and "the goal is already met" in report
    assert "## Best answer available" in report and "**verdict**: done" in report


def test_malformed_review_is_retried_then_recovered_or_defaults_to_continue(settings):
    bad_enum = json.dumps({"decision": "pause", "reason": "x y z", "drift": "none"})
    replan_without_plan = json.dumps({"decision": "replan", "reason": "change", "drift": "a bit"})
    stop = json.dumps({"decision": "terminate", "reason": "enough", "drift": "none"})
    with _app(settings, ["not json", bad_enum, stop]) as app:  # third attempt is valid
        run = app.start("long", {"n": 8})
        review = _reviews(app, run.run_id)[0]
    assert review.output["decision"] == "terminate" and len(review.output["errors"]) == 2
    assert "decision" in review.output["errors"][1]
    with _app(settings, ["nope", replan_without_plan, '{"decision": "replan", "reason": "restructure", "drift": "some", "revised_plan": [{"id": "zz"}]}']) as app:
        run = app.start("long", {"n": 8})
        review = _reviews(app, run.run_id)[0]
    assert run.status == "completed" and run.state["done_count"] == 8  # the default kept the plan
    assert review.output["fallback"] is True and review.output["decision"] == "continue"
    assert "revised_plan" in review.output["errors"][1] and "'zz' is not a step of the plan" in review.output["errors"][2]


def test_budget_stop_then_resume_with_a_larger_budget_runs_each_step_once(settings):
    long_graph.TICKS.clear()
    with _app(settings) as app:
        run = app.start("long", {"n": 60}, max_steps=25)
        assert run.status == "paused" and run.budget_stop["max_steps"] == 25 and run.requests == []
        assert run.state["done_count"] == 25 and len(long_graph.TICKS) == 25
        assert app.pending_requests(run.run_id) == []  # a budget stop is not an approval request
        with pytest.raises(ValueError, match="max_steps.*larger budget"):
            app.resume(run.run_id, max_steps=20)
    with _app(settings) as app:  # as a new process would
        done = app.resume(run.run_id, max_steps=60, by="Ops")
        budget_review = [r for r in _reviews(app, run.run_id) if r.title.startswith("Budget review")]
    assert done.status == "completed" and done.state["done_count"] == 60
    assert all(long_graph.TICKS[f"s{i}"] == 1 for i in range(1, 61))
    assert budget_review[0].output["reason"].startswith("budget reached") and budget_review[0].output["by"] == "Ops"


@pytest.mark.parametrize(("policy", "done"), [("terminate", 10), ("extend", 60)])
def test_budget_policies_terminate_or_extend(settings, policy, done):
    with _app(settings) as app:
        run = app.start("long", {"n": 60}, max_steps=10, on_budget=policy, review_every=0)
    assert run.status == "completed" and run.state["done_count"] == (10 if policy == "terminate" else 40)
    if policy == "terminate":
        assert "budget reached" in open(run.report_path).read()
    else:  # 10 + 3 extensions of 10, then the policy terminates
        assert run.state["budget"]["extensions"] == 3 and run.state["termination"]["by"] == "budget"


def test_checkpoint_size_stays_flat_as_the_chain_grows(settings):
    with _app(settings) as app:
        run = app.start("long", {"n": 120})
    db = sqlite3.connect(settings.resolved_checkpoint_url)
    sizes = [len(r[0]) for r in db.execute(
        "SELECT checkpoint FROM checkpoints WHERE thread_id = ? ORDER BY checkpoint_id", (run.run_id,))]
    early, late = sizes[20:40], sizes[-40:-20]
    assert max(late) <= max(early) * 1.15, (max(early), max(late))
    assert max(sizes) < 8 * 1024


def test_bad_budget_settings_name_the_field(settings):
    with _app(settings) as app:
        with pytest.raises(ValueError, match="max_steps"):
            app.start("long", {"n": 3}, max_steps=0)
        with pytest.raises(ValueError, match="on_budget"):
            app.start("long", {"n": 3}, on_budget="explode")


def test_cli_shows_reviews_and_resumes_a_budget_stop(settings, monkeypatch):
    from typer.testing import CliRunner

    import chainproof.cli as cli

    monkeypatch.setattr(cli, "_engine", lambda: Chainproof(settings, models=StaticModels(long_model())))
    with _app(settings) as app:
        run = app.start("long", {"n": 12}, max_steps=6)
    runner = CliRunner()
    shown = runner.invoke(cli.app, ["show", run.run_id])
    assert shown.exit_code == 0 and "review at step" in shown.output and "continue" in shown.output
    refused = runner.invoke(cli.app, ["resume", run.run_id])
    assert refused.exit_code == 2 and "--max-steps 12" in refused.output
    resumed = runner.invoke(cli.app, ["resume", run.run_id, "--max-steps", "12", "--as", "Ops"])
    assert resumed.exit_code == 0, resumed.output
    assert "completed" in resumed.output


def test_replay_of_a_run_with_reviews_and_a_budget_stop_is_identical(settings):
    replan = json.dumps({"decision": "replan", "reason": "skip ahead", "drift": "slight",
                         "revised_plan": [{"id": "s9"}, {"id": "s10"}, {"id": "s11"}, {"id": "s12"}]})
    with _app(settings, [replan]) as app:
        run = app.start("long", {"n": 14}, max_steps=7)
        assert run.budget_stop is not None
        app.resume(run.run_id, max_steps=20, by="Ops")
        report = app.replay(run.run_id)
    assert report.outcome == "identical", [s for s in report.steps if s.status != "identical"][:1]
    assert report.model_calls_served > 0


def test_task_writes_of_finished_super_steps_are_not_kept(settings):
    with _app(settings) as app:
        run = app.start("long", {"n": 30}, max_steps=10)  # stops at its budget: an interrupt is pending
        db = sqlite3.connect(settings.resolved_checkpoint_url)
        kept = {r[0] for r in db.execute("SELECT DISTINCT checkpoint_id FROM writes WHERE thread_id = ?", (run.run_id,))}
        latest = db.execute("SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? ORDER BY checkpoint_id DESC LIMIT 1",
                            (run.run_id,)).fetchone()[0]
        # the paused checkpoint's pending writes (its interrupt) remain; at most one predecessor's
        # too, when LangGraph's background put_writes lands after the next checkpoint's cleanup
        assert latest in kept and len(kept) <= 2, kept
        count = db.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", (run.run_id,)).fetchone()[0]
        assert count > 20  # every checkpoint is still there for time travel
        done = app.resume(run.run_id, max_steps=30)
    assert done.status == "completed" and done.state["done_count"] == 30


def test_every_review_has_a_reviews_row(settings):
    from chainproof.checkpoints.audit_schema import ReviewRecord

    stop = json.dumps({"decision": "terminate", "reason": "enough walking", "drift": "none at all"})
    with _app(settings, [json.dumps({"decision": "continue", "reason": "on track", "drift": "none"}), stop]) as app:
        run = app.start("long", {"n": 30}, max_steps=12)
        rows = app.audit.records_of(run.run_id, ReviewRecord)
    assert [(r.decision, r.reason) for r in rows] == [("continue", "on track"), ("terminate", "enough walking")]
    assert rows[1].drift_assessment == "none at all" and rows[0].input_tokens > 0 and rows[0].effort == "medium"


def test_a_replan_that_drops_a_needed_step_is_refused_and_the_run_goes_on(settings):
    from chainproof.graphs.review import RevisedStep, resolve_revised_plan
    from chainproof.graphs.spec import PlanStep

    a = PlanStep(id="a", title="A", kind="tool", tool="tick", instruction="x", keep_data=True)
    b = PlanStep(id="b", title="B", kind="tool", tool="tick", instruction="x", args_from_findings={"data": "a"})
    with pytest.raises(ValueError, match=r"step 'b' needs the results of \['a'\]"):
        resolve_revised_plan(LongChain(), (a, b), [RevisedStep(id="b")])
    assert [s.id for s in resolve_revised_plan(LongChain(), (a, b), [RevisedStep(id="b")], {"a"})] == ["b"]
    assert [s.id for s in resolve_revised_plan(LongChain(), (a, b), [RevisedStep(id="a"), RevisedStep(id="b")])] == ["a", "b"]
