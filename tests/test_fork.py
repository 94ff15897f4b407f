"""Time travel: a fork is a new run from a past checkpoint of another. It is linked to its parent in
its header, asks every approval after the fork point again with new request ids, verifies and
replays on its own, and leaves the parent's record untouched."""

from __future__ import annotations

import pytest

from chainproof import Chainproof, StaticModels, register
from chainproof.checkpoints.audit_hashing import run_header
from chainproof.checkpoints.audit_schema import EventRecord, Step
from chainproof.checkpoints.verify import verify_run
from chainproof.errors import InputError, UserError
from chainproof.graphs.replay import replay_run
from testkit import toy_graph
from testkit.toy_graph import ToyGraph
from testkit.toy_models import toy_model


@pytest.fixture(autouse=True)
def toy_registered():
    register("toy", ToyGraph)


def _parent(app: Chainproof) -> str:
    run = app.start("toy", {"x": 7})
    app.decide(run.run_id, action="approve", approver="Ana")
    return run.run_id


def test_a_fork_before_the_decision_asks_again_and_leaves_the_parent_untouched(settings):
    with Chainproof(settings, models=StaticModels(toy_model())) as app:
        parent = _parent(app)
        before = [(r.seq, r.record_hash) for r in app.audit.records(parent)]
        parent_requests = {r.request_id for r in app.audit.records(parent) if hasattr(r, "request_id")}
        calls = dict(toy_graph.CALLS)
        decide_step = next(s.step_no for s in app.audit.records_of(parent, Step) if s.node == "decide")
        fork = app.fork(parent, decide_step - 1, started_by="Lee")
        assert fork.status == "paused" and fork.run_id != parent
        assert toy_graph.CALLS == calls  # the tool steps before the fork point did not run again
        new_request = fork.requests[0]["request_id"]
        assert new_request not in parent_requests
        header = app.audit.get_run(fork.run_id)
        assert (header.parent_run_id, header.forked_at_step) == (parent, decide_step - 1)
        assert {"parent_run_id", "forked_at_step"} <= run_header(header).keys()
        steps = [s.step_no for s in app.audit.records_of(fork.run_id, Step)]
        assert steps[0] == decide_step  # the fork's own steps start after the fork point
        done = app.decide(fork.run_id, action="reject", approver="Lee", comment="numbers too thin")
        assert done.status == "completed" and done.state["approval"]["action"] == "reject"
        assert [(r.seq, r.record_hash) for r in app.audit.records(parent)] == before
        for run_id in (parent, fork.run_id):
            assert verify_run(app.audit, run_id).ok
            report = replay_run(app.audit, run_id)
            assert report.outcome == "identical", report.first_divergence
        assert "link verified" in " ".join(verify_run(app.audit, fork.run_id).notes)
        started = app.audit.last_event(fork.run_id, "run_started").detail["fork"]
        anchor = next(s for s in app.audit.records_of(parent, Step) if s.step_no == decide_step - 1)
        assert started["parent_record_hash"] == anchor.record_hash and started["requested_at"] == decide_step - 1


def test_a_fork_after_the_approval_keeps_it_and_a_fork_at_the_approval_goes_back_before_decide(settings):
    with Chainproof(settings, models=StaticModels(toy_model())) as app:
        parent = _parent(app)
        steps = {s.node: s.step_no for s in app.audit.records_of(parent, Step)}
        kept = app.fork(parent, steps["approve"])
        assert kept.status == "completed" and kept.state["approval"]["approver"] == "Ana"
        again = app.fork(parent, steps["decide"])  # inside the approval round: back to before decide
        assert again.status == "paused" and app.audit.get_run(again.run_id).forked_at_step < steps["decide"]


def test_bad_fork_requests_are_input_errors_and_record_nothing(settings):
    with Chainproof(settings, models=StaticModels(toy_model())) as app:
        parent = _parent(app)
        runs = len(app.audit.list_runs())
        with pytest.raises(InputError, match="--at: expected a step number"):
            app.fork(parent, -1)
        with pytest.raises(InputError, match="started_by"):
            app.fork(parent, 3, started_by="  ")
        assert len(app.audit.list_runs()) == runs
        zdr = app.start("toy", {"x": 2}, zdr=True)
        with pytest.raises(UserError, match="zero-data-retention"):
            app.fork(zdr.run_id, 2)
        assert not any(isinstance(r, EventRecord) and r.kind == "run_started" and "fork" in (r.detail or {})
                       for r in app.audit.records(zdr.run_id))


def test_rewriting_the_parent_breaks_the_forks_link(settings):
    from sqlalchemy import text

    with Chainproof(settings, models=StaticModels(toy_model())) as app:
        parent = _parent(app)
        fork = app.fork(parent, 5)
        link = app.audit.last_event(fork.run_id, "run_started").detail["fork"]["parent_record_hash"]
        with app.audit.engine.begin() as conn:  # an attacker rewrites the parent's record (and its hash)
            conn.execute(text("UPDATE steps SET title = 'forged', record_hash = :h WHERE record_hash = :old"),
                         {"h": "f" * 64, "old": link})
        result = verify_run(app.audit, fork.run_id)
        assert not result.ok and result.broken.kind == "fork-link"
        assert not verify_run(app.audit, parent).ok


def test_a_fork_at_or_after_the_end_is_refused(settings):
    with Chainproof(settings, models=StaticModels(toy_model())) as app:
        parent = _parent(app)
        last = max(s.step_no for s in app.audit.records_of(parent, Step))
        runs = len(app.audit.list_runs())
        for at in (last, 99999):
            with pytest.raises(InputError, match=f"step {at} is at or after the end of run {parent}"):
                app.fork(parent, at)
        assert len(app.audit.list_runs()) == runs
