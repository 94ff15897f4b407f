"""A decision through the web API on a run submitted to workers (``chainproof submit``) is
continued by a ``chainproof worker``, as from the CLI: the web process only records it and wakes
the run's workflow; it runs nothing of the run itself. Needs PostgreSQL (skipped otherwise)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.settings import Settings
from chainproof.web import create_app
from testkit import fleet
from testkit.web_app import PASSWORD

pytest.importorskip("dbos", reason="the workers extra (PyPI dbos) is not installed")
fleet.register_all()


def test_a_web_approval_of_a_submitted_run_is_continued_by_a_worker_not_the_web_process(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINPROOF_TEST_EFFECTS", str(tmp_path / "effects.log"))  # as the workers' (child_env)
    monkeypatch.setenv("CHAINPROOF_TEST_MODEL_LOG", str(tmp_path / "model.log"))
    procs = fleet.start_ready(pg_url, tmp_path, "w1", concurrency=1)
    settings = Settings(home=tmp_path / "web", database_url=pg_url, checkpoint_url=pg_url,
                        workers={"polling_interval_s": 0.1})
    engine = Chainproof(settings, models=StaticModels(fleet.fleet_model()))
    app = create_app(engine, workers=2)
    try:
        app.state.accounts.add("dana", PASSWORD, ["approver"], actor="test")
        run_id = engine.submit("fleet-gated", {"tag": "g", "n": 2}).run_id
        fleet.wait_status(engine, [run_id], "paused", procs)
        client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
        login = client.post("/api/login", json={"username": "dana", "password": PASSWORD})
        assert login.status_code == 200, login.text
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        pending = next(p for p in client.get("/api/pending").json() if p["run_id"] == run_id)
        r = client.post(f"/api/runs/{run_id}/decisions", json={
            "action": "approve", "request_id": pending["request_id"], "proposed_hash": pending["proposed_hash"]})
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "queued"
        fleet.wait_status(engine, [run_id], "completed", procs)
        outs = fleet.stop_workers(*procs)
        assert app.state.runner.jobs.get(run_id) is None  # the web app started nothing for it
        resumed = engine.audit.last_event(run_id, "run_resumed").detail
        assert resumed["worker"] == "w1"
        assert [o["status"] for o in outs if o["run_id"] == run_id and o["advanced"]] == ["paused", "completed"]
        assert not [o for o in outs if o.get("status") == "busy"]
        pids = {line.split()[-1] for line in fleet.lines(tmp_path / "effects.log")}
        assert pids == {str(procs[0].pid)}  # every step ran in the worker
    finally:
        fleet.stop_workers(*[p for p in procs if p.poll() is None])
        app.state.runner.shutdown()
        app.state.reader.close()
        engine.close()
