"""Usage, pricing and cost budgets: reasoning tokens counted once, the same totals invoked or
streamed, known/unknown/local prices, the 80 % alert, the pause before an over-budget call and its
resume after the budget is raised (run and department budgets)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from typer.testing import CliRunner

from chainproof.agents.calls import Usage, call_model
from chainproof.agents.config import ModelSettings
from chainproof.agents.models import ConfiguredModels, StaticModels
from chainproof.agents.pricing import cost_usd, default_prices
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ModelCallRecord, Step
from chainproof.cli import app as cli
from chainproof.graphs.budgets import BudgetSettings, BudgetUnenforceable
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from chainproof.types import BudgetAlert
from testkit.fake_openai import FakeOpenAI
from testkit.toy_graph import ToyGraph
from testkit.toy_models import GOOD, PRICES, SMALL_CAPS, toy_model
from testkit.toy_models import usage_metadata as _usage

register("toy", ToyGraph)

def test_reasoning_and_cached_tokens_are_counted_once_and_priced_as_parts(home):
    usage = Usage.from_message(AIMessage(content="x", usage_metadata=_usage(100, 60, 40, 30)))
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.reasoning_tokens) == (100, 60, 40, 30)
    assert usage.total_tokens == 140  # not 170 (reasoning added) nor 200 (cached added)
    # 40 uncached input at 1000, 60 cached at 500, 40 output (30 of them reasoning) at 2000, per 1M tokens
    assert cost_usd("m", usage, PRICES) == pytest.approx((40 * 1000 + 60 * 500 + 40 * 2000) / 1e6)
    with Chainproof(Settings(home=home, pricing=PRICES), models=StaticModels(toy_model(input_tokens=100, cached=60,
                                                                                          output=40, reasoning=30))) as app:
        run = app.start("toy", {"x": 7})
        calls = app.audit.records_of(run.run_id, ModelCallRecord)
        steps = [s for s in app.audit.records_of(run.run_id, Step) if s.model]
        result = CliRunner().invoke(cli, ["costs", run.run_id], env={"CHAINPROOF_HOME": str(home)})
    assert all((c.input_tokens, c.cached_input_tokens, c.output_tokens, c.reasoning_tokens) == (100, 60, 40, 30)
               for c in calls)
    assert all(c.cost_usd == pytest.approx(0.15) for c in calls)
    assert sum(s.output_tokens for s in steps) == 40 * len(calls) and sum(s.reasoning_tokens for s in steps) == 30 * len(calls)
    assert sum(s.cost_usd for s in steps) == pytest.approx(0.15 * len(calls))
    assert result.exit_code == 0, result.output
    total = next(line for line in result.output.splitlines() if "total" in line)
    cells = total.split()[1:]
    # calls, cache hits, input, cached input, output, reasoning (shown apart, part of output), saved, USD
    assert cells == [str(n) for n in (len(calls), 0, 400, 240, 160, 120, 0)] + ["0.600000"]


def test_invoked_and_streamed_calls_have_the_same_usage(home):
    with FakeOpenAI(lambda body: GOOD if "verdict" in json.dumps(body["messages"]) else "Revenue grew.",
                    reasoning_tokens=30, cached_tokens=60) as server:
        totals = {}
        for stream in (False, True):
            s = Settings(home=home / str(stream), model=ModelSettings(
                provider="openai", model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test-0123456789abcdefXYZ",
                stream=stream))
            models = ConfiguredModels(s.model, s.local, Path("/nonexistent"))
            _, single = call_model(models.chat("low"), [HumanMessage("hi there")], effort="low", stream=stream)
            with Chainproof(s, models=models) as app:
                run = app.start("toy", {"x": 7}, cache=False)
                rows = app.audit.records_of(run.run_id, ModelCallRecord)
            totals[stream] = (single.usage, [(r.input_tokens, r.cached_input_tokens, r.output_tokens,
                                              r.reasoning_tokens, r.cost_usd) for r in rows])
        assert [bool(b.get("stream")) for b in server.requests] == [False] * 5 + [True] * 5
    assert totals[False] == totals[True]
    usage = totals[True][0]
    assert usage.reasoning_tokens == 30 and usage.cached_input_tokens == min(60, usage.input_tokens) > 0
    assert usage.output_tokens == len("Revenue grew.") // 4 + 30
    assert all(cost is not None and cost > 0 for *_, cost in totals[True][1])  # gpt-4o-mini has a shipped price


def test_unknown_models_cost_unknown_local_models_cost_zero(home):
    table = default_prices()
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert cost_usd("gpt-4o-mini", usage, table) == pytest.approx((1000 * 0.15 + 1000 * 0.60) / 1e6)
    assert cost_usd("gpt-4o-mini-2024-07-18", usage, table) == cost_usd("gpt-4o-mini", usage, table)
    assert cost_usd("local:qwen2.5-coder-1.5b-instruct-q4_k_m", usage, table) == 0.0
    assert cost_usd("mystery-model", usage, table) is None
    with Chainproof(Settings(home=home), models=StaticModels(toy_model("mystery-model"))) as app:
        run = app.start("toy", {"x": 7})
        calls = app.audit.records_of(run.run_id, ModelCallRecord)
        assert all(c.cost_usd is None and c.input_tokens == 100 for c in calls)  # tokens counted, cost unknown
        assert app.audit.run_cost_usd(run.run_id) is None
    result = CliRunner().invoke(cli, ["costs", run.run_id], env={"CHAINPROOF_HOME": str(home)})
    total = next(line for line in result.output.splitlines() if "total" in line)
    assert total.split()[-1] == "unknown"


def test_alert_at_80_percent_then_pause_before_the_over_budget_call_and_resume_after_raising(home):
    model = toy_model()
    settings = Settings(home=home, pricing=PRICES, model=SMALL_CAPS)
    with Chainproof(settings, models=StaticModels(model)) as app:
        events: list[dict] = []
        run = app.start("toy", {"x": 7}, budget_usd=0.5, on_progress=events.append)
        # two calls of 0.2 USD; the third (projected ~0.19 USD) would pass 0.5: paused before it
        assert run.status == "paused" and len(model.calls) == 2
        stop = run.cost_stop
        assert (stop["scope"], stop["field"], stop["spent_usd"], stop["node"]) == ("run", "budget_usd", 0.4, "act")
        assert stop["spent_usd"] + stop["projected_usd"] > 0.5
        assert app.audit.run_spend(run.run_id).usd == pytest.approx(0.4)  # never over budget
        assert not [s for s in app.audit.records_of(run.run_id, Step) if s.step_no == stop["step_no"]]
        [alert] = [e.detail for e in app.audit.events_of(run.run_id, "budget_alert")]
        assert alert["share"] == 0.8 and alert["scope"] == "run"
        assert [e.value for e in events if isinstance(e, BudgetAlert)] == [{"kind": "budget_alert", **alert}]
        assert app.audit.last_event(run.run_id, "run_paused").detail["cost_budget_stop"]["budget_usd"] == 0.5
        # too small a raise: refused, nothing runs
        with pytest.raises(ValueError, match=r"budget_usd: run .* paused at its run budget.*budget above"):
            app.resume(run.run_id, budget_usd=0.55)
        assert len(model.calls) == 2
        resumed = app.resume(run.run_id, budget_usd=5.0, by="Dana")
        assert resumed.status == "paused" and resumed.requests  # now at the approval request
        assert len(model.calls) == 4  # the paused step ran once, then decide
        think = next(s for s in app.audit.records_of(run.run_id, Step) if s.title == "Think")
        # 80 % spent when it ran: the budget cap lowered its static high effort
        assert think.effort == "medium" and "budget cap: 80% of the run budget spent -> medium" in think.effort_reason
        assert app.audit.last_event(run.run_id, "run_resumed").detail == {"budget_usd": 5.0, "by": "Dana", "scope": "run"}
        done = app.decide(run.run_id, action="approve", approver="Dana")
        assert done.status == "completed"
        assert app.replay(run.run_id).outcome == "identical"
    shown = CliRunner().invoke(cli, ["costs", run.run_id], env={"CHAINPROOF_HOME": str(home)})
    assert "budget alert: 80% of the run budget of 0.5000 USD spent" in shown.output


def test_department_budget_pauses_and_resumes_after_the_settings_raise_it(home):
    model = toy_model()
    tight = Settings(home=home, pricing=PRICES, model=SMALL_CAPS, budgets=BudgetSettings(departments={"M&A": 0.5}))
    with Chainproof(tight, models=StaticModels(model)) as app:
        first = app.start("toy", {"x": 7}, department="M&A", budget_usd=100)
        assert first.status == "paused" and first.cost_stop["field"] == "budgets.departments.M&A"
        assert first.cost_stop["scope"].startswith("department M&A 20")
        with pytest.raises(ValueError, match=r"budgets\.departments\.M&A: .*raise budgets\.departments\.M&A"):
            app.resume(first.run_id)
        other = app.start("toy", {"x": 9}, department="Treasury")  # other departments are not affected
        assert other.requests
    raised = tight.model_copy(update={"budgets": BudgetSettings(departments={"M&A": 10.0})})
    with Chainproof(raised, models=StaticModels(model)) as app:
        assert app.resume(first.run_id).requests
        month = first.cost_stop["scope"].split()[-1]
        assert app.audit.department_spend("M&A", month).usd == pytest.approx(0.8)
    report = CliRunner().invoke(cli, ["costs", "--department", "M&A", "--month", month],
                                env={"CHAINPROOF_HOME": str(home), "CHAINPROOF_BUDGETS__DEPARTMENTS": '{"M&A": 10}'})
    assert report.exit_code == 0 and "monthly budget 10.0000 USD · spent 0.800000 USD (8%)" in report.output
    bad = CliRunner().invoke(cli, ["costs", "--department", "M&A", "--month", "2026/11"], env={"CHAINPROOF_HOME": str(home)})
    assert bad.exit_code == 2 and "month: expected YYYY-MM" in bad.output


def test_a_budget_cannot_be_enforced_for_a_model_without_a_price(home):
    model = toy_model("mystery-model")
    with Chainproof(Settings(home=home), models=StaticModels(model)) as app:
        with pytest.raises(BudgetUnenforceable, match=r"model 'mystery-model' has no price.*\[pricing\.\"mystery-model\"\]"):
            app.start("toy", {"x": 7}, budget_usd=1.0)
    assert model.calls == []  # nothing was called


def test_cli_run_pauses_at_its_cost_budget_and_resumes_with_a_larger_one(home, monkeypatch):
    from testkit.dd_answers import responder

    with FakeOpenAI(responder) as server:
        for key, value in {"PROVIDER": "openai", "MODEL": "gpt-4o-mini", "BASE_URL": server.base_url}.items():
            monkeypatch.setenv(f"CHAINPROOF_MODEL__{key}", value)
        paused = CliRunner().invoke(cli, ["run", "due-diligence", "--company", "MMM", "--as-of", "2018-02-08",
                                          "--budget-usd", "0.0001"])
        assert paused.exit_code == 0, paused.output
        assert "Cost budget reached" in paused.output and "the call was not made" in paused.output
        run_id = paused.output.split("chainproof resume ")[1].split()[0]
        calls_before = len(server.requests)
        refused = CliRunner().invoke(cli, ["resume", run_id, "--budget-usd", "0.00011"])
        assert refused.exit_code == 2 and "budget_usd:" in refused.output and len(server.requests) == calls_before
        resumed = CliRunner().invoke(cli, ["resume", run_id, "--budget-usd", "1"])
        assert resumed.exit_code == 0 and "Approval needed" in resumed.output, resumed.output
    costs = CliRunner().invoke(cli, ["costs", run_id])
    total = next(line for line in costs.output.splitlines() if line.startswith("total"))
    assert float(total.split()[-1]) > 0.0001  # priced as gpt-4o-mini, every call recorded
