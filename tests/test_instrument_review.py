"""The optional goal review of an instrumented graph (``instrument(builder, review_every=N)``):
every N node runs the reviewer continues, records a replan's advice, or terminates the run cleanly
with its reason; recorded as review steps and replayed identically with zero model calls."""

from __future__ import annotations

import json
import operator
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from chainproof import Chainproof, instrument, register
from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.checkpoints.audit_schema import ReviewRecord, Step
from chainproof.errors import RunNotResumable
from chainproof.graphs.registry import unregister
from testkit.toy_models import ModelMustNotBeCalled


class Walk(TypedDict, total=False):
    target: int
    count: int
    log: Annotated[list[str], operator.add]


def _builder() -> StateGraph:
    def step(state: Walk) -> dict:
        return {"count": state.get("count", 0) + 1, "log": [f"step {state.get('count', 0) + 1}"]}

    builder = StateGraph(Walk)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: "step" if s["count"] < s["target"] else END, ["step", END])
    return builder


def _review(decision: str, **extra: str) -> str:
    return json.dumps({"decision": decision, "reason": f"reviewer says {decision}", "drift": "none", **extra})


@pytest.fixture
def walk():
    register("walk", instrument(_builder(), name="walk", goal="Walk ten steps.", review_every=2))
    yield
    unregister("walk")


def test_reviews_every_n_node_runs_record_continue_and_replan_and_terminate_ends_cleanly(settings, walk):
    model = ScriptedChatModel(replies=[_review("continue"), _review("replan", advice="take bigger steps"),
                                       _review("terminate")])
    with Chainproof(settings, models=StaticModels(model)) as app:
        run = app.start("walk", {"target": 10, "count": 0})
        assert run.status == "completed"
        assert run.state["count"] == 6  # ended after the third review, not at ten
        steps = sorted(app.audit.records_of(run.run_id, Step), key=lambda s: s.step_no)
        assert [s.node for s in steps] == ["step", "step", "review", "step", "step", "review", "step", "step", "review"]
        reviews = sorted(app.audit.records_of(run.run_id, ReviewRecord), key=lambda r: r.step_no)
        assert [(r.decision, r.reason) for r in reviews] == [
            ("continue", "reviewer says continue"), ("replan", "reviewer says replan"),
            ("terminate", "reviewer says terminate")]
        assert steps[5].output["advice"] == "take bigger steps" and steps[2].effort == "medium"
        assert "Goal: Walk ten steps." in str(model.calls[0][-1].content)
        assert '"count":2' in str(model.calls[0][-1].content)  # the reviewer read the node runs
        with pytest.raises(RunNotResumable):  # ended: a resume has nothing to continue
            app.resume(run.run_id)
        app.models = StaticModels(ModelMustNotBeCalled())
        replay = app.replay(run.run_id)
        assert replay.outcome == "identical", [(s.step_no, s.differences) for s in replay.steps if s.differences]
        assert replay.model_calls_served == 3


def test_instrument_names_a_bad_review_setting():
    with pytest.raises(ValueError, match="review_every: must be 0 \\(no review\\) or more, got -1"):
        instrument(_builder(), name="walk", review_every=-1)
    with pytest.raises(ValueError, match="review_effort: expected one of low, medium, high, got 'max'"):
        instrument(_builder(), name="walk", review_effort="max")  # type: ignore[arg-type]
