"""Runs against the fault-injecting server: attempts in the audit trail, a run that ran out of
retries resumes from its checkpoint later, malformed decisions end in a clear, resumable error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chainproof.agents.config import EndpointSettings, ModelSettings
from chainproof.agents.models import ConfiguredModels, StaticModels
from chainproof.agents.resilience import ModelCallFailed
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.agents.structured import StructuredOutputError
from chainproof.app import Chainproof, RunNotResumable
from chainproof.checkpoints.audit_schema import EventRecord, ModelCallRecord, Step
from chainproof.cli import app as cli
from chainproof.graphs.registry import register
from testkit import toy_graph
from testkit.clock import FakeClock
from testkit.dd_answers import responder as dd_responder
from testkit.fake_openai import FakeOpenAI
from testkit.toy_graph import ToyGraph

pytestmark = pytest.mark.usefixtures("fresh_registries")

register("toy", ToyGraph)
VERDICT = json.dumps({"verdict": "yes", "reason": "98 is large enough"})


def toy_responder(body: dict) -> str:
    return VERDICT if "Reply with exactly one JSON object" in body["messages"][0]["content"] else "Noted."


def _engine(settings, base_url: str, clock: FakeClock, **retry) -> Chainproof:
    model = ModelSettings(provider="openai", model="fake-model", api_key="sk-test",
                          endpoints=[EndpointSettings(name="primary", base_url=base_url)],
                          retry={"max_attempts": 3, **retry})
    return Chainproof(settings, models=ConfiguredModels(model, settings.local, Path("/x"), clock=clock, sleep=clock.sleep))


def test_retries_and_their_waits_are_in_the_audit_trail(settings):
    clock = FakeClock()
    with FakeOpenAI(toy_responder) as server, _engine(settings, server.base_url, clock) as app:
        server.inject("503", times=2)
        run = app.start("toy", {"x": 7})
        assert run.status == "paused" and app.audit.run_status(run.run_id) == "paused"
        steps = app.audit.records_of(run.run_id, Step)
        events = [e for e in app.audit.records_of(run.run_id, EventRecord) if e.kind == "model_retry"]
        calls = app.audit.records_of(run.run_id, ModelCallRecord)
    first = next(s for s in steps if "model_attempts" in s.output)
    assert [a["error_class"] for a in first.output["model_attempts"]] == ["OpenAIAPIError", "OpenAIAPIError", None]
    assert [(e.detail["step_no"], e.detail["attempt"], e.detail["status_code"]) for e in events] == [
        (first.step_no, 1, 503), (first.step_no, 2, 503)]
    assert events[1].detail["wait_s"] == pytest.approx(clock.slept[0], abs=1e-4) and clock.slept[0] > 0
    assert len(calls) == 4  # one model_calls row per answered call; the attempts live in steps and events


def test_a_run_out_of_retries_resumes_later_from_its_checkpoint_and_completes(settings):
    toy_graph.CALLS.clear()
    clock = FakeClock()
    served = []

    def flaky(body: dict) -> str:  # the endpoint goes down after answering two calls
        served.append(body)
        if len(served) == 2:
            server.inject("503", times=None)
        return toy_responder(body)

    with FakeOpenAI(flaky) as server, _engine(settings, server.base_url, clock) as app:
        with pytest.raises(ModelCallFailed, match="endpoint 'primary'.*503.*all 3 attempts used") as failed:
            app.start("toy", {"x": 7}, run_id="flaky-run")
        assert any("chainproof resume flaky-run" in note for note in failed.value.__notes__)
        assert app.audit.run_status("flaky-run") == "failed"
        steps_before = app.audit.records_of("flaky-run", Step)
        assert steps_before[-1].status == "error" and steps_before[-1].title == "Think"
        assert [e.kind for e in app.audit.records_of("flaky-run", EventRecord)][-2:] == ["model_failed", "run_failed"]

        server.heal()  # later, the endpoint is back
        resumed = app.resume("flaky-run")
        assert resumed.status == "paused"
        done = app.decide("flaky-run", action="approve", approver="Dana")
        assert done.status == "completed"
        steps = app.audit.records_of("flaky-run", Step)
    ok_before = [(s.step_no, s.title) for s in steps_before if s.status == "ok"]
    ok_after = [(s.step_no, s.title) for s in steps if s.status == "ok"]
    assert ok_after[: len(ok_before)] == ok_before and len(ok_after) == len(set(ok_after))  # nothing ran twice
    assert toy_graph.CALLS == {"count": 1, "double": 1}
    assert len(served) == 4  # 2 before the failure + the retried "Think" + the decision


class NoFallbackToy(ToyGraph):
    name = "toy-strict"

    def fallback_decision(self, view, errors):
        return None


register("toy-strict", NoFallbackToy)


def test_a_decision_invalid_after_bounded_attempts_is_a_clear_error_and_the_run_resumes(settings):
    model = ScriptedChatModel(replies=["a", "b", "c", "not json", '{"verdict": "maybe"}', "{}", VERDICT])
    with Chainproof(settings, models=StaticModels(model)) as app:
        with pytest.raises(StructuredOutputError, match="no answer valid for Verdict after 3 attempt.*last error.*verdict"):
            app.start("toy-strict", {"x": 3}, run_id="strict")
        assert app.audit.run_status("strict") == "failed"
        assert app.resume("strict").status == "paused"
        assert app.pending_requests("strict")[0]["proposed"]["verdict"] == "yes"
        with pytest.raises(RunNotResumable, match="paused for approval"):
            app.resume("strict")
        app.decide("strict", action="approve", approver="Lee")
        with pytest.raises(RunNotResumable, match="completed"):
            app.resume("strict")


def test_cli_run_fails_with_the_cause_and_resume_finishes_it(home, monkeypatch):
    with FakeOpenAI(dd_responder) as server:
        for key, value in {"PROVIDER": "openai", "MODEL": "fake-model", "BASE_URL": server.base_url,
                           "RETRY__MAX_ATTEMPTS": "2", "RETRY__INITIAL_WAIT_S": "0", "RETRY__JITTER_S": "0"}.items():
            monkeypatch.setenv(f"CHAINPROOF_MODEL__{key}", value)
        server.inject("reset", times=None)
        failed = CliRunner().invoke(cli, ["run", "due-diligence", "--company", "MMM", "--as-of", "2018-02-08"])
        assert failed.exit_code == 1, failed.output
        assert "endpoint 'default'" in failed.output and "Connection error" in failed.output and "Connection reset by peer" in failed.output
        run_id = failed.output.split("chainproof resume ")[1].split("`")[0]
        server.heal()
        resumed = CliRunner().invoke(cli, ["resume", run_id])
        assert resumed.exit_code == 0, resumed.output
        assert "Approval needed" in resumed.output
    unknown = CliRunner().invoke(cli, ["resume", "nope"])
    assert unknown.exit_code == 2 and "no run 'nope'" in unknown.output
