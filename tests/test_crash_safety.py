"""Crash safety, case by case (issue 12 §6; the 50-kill test is tests/test_crash_kills.py): the
journal that numbers step attempts and keeps side-effect tool calls to one execution, the pause
window repaired from the checkpoint, orphan runs named by ``verify`` and marked by ``resume``, and
the test-only kill points inert without their variable."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from chainproof import _killpoints
from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import EventRecord
from chainproof.checkpoints.audit_tables import runs, utcnow
from chainproof.checkpoints.journal import UNKNOWN_OUTCOME, RecordedToolFailure
from chainproof.checkpoints.verify import verify_run
from chainproof.cli import app as cli
from chainproof.errors import RunNotResumable
from chainproof.graphs.recorder import StepRecorder
from chainproof.settings import Settings
from testkit import crash
from testkit.environ import without_settings
from testkit.fleet import REPO, lines

crash.register_crash()


def _started(settings: Settings) -> tuple[Chainproof, str]:
    app = Chainproof(settings, models=StaticModels(crash.crash_model()))
    app.audit.start_run("r1", graph="crash", goal="g", inputs={})
    return app, "r1"


def test_a_side_effect_call_runs_once_and_its_recorded_result_is_reused(settings):
    app, run_id = _started(settings)
    calls = []

    def call():
        calls.append(1)
        return {"sent": True, "auth": "Authorization: Bearer abcdefghijklmnop1234"}, None

    journal = app.audit.journal
    first = journal.run_once(run_id, 3, "act", "k1", "send", call)
    again = journal.run_once(run_id, 3, "act", "k1", "send", call)
    assert calls == [1] and first[2] == "ran" and again[2] == "reused"
    assert again[0]["sent"] is True and "abcdefghijklmnop1234" not in str(again[0])  # the journal is redacted
    # the same call in another step is another call
    assert journal.run_once(run_id, 4, "act", "k1", "send", call)[2] == "ran" and len(calls) == 2

    def boom():
        calls.append(1)
        raise ConnectionError("mail server down")

    with pytest.raises(ConnectionError):
        journal.run_once(run_id, 5, "act", "k1", "send", boom)
    with pytest.raises(RecordedToolFailure, match="mail server down"):  # raised again, not called again
        journal.run_once(run_id, 5, "act", "k1", "send", boom)
    assert len(calls) == 3
    app.close()


def test_a_side_effect_call_started_and_never_finished_is_not_run_again(settings):
    app, run_id = _started(settings)
    journal = app.audit.journal

    def killed_midway():
        raise KeyboardInterrupt  # stands for the process dying inside the tool: nothing journaled after

    with pytest.raises(KeyboardInterrupt):
        journal.run_once(run_id, 2, "act", "k", "send", killed_midway)
    result, refusal, how = journal.run_once(run_id, 2, "act", "k", "send", lambda: pytest.fail("ran twice"))
    assert (result, how) == (None, "unknown") and refusal.startswith(UNKNOWN_OUTCOME) and "send" in refusal
    app.close()


def _execute(audit, run_id: str, step_no: int, node: str, *, finish: bool = True) -> StepRecorder:
    """One execution of a node: its recorder opens (the step_started claim); ``finish=False`` stands
    for a process that died before the node's records were appended."""
    rec = StepRecorder(audit, run_id, step_no, node, kind="tool", title=f"{node} {step_no}")
    rec.__enter__()
    if finish:
        rec.__exit__(None, None, None)
    else:
        rec._held_block.__exit__(None, None, None)
    return rec


