"""The debate pattern: analysts argue from assigned positions for K rounds as parallel branches
(one audited step per argument), then a judge's verdict cites the arguments; the due-diligence
graph's optional cross-examination (``--debate``) runs it before the recommendation, and a replay
is identical with zero model calls."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ModelCallRecord, Step
from chainproof.graphs.debate import Debate, DebateVerdict, Position, VerdictReason, check_verdict, debate_step
from testkit.dd_answers import VERDICT, dd_model
from testkit.toy_models import ModelMustNotBeCalled

INPUTS = {"company": "MMM", "as_of": "2018-02-08"}


def _steps(app, run_id):
    return sorted(app.audit.records_of(run_id, Step), key=lambda s: s.step_no)


def test_debate_records_two_positions_k_rounds_and_a_verdict_citing_the_arguments(settings):
    with Chainproof(settings, models=StaticModels(dd_model())) as app:
        run = app.start("due-diligence", {**INPUTS, "debate": True}, cache=False)
        assert run.status == "paused"  # at the recommendation's approval, after the debate
        steps = _steps(app, run.run_id)
        debate = [s for s in steps if s.kind == "debate"]
        assert [(s.node, s.title) for s in debate] == [
            ("argue", "Cross-examination: proceed, round 1"), ("argue", "Cross-examination: caution, round 1"),
            ("argue", "Cross-examination: proceed, round 2"), ("argue", "Cross-examination: caution, round 2"),
            ("judge", "Cross-examination: verdict")]
        numbers = [s.step_no for s in debate]
        assert numbers == list(range(numbers[0], numbers[0] + 5))  # fixed in position order, whatever the timing
        assert [s.output["argument_id"] for s in debate[:4]] == ["proceed.1", "caution.1", "proceed.2", "caution.2"]
        assert debate[2].output["text"] == "proceed argues in round 2, answering caution.1, proceed.1."  # saw round 1
        assert debate[4].output["verdict"] == VERDICT and debate[4].output["fallback"] is False
        decide = next(s for s in steps if s.node == "decide")
        assert decide.step_no == numbers[-1] + 1  # the cross-examination comes before the recommendation
        calls = {c.step_no: c for c in app.audit.records_of(run.run_id, ModelCallRecord)}
        assert "Cross-examination (finding id cross_examination): Verdict: caution." in calls[decide.step_no].messages[-1]["content"]
        data = run.state["findings"]["cross_examination"]["data"]
        assert [p["id"] for p in data["positions"]] == ["proceed", "caution"] and data["rounds"] == 2
        assert list(data["arguments"]) == ["proceed.1", "caution.1", "proceed.2", "caution.2"]
        app.models = StaticModels(ModelMustNotBeCalled())
        replay = app.replay(run.run_id)
        assert replay.outcome == "identical", [(s.step_no, s.differences) for s in replay.steps if s.differences]


def test_a_verdict_citing_no_argument_is_shown_to_the_judge_and_the_fallback_says_why():
    debate = Debate(positions=[Position(id="a", stance="say yes"), Position(id="b", stance="say no")], rounds=1)
    arguments = {"a.1": {"position": "a", "round": 1, "text": "yes"}, "b.1": {"position": "b", "round": 1, "text": "no"}}
    bad = DebateVerdict(winner="a", summary="yes wins", reasons=[VerdictReason(text="it is so", cites=["a.3"])])
    with pytest.raises(ValueError, match=r"reasons.cites: \['a.3'\] are not argument ids; the arguments are \['a.1', 'b.1'\]"):
        check_verdict(bad, debate, arguments)
    with pytest.raises(ValueError, match=r"winner: 'c' is not one of \['a', 'b', 'undecided'\]"):
        check_verdict(bad.model_copy(update={"winner": "c"}), debate, arguments)
    with pytest.raises(ValidationError, match="positions"):
        debate_step("x", "X", "Q?", [("a", "say yes")])  # one position is no debate
    with pytest.raises(ValidationError, match="ids must be distinct"):
        debate_step("x", "X", "Q?", [("a", "say yes"), ("a", "say no")])

