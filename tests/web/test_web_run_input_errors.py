"""Bad input to POST /api/runs, /fork and /resume: a 422 (or 409) naming the field, never a 500,
a server path, or a CLI option name."""

from __future__ import annotations

import os

AS_OF = "2018-02-08"


def _detail(r):
    return r.json()["detail"] if r.headers.get("content-type", "").startswith("application/json") else r.text


def _no_server_paths(web, text):
    home = str(web.app.state.settings.home)
    for shown in {home, os.path.expanduser("~")}:
        assert shown not in text, text


def test_start_inputs_of_the_wrong_type_or_naming_server_paths_are_422_naming_the_field(web, home, tmp_path):
    import shutil

    from chainproof.tools.dossier import bundled_root

    web.app.state.runner.submit = lambda run_id, what, call: None
    ana = web.client("ana")
    dd = {"company": "MMM", "as_of": AS_OF}
    for bad in (123, ["a"], {"a": 1}):
        r = ana.post("/api/runs", json={"graph": "due-diligence", "inputs": {**dd, "dossier": bad}})
        assert r.status_code == 422 and _detail(r).startswith("dossier: "), (bad, r.status_code, r.text)
    r = ana.post("/api/runs", json={"graph": "due-diligence", "inputs": {**dd, "dossier": "~"}})
    assert r.status_code == 422 and _detail(r).startswith("dossier: "), r.text
    _no_server_paths(web, r.text)
    evil = home / "dossiers" / "evil"
    evil.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(bundled_root() / "MMM", tmp_path / "outside")
    evil.symlink_to(tmp_path / "outside")  # a dossier name whose folder leads outside the input folders
    r = ana.post("/api/runs", json={"graph": "due-diligence", "inputs": {**dd, "dossier": "evil"}})
    assert r.status_code == 422 and _detail(r).startswith("dossier: 'evil' must be inside"), r.text
    assert str(tmp_path) not in r.text, r.text
    _no_server_paths(web, r.text)
    r = ana.post("/api/runs", json={"graph": "due-diligence", "inputs": {"company": 123, "as_of": AS_OF}})
    assert r.status_code == 422 and "company" in _detail(r), r.text


def test_fork_and_resume_answer_in_web_terms_before_accepting(web):
    from testkit.web_app import start

    ana = web.client("ana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")  # waiting at its approval, which nobody gave
    r = ana.post(f"/api/runs/{run_id}/resume", json={})
    assert r.status_code == 409 and "paused for approval" in _detail(r), r.text
    r = ana.post(f"/api/runs/{run_id}/resume", json={"budget_usd": 5})
    assert r.status_code == 422 and _detail(r).startswith("budget_usd: "), r.text
    dana = web.client("dana")
    [req] = dana.get("/api/pending").json()
    decided = dana.post(f"/api/runs/{run_id}/decisions", json={"action": "approve", "request_id": req["request_id"],
                                                             "proposed_hash": req["proposed_hash"]})
    assert decided.status_code == 202, decided.text
    web.wait(ana, run_id, "completed")
    r = ana.post(f"/api/runs/{run_id}/resume", json={})
    assert r.status_code == 409 and "is completed; there is nothing to resume" in _detail(r), r.text
    r = ana.post(f"/api/runs/{run_id}/fork", json={"at_step": 99})
    assert r.status_code == 422 and _detail(r).startswith("at_step: ") and "--at" not in r.text, r.text