def test_attempts_are_numbered_by_step_started_events_across_processes_and_pauses(settings):
    app, run_id = _started(settings)
    assert (_execute(app.audit, run_id, 1, "act").attempt, _execute(app.audit, run_id, 2, "act").attempt) == (1, 1)
    crashed = _execute(app.audit, run_id, 3, "act", finish=False)  # killed mid-node: started, never recorded
    assert crashed.attempt == 1
    app.close()
    # a new process (a fresh store on the same file) knows nothing in memory: it reads the run's events
    again = Chainproof(settings, models=StaticModels(crash.crash_model()))
    rec = _execute(again.audit, run_id, 3, "act")
    assert rec.attempt == 2 and rec._earlier == [{"attempt": 1, "recorded": False}]
    steps = [s for s in again.audit.records_of(run_id, "steps") if s.step_no == 3]
    assert [s.output.get("attempt") for s in steps] == [2]
    started = [e.detail for e in again.audit.records_of(run_id, "events") if e.kind == "step_started" and e.detail["step_no"] == 3]
    assert [d.get("attempt") for d in started] == [None, 2]
    reexecuted = [e.detail for e in again.audit.records_of(run_id, "events") if e.kind == "step_reexecuted"]
    assert [(d["step_no"], d["attempt"], d["earlier"]) for d in reexecuted] == [(3, 2, [{"attempt": 1, "recorded": False}])]
    # a recorded step run again (killed between its append and the checkpoint) is attempt 2 of a recorded 1
    assert _execute(again.audit, run_id, 2, "act")._earlier == [{"attempt": 1, "recorded": True}]
    # a second process appending to the run meanwhile: this one sees its claim (the head moved) and numbers on
    other = Chainproof(settings, models=StaticModels(crash.crash_model()))
    assert _execute(other.audit, run_id, 4, "act", finish=False).attempt == 1
    assert _execute(again.audit, run_id, 4, "act").attempt == 2
    assert again.audit.journal.attempts(run_id)[(4, "act")] == [{"attempt": 1, "recorded": False},
                                                                 {"attempt": 2, "recorded": True}]
    # a node that paused runs again on resume as the same attempt: a pause is not a repetition
    _execute(again.audit, run_id, 5, "approve", finish=False)
    again.audit.append(run_id, EventRecord(kind="run_paused", detail={"step_no": 5}))
    assert _execute(again.audit, run_id, 5, "approve").attempt == 1
    assert verify_run(again.audit, run_id).ok
    other.close()
    again.close()


def _child(home: Path, kill_at: str, tmp: Path) -> subprocess.CompletedProcess:
    env = without_settings()
    env.update(CHAINPROOF_HOME=str(home), CHAINPROOF_TEST_KILL_AT=kill_at, CHAINPROOF_TEST_EFFECTS=str(tmp / "fx.log"),
               CHAINPROOF_TEST_MODEL_LOG=str(tmp / "model.log"))
    return subprocess.run([sys.executable, "-c", crash.DRIVER, "run1", "2", "0"], cwd=REPO, env=env, text=True,
                          capture_output=True, timeout=120)


def test_a_kill_in_the_pause_window_is_repaired_and_the_run_can_be_approved(home, tmp_path, monkeypatch):
    done = _child(home, "pause.window:1", tmp_path)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    monkeypatch.setenv("CHAINPROOF_TEST_EFFECTS", str(tmp_path / "fx.log"))
    with Chainproof(Settings(home=home), models=StaticModels(crash.crash_model())) as app:
        assert app.audit.run_status("run1") == "started"  # the pause was never recorded
        assert app.pending_requests("run1")  # the request is listed, and the pause recorded from the checkpoint
        paused = app.audit.last_event("run1", "run_paused")
        assert app.audit.run_status("run1") == "paused" and paused.detail["repaired"] is True
        assert app.decide("run1", action="approve", approver="dana").status == "completed"
        assert verify_run(app.audit, "run1").ok
    assert sorted(line.split()[1] for line in lines(tmp_path / "fx.log")) == ["s1", "s2"]


