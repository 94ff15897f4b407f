"""The engine as parts: a node runs alone on a context; plans come from the configured spec
instance; pauses and progress events are typed; hooks read state through ChainView."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_schema import Step, ToolCallRecord
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.nodes.step import act, after_observe
from chainproof.graphs.registry import register
from chainproof.graphs.spec import PlanStep
from chainproof.graphs.view import ChainView
from chainproof.types import (
    ApprovalPause,
    BudgetAlert,
    CostBudgetPause,
    StepBudgetPause,
    StepFinished,
    parse_pause,
    parse_progress,
)
from testkit import long_graph, toy_graph
from testkit.long_graph import LongChain, long_model
from testkit.toy_graph import ToyGraph

GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})


def _toy_model():
    return ScriptedChatModel(replies=["The square is 49.", "The double is 98.", "It is large.", GOOD])


def test_a_node_runs_alone_on_a_context_and_records_its_step(tmp_path):
    toy_graph.CALLS.clear()
    audit = AuditStore.scratch()
    audit.start_run("r1", graph="toy", goal="g", inputs={"x": 3})
    ctx = ChainContext(ToyGraph(), StaticModels(_toy_model()), audit, tmp_path)
    state = {"run_id": "r1", "goal": "g", "inputs": {"x": 3}, "step": 1, "cursor": 0,
             "budget": {"max_steps": 10, "review_every": 0}}
    update = act(state, SimpleNamespace(context=ctx))
    assert update["pending"]["result"] == {"x": 3, "squared": 9} and update["step"] == 2
    assert [(t.tool, t.args) for t in audit.records_of("r1", ToolCallRecord)] == [("square", {"x": 3})]
    assert after_observe({**state, "cursor": 3}, SimpleNamespace(context=ctx)) == "decide"


class SizedChain(LongChain):
    """A chain whose length is configured on the instance (by a registered factory)."""

    name = "sized"

    def __init__(self, n: int = 1):
        self.n = n

    def plan(self, inputs):
        return [PlanStep(id=f"s{i}", title=f"Step {i}", kind="tool", tool="tick", args={"step": f"s{i}"},
                         instruction="Note the value.", effort="low") for i in range(1, self.n + 1)]


def test_the_plan_comes_from_the_configured_spec_instance_not_a_fresh_class(settings):
    register("sized", lambda: SizedChain(n=4))
    long_graph.TICKS.clear()
    with Chainproof(settings, models=StaticModels(long_model())) as app:
        run = app.start("sized", {"n": 99})
        assert run.status == "completed" and run.state["done_count"] == 4
        acts = [s.title for s in app.audit.records_of(run.run_id, Step) if s.node == "act"]
    assert acts == ["Step 1 [tick]", "Step 2 [tick]", "Step 3 [tick]", "Step 4 [tick]"]


def test_pauses_are_typed_and_keep_the_interrupt_value(settings):
    register("toy", ToyGraph)
    register("long", LongChain)
    with Chainproof(settings, models=StaticModels(_toy_model())) as app:
        run = app.start("toy", {"x": 7})
    assert isinstance(run.pause, ApprovalPause) and run.pause.interrupt_id
    assert run.pause.proposed == {"verdict": "yes", "reason": "the doubled square is 98"}
    assert run.requests == [run.pause.value] and run.pause.value["kind"] == "approval"
    with Chainproof(settings, models=StaticModels(long_model())) as app:
        stopped = app.start("long", {"n": 12}, max_steps=5)
    assert isinstance(stopped.pause, StepBudgetPause)
    assert (stopped.pause.done_count, stopped.pause.remaining) == (5, 7) and stopped.budget_stop == stopped.pause.value
    assert stopped.requests == [] and stopped.cost_stop is None


def test_parse_pause_tells_the_kinds_apart_and_refuses_unknown_ones():
    cost = parse_pause({"kind": "cost_budget", "run_id": "r", "scope": "run", "field": "budget_usd", "budget_usd": 1,
                        "spent_usd": 0.9, "projected_usd": 0.2, "node": "act", "step_no": 4, "effort": "low",
                        "question": "q"}, "i1")
    assert isinstance(cost, CostBudgetPause) and cost.interrupt_id == "i1" and cost.value["budget_usd"] == 1
    with pytest.raises(ValidationError, match="kind"):
        parse_pause({"kind": "coffee_break", "run_id": "r"})


def test_progress_events_are_typed(settings):
    register("toy", ToyGraph)
    events = []
    with Chainproof(settings, models=StaticModels(_toy_model())) as app:
        app.start("toy", {"x": 7}, on_progress=events.append)
    assert events and all(isinstance(e, StepFinished) for e in events)
    assert [e.node for e in events][:2] == ["plan", "act"] and events[1].status == "ok"
    alert = parse_progress({"kind": "budget_alert", "scope": "run", "budget_usd": 1.0, "spent_usd": 0.8,
                            "share": 0.8, "alert_share": 0.8})
    assert isinstance(alert, BudgetAlert) and alert.share == 0.8


def test_chain_view_reads_findings_and_hides_in_band_keys():
    state = {"run_id": "r", "goal": "g", "inputs": {"x": 1}, "done_count": 2,
             "findings": {"card": {"step_id": "card", "title": "Card", "summary": "ok", "data": {"total": 3},
                                   "step_no": 4, "keep": True}},
             "decision": {"verdict": "yes", "_fallback": True, "_edited_by": "Ana"}}
    view = ChainView(state)
    assert view.finding("card").data == {"total": 3} and view.finding("missing") is None
    assert view.decision == {"verdict": "yes"} and view.decision_fallback and view.edited_by == "Ana"
    assert [f.title for f in view.findings] == ["Card"] and view.data("missing") == {}
    with pytest.raises(TypeError):
        view.inputs["x"] = 2  # read-only: a hook cannot change the run's state


def test_the_engine_graph_is_compiled_once_per_process_and_each_use_gets_its_own_checkpointer(settings, monkeypatch):
    from langgraph.checkpoint.memory import InMemorySaver

    from chainproof.graphs._engine import compile as wiring

    builds = []
    real = wiring.build_graph
    monkeypatch.setattr(wiring, "build_graph", lambda checkpointer=None: builds.append(checkpointer) or real(checkpointer))
    monkeypatch.setattr(wiring, "_compiled", {})
    register("long", LongChain)
    with Chainproof(settings, models=StaticModels(long_model())) as app:
        first = app.start("long", {"n": 3})
        second = app.start("long", {"n": 5}, max_steps=2)  # pauses on its budget, then resumes
        resumed = app.resume(second.run_id, max_steps=10)
    assert builds == [None]  # compiled once, without a checkpointer, for three advances
    assert (first.status, first.state["done_count"]) == ("completed", 3)
    assert (resumed.status, resumed.state["done_count"]) == ("completed", 5)
    one, two = InMemorySaver(), InMemorySaver()
    a, b = wiring.engine_graph(one), wiring.engine_graph(two)
    assert (a.checkpointer, b.checkpointer, wiring._compiled["engine"].checkpointer) == (one, two, None)
    assert a.nodes is b.nodes and builds == [None]
