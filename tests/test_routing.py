"""Effort routing: each source (override, static, rules, complexity, budget cap), their precedence,
and the reasons recorded on the trace."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import Step
from chainproof.graphs.registry import register
from chainproof.graphs.routing import BudgetShare, RoutingPolicy, RoutingSettings, Rule, Task
from chainproof.settings import Settings
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)

policy = RoutingPolicy()
HARD = Task("Assess the risk of the legal matters for a lender")
EASY = Task("What is the revenue in 2017?")
PLAIN = Task("Say what the double is.")


def test_override_beats_everything_and_is_not_capped():
    route = policy.route(EASY, override="high", static="low", budget=BudgetShare(0.95, "run"))
    assert (route.effort, route.reason) == ("high", "override: run config")


def test_static_beats_rules_and_complexity():
    route = policy.route(HARD, static="low")
    assert (route.effort, route.reason) == ("low", "static: set on the plan step")
    decide = policy.route(EASY, static="high", static_where="the graph's decide node")
    assert decide.reason == "static: set on the graph's decide node"


def test_rules_beat_complexity_and_the_first_match_wins():
    assert policy.route(HARD).reason == "rule: assess risk -> high"
    assert (policy.route(EASY).effort, policy.route(EASY).reason) == ("low", "rule: what is -> low")
    # "list" is a low rule, but "assess ... risk" comes first in the shipped order
    both = policy.route(Task("List the matters and assess each one's risk"))
    assert both.effort == "high" and both.reason.startswith("rule: assess risk")
    for text, effort in [("Prove the covenant holds", "high"), ("Design the hedge", "high"),
                         ("list the peers", "low"), ("In 2 sentences, summarise the tone", "low")]:
        assert policy.route(Task(text)).effort == effort, text


def test_configured_rules_replace_the_shipped_ones():
    custom = RoutingPolicy(RoutingSettings(rules=[Rule(name="tone", pattern=r"\btone\b", effort="medium")]))
    assert custom.route(Task("Summarise the tone")).reason == "rule: tone -> medium"
    assert custom.route(HARD).reason.startswith("complexity")  # no shipped rules left


def test_complexity_score_features_and_thresholds():
    score, parts = policy.complexity(PLAIN)
    assert score < 0.35 and policy.route(PLAIN).effort == "low"
    analytic = Task("Explain why margins fell, compare them with peers, weigh the implications for leverage, "
                    "and justify whether the lender should worry", material_chars=8000, structured=True)
    score, parts = policy.complexity(analytic)
    assert parts["cues"] == pytest.approx(0.45)  # capped: why, explain, compare, weigh, implication, justify, whether
    assert parts["structured"] == 0.2 and parts["material"] == pytest.approx(0.2)
    route = RoutingPolicy(RoutingSettings(rules=[])).route(analytic)
    assert route.effort == "high" and route.reason.startswith(f"complexity {min(1.0, score):.2f} (") and "cues 0.45" in route.reason
    middle = RoutingPolicy(RoutingSettings(rules=[])).route(Task("Explain why the margin moved and what drives it"))
    assert middle.effort == "medium"


def test_budget_cap_lowers_static_rule_and_complexity_efforts():
    near = BudgetShare(0.75, "run")
    assert policy.route(HARD, budget=near).effort == "medium"
    out = policy.route(HARD, static="high", budget=BudgetShare(0.92, "department credit 2026-11"))
    assert out.effort == "low"
    assert out.reason == "static: set on the plan step; budget cap: 92% of the department credit 2026-11 budget spent -> low"
    assert policy.route(EASY, budget=BudgetShare(0.95, "run")).reason == "rule: what is -> low"  # already at the cap
    assert policy.route(HARD, budget=BudgetShare(0.5, "run")).effort == "high"  # below every cap
    assert out.recorded() == {"budget_share": {"share": 0.92, "scope": "department credit 2026-11"}}


def test_bad_routing_settings_name_the_field():
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        RoutingSettings(rules=[{"name": "x", "pattern": "(unclosed", "effort": "low"}])
    with pytest.raises(ValidationError, match="low_below"):
        RoutingSettings(low_below=0.8, high_from=0.5)


def test_trace_records_each_steps_routing_reason(home):
    verdict = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})
    model = ScriptedChatModel(replies=["The square is 49.", "The double is 98.", "It is large.", verdict])
    settings = Settings(home=home, routing=RoutingSettings(rules=[Rule(name="double", pattern="double", effort="high")]))
    with Chainproof(settings, models=StaticModels(model)) as app:
        run = app.start("toy", {"x": 7})
        steps = {s.title: (s.effort, s.effort_reason) for s in app.audit.records_of(run.run_id, Step) if s.effort}
    assert steps["Interpret Square x"] == ("low", "static: set on the plan step")
    assert steps["Interpret Double it"] == ("high", "rule: double -> high")
    assert steps["Think"] == ("high", "static: set on the plan step")
    assert steps["Decide and request approval"] == ("high", "static: set on the graph's decide node")
