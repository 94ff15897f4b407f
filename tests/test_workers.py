"""Runs as DBOS workflows on the real PostgreSQL: submitted runs taken by worker processes that
share nothing but the database URL (each its own CHAINPROOF_HOME), each run advanced exactly once
(counted by the tools' side-effect log and the model's request log); approvals decided in a third
process and continued by whichever worker is free, with no worker slot held while a run waits;
two workers contending for one run. Without PostgreSQL, submit and worker say what to set."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

import chainproof.cli as cli
from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import EventRecord, ModelCallRecord, Step
from chainproof.checkpoints.verify import verify_run
from chainproof.settings import Settings
from testkit import fleet

pytest.importorskip("dbos", reason="the workers extra (PyPI dbos) is not installed")
from chainproof import workers

fleet.register_all()



def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings(home=tmp_path / "submitter", database_url=url, checkpoint_url=url,
                    workers={"polling_interval_s": 0.1})


def _workers(url: str, tmp_path: Path, *names: str, concurrency: int = 2, delay_s: float = 0.0) -> list[subprocess.Popen]:
    return fleet.start_ready(url, tmp_path, *names, concurrency=concurrency, delay_s=delay_s)


_wait = fleet.wait_status


def _reference_requests(tmp_path: Path, graph: str, n: int) -> int:
    """Model requests of one run of ``graph`` in this process (SQLite): what each run should cost."""
    model = fleet.fleet_model()
    with Chainproof(Settings(home=tmp_path / "reference"), models=StaticModels(model)) as app:
        app.start(graph, {"tag": "ref", "n": n})
    return len(model.calls)


def test_twenty_submitted_runs_two_workers_each_run_exactly_once(pg_url, tmp_path):
    per_run = _reference_requests(tmp_path, "fleet", 4)
    procs = _workers(pg_url, tmp_path, "w1", "w2")
    with Chainproof(_settings(tmp_path, pg_url), models=StaticModels(fleet.fleet_model())) as app:
        submitted = [app.submit("fleet", {"tag": f"t{i}", "n": 4}) for i in range(20)]
        assert {r.status for r in submitted} == {"queued"}
        ids = [r.run_id for r in submitted]
        _wait(app, ids, "completed", procs)
        outs = fleet.stop_workers(*procs)
        assert all(verify_run(app.audit, r).ok for r in ids)
        assert app.replay(ids[0]).outcome == "identical"  # a submitted run replays like any other
        for r in ids:  # queued, then advanced by a worker that names itself, then completed
            kinds = [e.kind for e in app.audit.records_of(r, EventRecord) if e.kind.startswith("run_")]
            assert kinds == ["run_started", "run_queued", "run_resumed", "run_completed"], kinds
            assert app.audit.last_event(r, "run_resumed").detail["worker"] in ("w1", "w2")
        recorded = sum(len(app.audit.records_of(r, ModelCallRecord)) for r in ids)
    effects = [line.split() for line in fleet.lines(tmp_path / "effects.log")]
    assert Counter((tag, step) for tag, step, _ in effects) == {(f"t{i}", f"s{j}"): 1 for i in range(20) for j in range(1, 5)}
    assert len({pid for _, _, pid in effects}) == 2  # both worker processes ran some
    model_log = fleet.lines(tmp_path / "model.log")
    assert len(model_log) == recorded == 20 * per_run  # no model request was made twice
    assert sorted(o["run_id"] for o in outs if o["advanced"]) == sorted(ids)  # one advance per run
    with psycopg.connect(pg_url) as conn:  # DBOS kept JSON, never pickle
        rows = conn.execute("SELECT DISTINCT serialization FROM dbos.workflow_status").fetchall()
    assert rows == [("portable_json",)]


def test_an_approval_from_a_third_process_is_continued_by_a_free_worker(pg_url, tmp_path):
    procs = _workers(pg_url, tmp_path, "w1", "w2", concurrency=1)
    with Chainproof(_settings(tmp_path, pg_url), models=StaticModels(fleet.fleet_model())) as app:
        gated = [app.submit("fleet-gated", {"tag": f"g{i}", "n": 2}).run_id for i in range(3)]
        _wait(app, gated, "paused", procs)
        # three runs wait for a person, two workers of one slot each: the waits hold no slot
        free = [app.submit("fleet", {"tag": f"f{i}", "n": 2}).run_id for i in range(2)]
        _wait(app, free, "completed", procs)
        env = fleet.child_env(tmp_path / "home-approver", pg_url, tmp_path,
                              CHAINPROOF_GRAPHS='["testkit.fleet:GatedFleetChain"]')
        approver = subprocess.Popen([sys.executable, "-m", "chainproof.cli", "approve", gated[1], "--as", "Dana"],
                                    cwd=fleet.REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stdout, stderr = approver.communicate(timeout=120)
        assert approver.returncode == 0, stderr
        assert "queued" in stdout and gated[1] in stdout
        _wait(app, [gated[1]], "completed", procs)
        outs = fleet.stop_workers(*procs)
        steps = [s.node for s in app.audit.records_of(gated[1], Step)]
        assert steps.count("approve") == 1 and steps.count("report") == 1
        request_id = app.audit.last_event(gated[1], "run_paused").detail["requests"][0]["request_id"]
        assert app.audit.decision_for(request_id).approver == "Dana"
        resumed = app.audit.last_event(gated[1], "run_resumed").detail
        assert resumed["worker"] in ("w1", "w2") and resumed["reapplied"] == 1
        assert [app.audit.run_status(r) for r in (gated[0], gated[2])] == ["paused", "paused"]
        assert verify_run(app.audit, gated[1]).ok
    continued = [o for o in outs if o["run_id"] == gated[1] and o["advanced"]]
    assert len(continued) == 2  # its start, then the decision: each advanced once
    # the model was called by the workers only, never by the process that approved
    assert set(fleet.lines(tmp_path / "model.log")) <= {str(p.pid) for p in procs}
    assert str(approver.pid) not in fleet.lines(tmp_path / "model.log")


def test_two_workers_contending_for_one_run_one_advances_the_other_skips(pg_url, tmp_path):
    procs = _workers(pg_url, tmp_path, "w1", "w2", concurrency=1, delay_s=0.3)
    settings = _settings(tmp_path, pg_url)
    with Chainproof(settings, models=StaticModels(fleet.fleet_model())) as app:
        run_id = app.submit("fleet", {"tag": "c", "n": 3}).run_id
        workers.enqueue(settings, run_id, settings.workers.queue, f"{run_id}:again")  # a second wake-up at once
        _wait(app, [run_id], "completed", procs)
        time.sleep(1.0)  # let the second workflow finish too
        outs = [o for o in fleet.stop_workers(*procs) if o["run_id"] == run_id]
        assert verify_run(app.audit, run_id).ok
    assert len(outs) == 2 and sorted(o["advanced"] for o in outs) == [False, True], outs
    skipped = next(o for o in outs if not o["advanced"])
    assert skipped["status"] in ("busy", "completed")  # busy while the other ran, or nothing left after it
    effects = [line.split() for line in fleet.lines(tmp_path / "effects.log")]
    assert sorted(step for _, step, _ in effects) == ["s1", "s2", "s3"] and len({pid for *_, pid in effects}) == 1


def test_a_run_whose_advance_fails_for_good_is_recorded_as_failed_with_how_to_resume(pg_url, tmp_path):
    env = fleet.child_env(tmp_path / "home-w1", pg_url, tmp_path)
    setup = ("from testkit.fleet import fleet_model, register_all, tampered; register_all(); "
             "import chainproof.workers as w; w.continuation = tampered")
    proc = subprocess.Popen([sys.executable, "-c", fleet.worker_script(setup, "StaticModels(fleet_model(delay))"),
                             "w1", "1", "0"], cwd=fleet.REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().startswith('{"ready"')
    with Chainproof(_settings(tmp_path, pg_url), models=StaticModels(fleet.fleet_model())) as app:
        run_id = app.submit("fleet", {"tag": "t", "n": 2}).run_id
        _wait(app, [run_id], "failed", [proc], timeout=60)
        outs = fleet.stop_workers(proc)
        error = app.audit.last_event(run_id, "run_failed").detail["error"]
        assert "RecordTampered" in error and f"chainproof resume {run_id}" in error
        assert "w1" in error
    assert [(o["run_id"], o["status"]) for o in outs] == [(run_id, "failed")]  # the worker's log says so too
    assert not fleet.lines(tmp_path / "effects.log")  # nothing of the run ran


def test_the_reason_a_worker_gave_up_is_the_last_error_of_its_retries():
    from dbos._error import DBOSMaxStepRetriesExceeded

    exc = DBOSMaxStepRetriesExceeded("chainproof.advance", 5, [OSError("too many clients")] * 5)
    assert workers.gave_up_reason(exc) == "OSError: too many clients (after 5 attempts)"


def test_an_undeclared_or_malformed_queue_is_refused_naming_the_known_queues(pg_url, tmp_path, monkeypatch):
    for k, v in {"CHAINPROOF_HOME": str(tmp_path / "cli"), "CHAINPROOF_DATABASE_URL": pg_url,
                 "CHAINPROOF_CHECKPOINT_URL": pg_url,
                 "CHAINPROOF_WORKERS__QUEUE_LIMITS": '{"batch": {}}'}.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    out = runner.invoke(cli.app, ["submit", "fleet", "--input", "tag=t", "--queue", "nosuchqueue"])
    assert out.exit_code == 2, out.output
    assert "--queue" in out.output and "'nosuchqueue'" in out.output and "batch, chainproof-runs" in out.output
    with Chainproof(_settings(tmp_path, pg_url), models=StaticModels(fleet.fleet_model())) as app:
        assert app.audit.list_runs() == []  # refused before anything was recorded
    for given, said in (("bad queue!", "letters, digits"), ("", "separated by commas"), ("batch,", "separated by commas"),
                        ("other", "known queues: batch, chainproof-runs")):
        out = runner.invoke(cli.app, ["worker", "--queues", given])
        assert out.exit_code == 2 and "--queues" in out.output and said in out.output, (given, out.output)
    out = runner.invoke(cli.app, ["schedule", "add", "nightly", "--cron", "0 6 * * *", "--graph", "fleet",
                                  "--input", "tag=t", "--queue", "nosuchqueue"])
    assert out.exit_code == 2 and "known queues" in out.output, out.output


def test_submit_and_worker_without_postgres_name_the_settings(home):
    for args in (["submit", "fleet", "--tag", "x"], ["worker"]):
        result = CliRunner().invoke(cli.app, args)
        assert result.exit_code == 2, result.output
        assert "need PostgreSQL" in result.output and "CHAINPROOF_DATABASE_URL" in result.output
    assert not (home / "audit.sqlite").exists()  # nothing was recorded
    settings = Settings(home=home)
    with Chainproof(settings, models=StaticModels(fleet.fleet_model())) as app:  # the default still runs here
        assert app.start("fleet", {"tag": "local", "n": 2}).status == "completed"
        with pytest.raises(Exception, match="need PostgreSQL"):
            app.submit("fleet", {"tag": "x", "n": 2})
        assert len(app.audit.list_runs()) == 1