def test_a_step_run_again_after_a_kill_is_shown_as_a_repeated_attempt(home, tmp_path, monkeypatch):
    # audit.after:7 = run_started, then step_started and the step's records of plan (1), act (2) and
    # observe (3): killed after observe's records, before its checkpoint; so observe runs again and its
    # model request is sent again
    done = _child(home, "audit.after:7", tmp_path)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    monkeypatch.setenv("CHAINPROOF_TEST_EFFECTS", str(tmp_path / "fx.log"))
    monkeypatch.setenv("CHAINPROOF_TEST_MODEL_LOG", str(tmp_path / "model.log"))
    with Chainproof(Settings(home=home), models=StaticModels(crash.crash_model())) as app:
        assert crash.drive(app, "run1", 2) == "paused"
        steps = app.audit.records_of("run1", "steps")
        assert [(s.step_no, s.node, (s.output or {}).get("attempt")) for s in steps][:4] == [
            (1, "plan", None), (2, "act", None), (3, "observe", None), (3, "observe", 2)]
        event = app.audit.last_event("run1", "step_reexecuted")
        assert event.detail == {"step_no": 3, "node": "observe", "attempt": 2, "model_requests": 1,
                                "earlier": [{"attempt": 1, "recorded": True}]}
    shown = CliRunner().invoke(cli, ["show", "run1"], env={"CHAINPROOF_HOME": str(home), "COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "3 (attempt 2)" in shown.output
    assert "step 3 (observe) executed again as attempt 2 after attempt 1 (recorded); model requests sent again: 1" \
        in shown.output.replace("\n", " ")
    # the first observe's request twice, the second's once, then decide's: each one recorded
    assert len(lines(tmp_path / "model.log")) == 4
    with Chainproof(Settings(home=home), models=StaticModels(crash.crash_model())) as app:
        assert len(app.audit.records_of("run1", "model_calls")) == 4
        assert app.decide("run1", action="approve", approver="dana").status == "completed"
        assert app.replay("run1").outcome == "identical"  # the final execution of each step is what replays


def test_an_orphan_run_is_named_by_verify_and_marked_by_resume(settings):
    with Chainproof(settings, models=StaticModels(crash.crash_model())) as app:
        with app.audit.engine.begin() as conn:  # a header without run_started, as older versions could leave
            conn.execute(insert(runs).values(run_id="orph", graph="crash", goal="g", inputs={}, created_at=utcnow(),
                                             zdr=False))
        result = verify_run(app.audit, "orph")
        assert not result.ok and result.broken.kind == "orphan" and "chainproof resume orph" in result.broken.detail
        with pytest.raises(RunNotResumable, match="never started .* recorded as failed"):
            app.resume("orph")
        assert app.audit.run_status("orph") == "failed" and verify_run(app.audit, "orph").ok
        with pytest.raises(RunNotResumable):  # marked once
            app.resume("orph")
        assert [e.kind for e in app.audit.records_of("orph", "events")] == ["run_started", "run_failed"]


def test_start_writes_the_header_and_run_started_together(settings):
    with Chainproof(settings, models=StaticModels(crash.crash_model())) as app:
        app.audit.start_run("twice", graph="crash", goal="g", inputs={})
        with pytest.raises(Exception, match="already exists"):
            app.audit.start_run("twice", graph="crash", goal="g", inputs={})
        assert [e.kind for e in app.audit.records_of("twice", "events")] == ["run_started"]
        assert verify_run(app.audit, "twice").ok


def test_kill_points_are_inert_without_their_variable_and_refuse_unknown_names(monkeypatch):
    monkeypatch.delenv(_killpoints.ENV, raising=False)
    _killpoints.reach("audit.before")  # nothing happens
    monkeypatch.setenv(_killpoints.ENV, "audit.befor:1")
    with pytest.raises(ValueError, match="unknown kill point 'audit.befor'"):
        _killpoints.reach("audit.before")
    monkeypatch.setenv(_killpoints.ENV, "audit.before:1000000")
    _killpoints.reach("audit.before")  # counted, far from its N-th pass
