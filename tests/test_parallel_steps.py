"""Parallel groups: independent plan steps (``depends_on``) run concurrently through LangGraph
``Send``, each with its own audit rows under step numbers fixed in plan order; their findings merge
in plan order (the same state as in sequence), replay is identical with zero calls, and the step
budget counts every step of a group."""

from __future__ import annotations

import time

import pytest

from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ModelCallRecord, Step, ToolCallRecord
from chainproof.errors import PlanError
from chainproof.graphs.registry import register
from chainproof.graphs.spec import PlanStep
from chainproof.types import StepBudgetPause
from testkit import agent_graph
from testkit.parallel_graph import ParallelChain, sleepy_model


def _run(settings, parallel, **kw):
    register("parallel-chain", lambda: ParallelChain(parallel=parallel))
    app = Chainproof(settings, models=StaticModels(sleepy_model(1.0)))
    started = time.perf_counter()
    run = app.start("parallel-chain", {}, cache=False, **kw)  # no cache hit across the two runs
    return app, run, time.perf_counter() - started


def _span(steps, numbers):
    """Wall time from the first of these steps' start to the last one's end, in seconds."""
    rows = [s for s in steps if s.step_no in numbers]
    start = min(s.started_at for s in rows)
    return max((s.started_at - start).total_seconds() + s.duration_s for s in rows)


def test_three_independent_steps_run_concurrently_with_audit_rows_per_branch(settings):
    app, run, _ = _run(settings, parallel=True)
    with app:
        assert run.status == "completed"
        steps = sorted(app.audit.records_of(run.run_id, Step), key=lambda s: s.step_no)  # chain: finishing order
        assert [(s.step_no, s.node, s.title) for s in steps[:9]] == [
            (1, "plan", "Plan the chain"), (2, "act", "ACME revenue [revenue]"), (3, "act", "BETA revenue [revenue]"),
            (4, "act", "Revenue ratio [ratio]"), (5, "observe", "Interpret ACME revenue"),
            (6, "observe", "Interpret BETA revenue"), (7, "observe", "Interpret Revenue ratio"),
            (8, "act", "Comparison"), (9, "observe", "Record Comparison")]
        interpretations = [s for s in steps if s.step_no in (5, 6, 7)]
        assert all(s.duration_s >= 1.0 for s in interpretations)  # each branch slept its 1 s
        assert _span(steps, {2, 3, 4, 5, 6, 7}) < 1.5  # ... side by side, not 3 s in a row
        tools = sorted(app.audit.records_of(run.run_id, ToolCallRecord), key=lambda t: t.step_no)
        assert [(t.step_no, t.tool, t.args) for t in tools] == [
            (2, "revenue", {"company": "ACME"}), (3, "revenue", {"company": "BETA"}),
            (4, "ratio", {"numerator": 1200.0, "denominator": 800.0})]
        calls = {c.step_no: c.output for c in app.audit.records_of(run.run_id, ModelCallRecord)}
        assert calls[5] == 'Interpreted {"company":"ACME","revenue":1200.0}'
        assert calls[7] == 'Interpreted {"ratio":1.5}'
        assert run.state["done_count"] == 4 and run.state["step"] == 11
        assert list(run.state["findings"]) == ["acme", "beta", "ratio", "compare"]  # plan order
        assert "branch_findings" not in run.state or run.state["branch_findings"] == {}
        replay = app.replay(run.run_id)
        assert replay.outcome == "identical", [(s.step_no, s.differences) for s in replay.steps if s.differences]
        assert (replay.model_calls_served, replay.tool_calls_served) == (5, 3)
        parallel_state = {k: run.state[k] for k in ("findings", "summary", "done_count", "recent_done", "tools_used")}

    app, seq, elapsed = _run(settings, parallel=False)
    with app:
        assert elapsed >= 3.0  # the same three interpretations one after another
        assert {k: seq.state[k] for k in parallel_state} == {
            **parallel_state, "findings": {k: {**f, "step_no": seq.state["findings"][k]["step_no"]}
                                           for k, f in parallel_state["findings"].items()}}


def test_the_step_budget_counts_every_step_of_a_group(settings):
    app, run, _ = _run(settings, parallel=True, max_steps=2)
    with app:
        assert run.status == "paused" and isinstance(run.pause, StepBudgetPause)
        assert run.pause.done_count == 2 and run.pause.remaining == 2  # the group was cut to the budget
        assert list(run.state["findings"]) == ["acme", "beta"]
        agent_graph.RUNS.clear()
        done = app.resume(run.run_id, max_steps=10)
        assert done.status == "completed" and done.state["done_count"] == 4
        assert app.replay(run.run_id).outcome == "identical"


def test_a_dependency_must_be_an_earlier_step_and_cover_the_findings_used():
    with pytest.raises(ValueError, match=r"depends_on must list every args_from_findings source; missing \['acme'\]"):
        PlanStep(id="x", title="X", kind="tool", tool="ratio", instruction="i", args_from_findings={"n": "acme"},
                 depends_on=[])
    with pytest.raises(ValueError, match="depends_on applies to tool and reason steps"):
        PlanStep(id="x", title="X", kind="agent", instruction="i", depends_on=[])


def test_a_plan_naming_a_later_dependency_is_refused_before_it_runs(settings):
    class Backwards(ParallelChain):
        def plan(self, inputs):
            steps = super().plan(inputs)
            return [steps[0].model_copy(update={"depends_on": ["beta"]}), *steps[1:]]

    register("parallel-chain", Backwards)
    with Chainproof(settings, models=StaticModels(sleepy_model(0.0))) as app:
        with pytest.raises(PlanError, match=r"plan step 'acme': depends_on names \['beta'\], which are not earlier"):
            app.start("parallel-chain", {})
