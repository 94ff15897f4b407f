"""Who may do what: every role allowed and refused, CSRF, stale and second decisions, edits
checked against the schema, tokens revoked mid-session, sign-in throttling, and no secret out."""

from __future__ import annotations

import json
import logging

import pytest

from chainproof.checkpoints.auth_log import auth_events, verify_auth_log
from testkit.web_app import PASSWORD, start


def test_roles_allowed_and_refused(web):
    anon, ana, bob, dana, aud, root = (web.client(n) for n in (None, "ana", "bob", "dana", "aud", "root"))
    assert anon.get("/api/runs").status_code == 401 and anon.get("/api/graphs").status_code == 401
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    assert aud.post("/api/runs", json={"graph": "web-toy", "inputs": {"x": 1}}).status_code == 403  # auditors read only
    assert dana.post("/api/runs", json={"graph": "web-toy", "inputs": {"x": 1}}).status_code == 403
    assert ana.post("/api/runs", json={"graph": "web-toy", "inputs": {"x": 1}, "department": "Treasury"}).status_code == 403
    assert bob.get(f"/api/runs/{run_id}").status_code == 404  # another department's run does not exist for bob
    assert bob.get(f"/api/runs/{run_id}/events").status_code == 404 and bob.get("/api/pending").json() == []
    assert root.get(f"/api/runs/{run_id}/trace").status_code == 403 and root.get("/api/pending").status_code == 403
    assert [r["run_id"] for r in aud.get("/api/runs").json()] == [run_id]
    [req] = aud.get("/api/pending").json()
    body = {"action": "approve", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"]}
    for who in (ana, aud, root):
        assert who.post(f"/api/runs/{run_id}/decisions", json=body).status_code == 403
    assert aud.post(f"/api/runs/{run_id}/resume", json={}).status_code == 403
    assert ana.get("/api/accounts").status_code == 403 and aud.get("/api/auth-events").status_code == 200
    assert root.post("/api/accounts", json={"username": "eve", "password": PASSWORD, "roles": ["approver"]}).status_code == 201
    assert root.post("/api/accounts", json={"username": "x", "password": "short", "roles": ["analyst"]}).status_code == 422
    eve = web.client("eve")  # an approver the policy does not name
    r = eve.post(f"/api/runs/{run_id}/decisions", json=body)
    assert r.status_code == 403 and "may not decide" in r.json()["detail"]
    lee = web.client("lee")  # allowed through the account's policy role, not a typed name
    assert lee.post(f"/api/runs/{run_id}/decisions", json=body).status_code == 202
    assert root.patch("/api/accounts/eve", json={"roles": ["auditor"]}).json()["roles"] == ["auditor"]
    kinds = [e["kind"] for e in auth_events(web.app.state.accounts.engine)]
    assert {"account_added", "login", "roles_changed"} <= set(kinds)


def test_csrf_is_required_for_session_writes(web):
    ana = web.client("ana")
    csrf = ana.headers.pop("X-CSRF-Token")
    r = ana.post("/api/runs", json={"graph": "web-toy", "inputs": {"x": 1}})
    assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
    ana.headers["X-CSRF-Token"] = csrf + "x"
    assert ana.post("/api/runs", json={"graph": "web-toy", "inputs": {"x": 1}}).status_code == 403
    assert web.engine.audit.list_runs() == []  # nothing started
    login = web.client().post("/api/login", json={"username": "ana", "password": PASSWORD})
    cookies = login.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("chainproof_session="))
    assert "HttpOnly" in session and "Secure" in session and "samesite=strict" in session.lower()


