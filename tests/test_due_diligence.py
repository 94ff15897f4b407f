"""The due-diligence graph on the bundled 3M dossier with scripted models."""

from __future__ import annotations

import json
import sqlite3

import pytest

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import Step
from chainproof.graphs.due_diligence import DueDiligence, Recommendation, check_evidence

INPUTS = {"company": "MMM", "as_of": "2018-02-08"}
REVIEW = json.dumps({"decision": "continue", "reason": "on track", "drift": "none"})
# six observations with the goal review (every 5 plan steps) after the fifth
OBSERVATIONS = ["Observation."] * 5 + [REVIEW, "Observation."]


def _rec(**over) -> str:
    rec = {"decision": "proceed", "confidence": 0.7, "summary": "Healthy margins and moderate risk overall.",
           "reasons": [{"text": "Interest coverage is high.", "evidence": ["financials.interest_coverage"]}]}
    rec.update(over)
    return json.dumps(rec)


def _run(settings, replies):
    model = ScriptedChatModel(replies=[*OBSERVATIONS, *replies])
    app = Chainproof(settings, models=StaticModels(model))
    return app, app.start("due-diligence", INPUTS), model


def test_unknown_evidence_key_is_shown_to_the_model_then_fixed(settings):
    app, run, model = _run(settings, [_rec(reasons=[{"text": "Made-up figure here.", "evidence": ["ebitda_magic"]}]), _rec()])
    with app:
        assert run.requests[0]["proposed"]["decision"] == "proceed"
        decide = [s for s in app.audit.records_of(run.run_id, Step) if s.node == "decide"][0]
    assert "ebitda_magic" in decide.output["errors"][0]
    assert "ebitda_magic" in model.calls[-1][-1].content


def test_fallback_is_the_scorecard_recommendation_and_the_report_says_so(settings):
    app, run, _ = _run(settings, ["not json"] * 3)
    with app:
        proposed = run.requests[0]["proposed"]
        scorecard = run.state["findings"]["scorecard"]["data"]
        assert proposed["decision"] == scorecard["recommendation"]
        assert {r["evidence"][0] for r in proposed["reasons"]} <= {f["evidence_key"] for f in scorecard["factors"]}
        done = app.decide(run.run_id, action="approve", approver="Kim")
    report = open(done.report_path).read()
    assert "quantitative scorecard's recommendation" in report and "**Approved** by **Kim**" in report


def test_rejected_recommendation_report_names_rejecter_and_reason(settings):
    app, run, _ = _run(settings, [_rec(decision="walk_away")])
    with app:
        assert run.requests[0]["reasons"] == ["policy: decide always needs approval", "decision is 'walk_away'"]
        done = app.decide(run.run_id, action="reject", approver="Lee", comment="Legal exposure understated")
    report = open(done.report_path).read()
    assert "**Rejected** by **Lee**" in report and "Legal exposure understated" in report
    assert "WALK AWAY" in report


def test_report_figures_come_from_the_tools(settings):
    app, run, _ = _run(settings, [_rec()])
    with app:
        done = app.decide(run.run_id, action="approve", approver="Kim")
    report = open(done.report_path).read()
    risk = done.state["findings"]["market_risk"]["data"]
    assert f"{risk['hist_var95_1d'] * 100:.2f} %" in report
    assert "31,657" in report  # 3M FY2017 net sales, USD millions (10-K)


def test_checkpoints_stay_small(settings):
    app, run, _ = _run(settings, [_rec()])
    with app:
        app.decide(run.run_id, action="approve", approver="Kim")
    db = sqlite3.connect(settings.resolved_checkpoint_url)
    sizes = [len(row[0]) for row in db.execute("SELECT checkpoint FROM checkpoints WHERE thread_id = ?", (run.run_id,))]
    assert len(sizes) >= 16
    assert max(sizes) < 64 * 1024  # the whole bounded state, findings included


def test_check_evidence_accepts_nested_fields_and_rejects_unknown():
    findings = {"legal": {"matters": [{"score": 3}]}, "peers": {"multiples": []}}
    ok = Recommendation(decision="proceed", confidence=0.5, summary="A fine company overall.",
                        reasons=[{"text": "Legal score is low.", "evidence": ["legal.matters[0].score", "peers"]}])
    check_evidence(ok, findings)
    bad = ok.model_copy(update={"reasons": [ok.reasons[0].model_copy(update={"evidence": ["legal.nonexistent"]})]})
    with pytest.raises(ValueError, match="legal.nonexistent"):
        check_evidence(bad, findings)


def test_inputs_are_validated_before_anything_is_recorded(settings):
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=[]))) as app:
        with pytest.raises(ValueError, match="company"):
            app.start("due-diligence", {"company": " ", "as_of": "2018-02-08"})
        assert app.audit.list_runs() == []
    assert DueDiligence().validate_inputs(INPUTS)["company_name"] == "3M Company"


def test_a_human_edit_passes_the_same_evidence_check_as_the_model(settings):
    from chainproof.graphs.approval import ApprovalRefused

    app, run, _ = _run(settings, [_rec()])
    with app:
        bad = {**json.loads(_rec()), "reasons": [{"text": "Revenue grew 40% last year.", "evidence": ["nonexistent.foo"]}]}
        with pytest.raises(ApprovalRefused, match="nonexistent.foo"):
            app.decide(run.run_id, action="edit", approver="Kim", edited=bad)
        good = {**json.loads(_rec()), "decision": "renegotiate"}
        done = app.decide(run.run_id, action="edit", approver="Kim", edited=good)
    assert done.state["decision"]["decision"] == "renegotiate"


def test_names_and_comments_in_the_report_are_literal_text(settings):
    app, run, _ = _run(settings, [_rec()])
    with app:
        done = app.decide(run.run_id, action="approve", approver="<script>alert(1)</script>", comment="ok | *fine*")
    report = open(done.report_path).read()
    assert "<script>" not in report and "&lt;script&gt;" in report
    assert r"ok \| \*fine\*" in report


def test_a_blank_starter_name_is_refused(settings):
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=[]))) as app:
        with pytest.raises(ValueError, match=r"started_by \(--as\)"):
            app.start("due-diligence", INPUTS, started_by="   ")
        assert app.audit.list_runs() == []

