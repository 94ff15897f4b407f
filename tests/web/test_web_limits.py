"""Limits and small promises of the web app, each attacked: oversized bodies and fields (never
echoed back), files readable by others, serving beyond this machine without a word, decision
buttons for an approver the policy does not name, events without an id, and a decision that does
not say which proposal it saw."""

from __future__ import annotations

import stat

import pytest
from typer.testing import CliRunner

import chainproof.web as web_module
from chainproof.cli import app as cli
from chainproof.web import exposure_warning
from chainproof.web._security import TEXT_MAX_CHARS
from testkit.web_app import PASSWORD, safe_page, start

HUGE = "A" * (5 * 2**20)


def _paused(web):
    ana = web.client("ana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    [req] = web.client("dana").get("/api/pending").json()
    return run_id, req


def _decided(web, run_id):
    return [a for a in web.engine.audit.records_of(run_id, "approvals") if a.action != "requested"]


def test_oversized_bodies_and_fields_are_refused_naming_the_limit_and_never_echoed(web):
    run_id, req = _paused(web)
    dana = web.client("dana")
    url = f"/api/runs/{run_id}/decisions"
    body = {"action": "approve", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"]}
    r = dana.post(url, json={**body, "comment": HUGE})  # 5 MB, with a Content-Length
    assert r.status_code == 413 and "1,048,576 bytes" in r.json()["detail"] and len(r.text) < 500
    chunks = (b'{"action": "approve", "comment": "' + b"A" * 2**16 for _ in range(40))  # no Content-Length
    r = dana.post(url, content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413 and len(r.text) < 500
    r = dana.post(url, json={**body, "comment": "B" * (TEXT_MAX_CHARS + 1)})
    assert r.status_code == 422 and "comment" in r.json()["detail"] and f"{TEXT_MAX_CHARS}" in r.json()["detail"]
    assert "B" * 100 not in r.text
    r = web.client("root").post("/api/accounts", json={"username": "u" * 300, "password": PASSWORD, "roles": ["analyst"]})
    assert r.status_code == 422 and "username" in r.json()["detail"] and "u" * 250 not in r.text
    # a graph's own error quoting a long input is cut, not sent back whole
    r = web.client("ana").post("/api/runs", json={"graph": "web-toy", "inputs": {"x": "C" * 600_000}})
    assert r.status_code == 422 and r.json()["detail"].startswith("x: expected an integer") and len(r.text) < 1500
    page = web.page("dana")
    r = page.post(f"/inbox/{run_id}/{req['request_id']}/decide",
                  data={"csrf": page.csrf, "action": "approve", "proposed_hash": req["proposed_hash"],
                        "comment": "D" * (TEXT_MAX_CHARS + 1)})
    text = safe_page(r, 422)
    assert f"comment: at most {TEXT_MAX_CHARS:,} characters" in text and "D" * 100 not in text
    assert _decided(web, run_id) == []  # nothing was decided by any of these


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_stores_and_folders_chainproof_creates_are_private(web, home):
    assert _mode(home) == 0o700 and _mode(home / "audit.sqlite") == 0o600
    run_id, req = _paused(web)
    dana = web.client("dana")
    r = dana.post(f"/api/runs/{run_id}/decisions", json={"action": "approve", "request_id": req["request_id"],
                                                          "proposed_hash": req["proposed_hash"]})
    assert r.status_code == 202
    web.wait(web.client("ana"), run_id, "completed")
    assert _mode(home / "checkpoints.sqlite") == 0o600 and _mode(home / "locks") == 0o700
    wal = [p for p in home.iterdir() if p.name.endswith(("-wal", "-shm"))]
    assert wal and all(_mode(p) == 0o600 for p in wal)  # SQLite gives them the database's mode
    assert _mode(home / "reports") == 0o700
    runner = CliRunner()  # `chainproof login` keeps its token readable by its owner only
    assert runner.invoke(cli, ["login", "aud", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    assert _mode(home / "credentials.json") == 0o600


@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("::", True), ("192.168.1.20", True),
                                          ("chainproof.example.com", True), ("127.0.0.1", False),
                                          ("::1", False), ("[::1]", False), ("localhost", False)])
def test_serving_beyond_this_machine_warns_on_stderr(home, monkeypatch, host, warned):
    served = []
    monkeypatch.setattr(web_module, "create_app", lambda: "app")
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: served.append(kw))
    out = CliRunner().invoke(cli, ["serve", "--host", host, "--port", "8123"])
    assert out.exit_code == 0, out.output
    # and by default no client may set its address through X-Forwarded-For (web.forwarded_allow_ips = [])
    assert served == [{"host": host, "port": 8123, "proxy_headers": False, "forwarded_allow_ips": []}]
    assert ("reverse proxy with TLS" in out.stderr) is warned and "warning" not in out.stdout
    assert (exposure_warning(host) is not None) is warned


def test_the_inbox_offers_decisions_only_to_approvers_the_policy_allows(web):
    run_id, req = _paused(web)
    web.client("root").post("/api/accounts", json={"username": "eve", "password": PASSWORD, "roles": ["approver"]})
    decide = f"/inbox/{run_id}/{req['request_id']}/decide"
    for name, allowed in (("dana", True), ("lee", True), ("eve", False)):  # lee through role:credit-committee
        inbox = safe_page(web.page(name).get("/inbox"))
        assert req["request_id"] in inbox
        assert (decide in inbox and "/edit" in inbox) is allowed, name
        assert ("does not name you" in inbox) is not allowed
        assert [p["may_decide"] for p in web.client(name).get("/api/pending").json()] == [allowed]
    eve = web.page("eve")
    assert eve.get(f"/inbox/{run_id}/{req['request_id']}/edit").status_code == 403
    r = eve.post(decide, data={"csrf": eve.csrf, "action": "approve", "proposed_hash": req["proposed_hash"]})
    assert r.status_code == 403 and "may not decide" in r.text  # the server refuses whatever the page shows
    assert _decided(web, run_id) == []


def test_every_event_has_its_audit_seq_as_id_the_started_event_too(web):
    run_id, _ = _paused(web)
    blocks, fields = [], {}
    with web.client("aud").stream("GET", f"/api/runs/{run_id}/events") as r:
        for line in r.iter_lines():
            if not line and fields:
                blocks.append(fields)
                fields = {}
                if blocks[-1].get("event") == "paused":
                    break
            elif line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
    assert blocks[0]["event"] == "started" and all("id" in b for b in blocks), blocks
    started = next(e for e in web.engine.audit.records_of(run_id, "events") if e.kind == "run_started")
    assert blocks[0]["id"] == str(started.seq)


def test_a_decision_must_name_the_proposal_it_saw(web):
    run_id, req = _paused(web)
    dana = web.client("dana")
    url = f"/api/runs/{run_id}/decisions"
    for hashed in ({}, {"proposed_hash": None}, {"proposed_hash": "abc"}, {"proposed_hash": req["proposed_hash"].upper()}):
        r = dana.post(url, json={"action": "approve", "request_id": req["request_id"], **hashed})
        assert r.status_code == 422 and "proposed_hash" in r.json()["detail"], r.text
    page = web.page("dana")
    r = page.post(f"/inbox/{run_id}/{req['request_id']}/decide", data={"csrf": page.csrf, "action": "approve"})
    assert "proposed_hash" in safe_page(r, 422)
    assert _decided(web, run_id) == []
    schema = web.client().get("/openapi.json").json()["components"]["schemas"]["Decision"]
    assert "proposed_hash" in schema["required"]
    inbox = safe_page(page.get("/inbox"))  # the page's forms send the hash they show
    assert inbox.count(f'name="proposed_hash" value="{req["proposed_hash"]}"') == 2
    r = dana.post(url, json={"action": "approve", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"]})
    assert r.status_code == 202