def test_stale_and_second_decisions_are_refused_and_edits_are_checked(web):
    ana, dana = web.client("ana"), web.client("dana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    [req] = dana.get("/api/pending").json()
    url = f"/api/runs/{run_id}/decisions"
    r = dana.post(url, json={"action": "approve", "request_id": req["request_id"], "proposed_hash": "0" * 64})
    assert r.status_code == 409 and "proposed_hash" in r.json()["detail"]
    seen = {"request_id": req["request_id"], "proposed_hash": req["proposed_hash"]}
    r = dana.post(url, json={"action": "edit", **seen, "changes": ["verdict=\"maybe\""]})
    assert r.status_code in (409, 422) and "verdict" in r.json()["detail"]
    assert dana.post(url, json={"action": "reject", **seen}).status_code in (409, 422)
    r = dana.post(url, json={"action": "edit", **seen, "changes": ["verdict=\"no\""], "comment": "<b>too thin</b>"})
    assert r.status_code == 202, r.text
    r = dana.post(url, json={"action": "approve", **seen})
    assert r.status_code == 409  # a second decision
    web.wait(ana, run_id, "completed")
    assert dana.post(url, json={"action": "approve", **seen}).status_code == 409
    decisions = [a for a in web.engine.audit.records_of(run_id, "approvals") if a.action != "requested"]
    assert [(d.action, d.approver) for d in decisions] == [("edit", "dana")]
    assert decisions[0].payload["edited"]["verdict"] == "no"


def test_token_revoked_mid_session_and_disabled_accounts(web):
    aud = web.client("aud")
    token = aud.post("/api/tokens", json={"label": "script"}).json()
    api = web.client()
    api.headers["Authorization"] = f"Bearer {token['token']}"
    assert api.get("/api/runs").status_code == 200
    assert api.post("/api/runs", json={"graph": "web-toy", "inputs": {"x": 1}}).status_code == 403  # still an auditor
    assert aud.delete(f"/api/tokens/{token['credential_id']}").status_code == 200
    assert api.get("/api/runs").status_code == 401
    assert all(t["revoked_at"] for t in aud.get("/api/tokens").json())
    root = web.client("root")
    assert root.patch("/api/accounts/aud", json={"disabled": True}).status_code == 200
    assert aud.get("/api/runs").status_code == 401  # the session stops at once
    kinds = [e["kind"] for e in auth_events(web.app.state.accounts.engine, username="aud")]
    assert {"token_issued", "token_revoked", "account_disabled"} <= set(kinds)


def test_enabling_an_account_again_brings_back_none_of_its_sessions_or_tokens(web):
    """Disabling revokes for good: after `enable`, the old cookie and token stay refused (401)."""
    aud = web.client("aud")
    token = aud.post("/api/tokens", json={"label": "script"}).json()
    api = web.client()
    api.headers["Authorization"] = f"Bearer {token['token']}"
    assert aud.get("/api/runs").status_code == 200 and api.get("/api/runs").status_code == 200
    root = web.client("root")
    assert root.patch("/api/accounts/aud", json={"disabled": True}).status_code == 200
    assert aud.get("/api/runs").status_code == 401 and api.get("/api/runs").status_code == 401
    assert root.patch("/api/accounts/aud", json={"disabled": False}).status_code == 200
    assert aud.get("/api/runs").status_code == 401  # the same old cookie
    assert api.get("/api/runs").status_code == 401  # the same old token
    assert web.client("aud").get("/api/runs").status_code == 200  # signing in again works
    events = auth_events(web.app.state.accounts.engine, username="aud")
    ended = [e for e in events if e["kind"] in ("logout", "token_revoked") and e["detail"].get("reason") == "account disabled"]
    assert {e["kind"] for e in ended} == {"logout", "token_revoked"} and all(e["actor"] == "root" for e in ended)
    assert verify_auth_log(web.app.state.accounts.engine).ok


def test_a_refused_edit_echoes_no_credential(web):
    """A 422 for an edit names the field it refuses but never shows a credential it was sent (a PEM
    key, an AWS key, a JWT as an edit's field name or value, or a request field of the wrong type)."""
    from testkit.credentials import CREDENTIALS

    ana, dana = web.client("ana"), web.client("dana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    [req] = dana.get("/api/pending").json()
    url = f"/api/runs/{run_id}/decisions"
    seen = {"action": "edit", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"]}
    creds = [c for c in CREDENTIALS if c.kind in ("RSA private key", "AWS access key id", "JWT (HS256)")]
    assert len(creds) == 3
    for cred in creds:
        for body in ({**seen, "edited": {"verdict": "no", "reason": "fine", cred.text: 1}},
                     {**seen, "edited": {"verdict": "no", "reason": "fine"}, "comment": {"note": cred.text}},
                     {**seen, "changes": [f"{cred.text}=1"]}):
            r = dana.post(url, json=body)
            assert r.status_code in (409, 422), r.text
            assert [n for n in cred.needles if n in r.text] == [], r.text
        assert "not a field of Verdict" in dana.post(url, json={**seen, "edited": {"verdict": "no", "reason": "fine",
                                                                                     cred.text: 1}}).json()["detail"]
    page, base = web.page("dana"), f"/inbox/{run_id}/{req['request_id']}"
    for cred in creds:  # the page confirming an edit
        r = page.post(f"{base}/decide", data={"csrf": page.csrf, "action": "edit", "proposed_hash": req["proposed_hash"],
                                             "edited": json.dumps({"verdict": "no", "reason": "fine", cred.text: 1})})
        assert r.status_code in (409, 422) and "not a field of Verdict" in r.text, r.text[:2000]
        assert [n for n in cred.needles if n in r.text] == [], r.text[:2000]


def test_failed_logins_are_throttled_and_recorded(web):
    c = web.client()
    for _ in range(3):
        assert c.post("/api/login", json={"username": "dana", "password": "wrong password 123"}).status_code == 401
    r = c.post("/api/login", json={"username": "dana", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert web.client().post("/api/login", json={"username": "ana", "password": PASSWORD}).status_code == 200
    kinds = [e["kind"] for e in auth_events(web.app.state.accounts.engine, username="dana")]
    assert kinds.count("login_failed") == 3 and "login_throttled" in kinds
    assert verify_auth_log(web.app.state.accounts.engine).ok


def test_no_secret_in_any_response_or_log(web, caplog):
    caplog.set_level(logging.DEBUG)
    aud = web.client("aud")
    token = aud.post("/api/tokens", json={}).json()["token"]
    root = web.client("root")
    bodies = [aud.get(p).text for p in ("/api/me", "/api/tokens", "/api/auth-events")]
    bodies += [root.get("/api/accounts").text, web.client().get("/openapi.json").text]
    hashes = [a["password_hash"] for a in _rows(web, "accounts")] + [c["secret_hash"] for c in _rows(web, "credentials")]
    for text in [*bodies, caplog.text]:
        assert PASSWORD not in text and token not in text and token.split("_", 2)[2] not in text  # the whole secret (it may hold "_")
        assert not any(h in text for h in hashes)


def _rows(web, table):
    from sqlalchemy import select

    from chainproof.checkpoints import audit_tables as t

    with web.app.state.accounts.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(getattr(t, table)))]


@pytest.mark.parametrize("path", ["/openapi.json"])
def test_openapi_lists_every_route(web, path):
    paths = web.client().get(path).json()["paths"]
    for route in ("/api/graphs", "/api/runs", "/api/runs/{run_id}/trace", "/api/runs/{run_id}/steps/{step_no}",
                  "/api/runs/{run_id}/events", "/api/pending", "/api/runs/{run_id}/decisions", "/api/runs/{run_id}/resume",
                  "/api/runs/{run_id}/fork", "/api/runs/{run_id}/verify", "/api/runs/{run_id}/replay",
                  "/api/runs/{run_id}/export", "/api/costs", "/api/sla", "/api/login", "/api/tokens", "/api/accounts"):
        assert route in paths
