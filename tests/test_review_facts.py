"""Reviews and routing that help, not hurt: a review's words never replace a finding's figures (a
later step still reads "5,409" with its citation, and the review's text is marked as the
review's); later steps see the cited evidence they depend on, within a token budget; a step that
reads evidence is never routed below the reading floor, and the reason says why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.errors import PlanError
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.prompting import REVIEW_NOTE_HEAD, evidence_block
from chainproof.graphs.registry import register
from chainproof.graphs.routing import BudgetShare, RoutingPolicy, Task
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.graphs.view import ChainView
from testkit import agent_graph
from testkit.agent_graph import Answer, revenue
from testkit.toy_models import ModelMustNotBeCalled

DECIDE = "Give the answer as JSON."
WRONG = "Revenue was $540.9 million."


class Filing(ChainSpec[Answer]):
    name = "filing-facts"
    decision_schema = Answer
    review_every = 1

    def __init__(self, evidence: list[str] | None = None):
        self.evidence = ["revenue"] if evidence is None else evidence

    def tools(self):
        return [revenue]

    def goal(self, inputs: dict[str, Any]) -> str:
        return "Report ACME's revenue."

    def plan(self, inputs: dict[str, Any]) -> list[PlanStep]:
        return [PlanStep(id="revenue", title="Revenue", kind="tool", tool="revenue", args={"company": "ACME"},
                         keep_data=True, effort="low", instruction="State the revenue."),
                PlanStep(id="assess", title="Assess", kind="reason", evidence=self.evidence, effort="low",
                         instruction="Say whether revenue is above 5,000.")]

    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy(nodes=[])

    def decision_prompt(self, view: ChainView) -> str:
        return DECIDE

    def render_report(self, view: ChainView) -> str:
        return "# Filing\n"


def _model() -> ScriptedChatModel:
    def answer(messages: list[BaseMessage]) -> str:
        text = str(messages[-1].content)
        if '"title":"ReviewDecision"' in str(messages[0].content):  # the reviewer rewrites the figure
            return json.dumps({"decision": "continue", "reason": "on track", "drift": "none", "summary": WRONG})
        if DECIDE in text:
            return json.dumps({"answer": "above"})
        if "Tool result (JSON)" in text:
            return "Revenue was 5,409."
        return "Yes: 5,409 is above 5,000."

    return ScriptedChatModel(replies=[answer], repeat_last=True)


def test_a_review_cannot_change_the_figure_a_later_step_receives(settings, monkeypatch):
    monkeypatch.setitem(agent_graph.REVENUE, "ACME", 5409.0)
    register("filing-facts", Filing)
    model = _model()
    with Chainproof(settings, models=StaticModels(model)) as app:
        run = app.start("filing-facts", {})
        assert run.status == "completed"
        assert run.state["findings"]["revenue"]["summary"] == "Revenue was 5,409."  # the finding as established
        assess = next(str(m[-1].content) for m in model.calls if "Your task now: Say whether" in str(m[-1].content))
        known, _, rest = assess.partition(REVIEW_NOTE_HEAD)
        assert "- Revenue: Revenue was 5,409." in known and "540.9" not in known  # the facts, unchanged
        assert rest.startswith(f": after 1 plan steps: {WRONG}")  # the review's words, marked as the review's
        evidence = assess.split("Evidence this step depends on (exact, cited):\n", 1)[1]
        assert evidence.startswith('[revenue, step 3] Revenue: Revenue was 5,409. | data: {"company":"ACME",'
                                   '"revenue":5409.0}')
        app.models = StaticModels(ModelMustNotBeCalled())
        assert app.replay(run.run_id).outcome == "identical"


def test_the_evidence_stays_within_its_token_budget_and_names_what_it_left_out():
    findings = {"a": {"step_no": 3, "title": "A", "summary": "x" * 300, "data": {"v": 1}},
                "b": {"step_no": 5, "title": "B", "summary": "y" * 300, "data": None}}
    text = evidence_block(findings, ["a", "b", "skipped"], budget_tokens=50)  # 200 characters
    lines = text.splitlines()[1:]
    assert lines[0].startswith("[a, step 3] A: xxx") and lines[0].endswith(" …[cut: evidence budget]")
    assert len(lines[0]) <= 200
    assert lines[1:] == ["[b] omitted: the evidence budget of 50 tokens is spent",
                         "[skipped] not produced (its step did not run)"]
    assert evidence_block(findings, [], 50) == ""


def test_evidence_must_name_an_earlier_step_that_keeps_its_data(settings):
    register("filing-facts", lambda: Filing(evidence=["assess"]))
    with Chainproof(settings, models=StaticModels(_model())) as app:
        with pytest.raises(PlanError, match=r"plan step 'assess': evidence names 'assess', which is not an earlier "
                                            r"plan step with keep_data=True; the earlier ones that keep their data are "
                                            r"\['revenue'\]"):
            app.start("filing-facts", {})


def test_routing_never_starves_a_step_that_reads_evidence_and_says_why():
    policy = RoutingPolicy()
    reading = Task("Summarise the tone of the headlines.", material_chars=2400)
    route = policy.route(reading)
    assert (route.effort, route.reason) == ("medium", "rule: summarise -> low; reading floor: the step reads 2,400 "
                                                      "characters of evidence -> medium")
    assert policy.route(Task("Summarise the tone.", material_chars=120)).effort == "low"  # a one-line result
    risk = Task("Assess the risks in the excerpt.", material_chars=2400)
    capped = policy.route(risk, budget=BudgetShare(0.95, "run"))  # the budget cap cannot starve it either
    assert capped.effort == "medium" and capped.reason == (
        "rule: assess risk -> high; budget cap: 95% of the run budget spent -> low; reading floor: the step reads "
        "2,400 characters of evidence -> medium")
    assert policy.route(reading, static="low").effort == "low"  # the author's explicit effort is kept


def test_a_run_recorded_before_the_floor_existed_replays_without_it():
    from chainproof._wiring import _recorded_routing

    assert _recorded_routing({"low_below": 0.35})["reading_floor"] is None
    assert _recorded_routing({"reading_floor": "high"})["reading_floor"] == "high"
    assert _recorded_routing(None) == {"reading_floor": None}
