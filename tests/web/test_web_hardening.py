"""Attacks on signing in and on who sees what: a live stream outliving its credentials, a run its
own starter cannot see, a cross-site sign-in, locking someone else's account out, password
spraying, and a second account that differs only in case."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from chainproof.checkpoints.auth_log import auth_events
from chainproof.cli import app as cli
from chainproof.web import _sse
from testkit.web_app import PASSWORD, start

WRONG = "not the password at all"


def _follow(client: TestClient, run_id: str) -> tuple[list[str], threading.Event]:
    """Read the run's event stream in a thread: the event types seen, and an Event set when it ends."""
    seen: list[str] = []
    ended = threading.Event()

    def read() -> None:
        with client.stream("GET", f"/api/runs/{run_id}/events") as r:
            seen.append(str(r.status_code))
            for line in r.iter_lines():
                if line.startswith("event: "):
                    seen.append(line[7:])
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    return seen, ended


def _until(check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["token revoked", "account disabled", "signed out"])
def test_a_live_stream_ends_when_its_credentials_stop_working(web, monkeypatch, how):
    monkeypatch.setattr(_sse, "AUTH_RECHECK_S", 0.3)
    ana = web.client("ana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")  # a paused run's stream stays open
    aud = web.client("aud")
    watcher = aud
    if how == "token revoked":
        token = aud.post("/api/tokens", json={"label": "stream"}).json()
        watcher = web.client()
        watcher.headers["Authorization"] = f"Bearer {token['token']}"
    seen, ended = _follow(watcher, run_id)
    _until(lambda: "paused" in seen)
    assert seen[0] == "200" and not ended.wait(1.5)  # still allowed: the stream stays open past several checks
    if how == "token revoked":
        assert aud.delete(f"/api/tokens/{token['credential_id']}").status_code == 200
    elif how == "account disabled":
        assert web.client("root").patch("/api/accounts/aud", json={"disabled": True}).status_code == 200
    else:
        assert aud.post("/api/logout").status_code == 200
    assert ended.wait(10), f"the stream went on after the {how}"
    assert watcher.get(f"/api/runs/{run_id}/events").status_code == 401  # and cannot be reopened


def test_an_analyst_without_a_department_sees_the_runs_they_started_and_only_those(web):
    root = web.client("root")
    for name in ("nod", "nil"):
        r = root.post("/api/accounts", json={"username": name, "password": PASSWORD, "roles": ["analyst"]})
        assert r.status_code == 201 and r.json()["department"] is None
    nod, nil = web.client("nod"), web.client("nil")
    run_id = start(web, nod)
    status = web.wait(nod, run_id, "paused")  # GET /api/runs/ID answers the starter
    assert status["started_by"] == "nod" and status["department"] is None
    assert [r["run_id"] for r in nod.get("/api/runs").json()] == [run_id]
    assert nod.get(f"/api/runs/{run_id}/trace").status_code == 200
    assert nod.get(f"/api/runs/{run_id}/verify").json()["ok"] is True
    with nod.stream("GET", f"/api/runs/{run_id}/events") as r:
        assert r.status_code == 200
        assert next(line for line in r.iter_lines() if line.startswith("event: ")) == "event: started"
    assert [p["run_id"] for p in nod.get("/api/pending").json()] == [run_id]
    page = web.page("nod")
    assert page.get(f"/runs/{run_id}").status_code == 200 and f"/runs/{run_id}" in page.get("/runs").text
    # another analyst without a department does not see it (None is not a shared department)
    assert nil.get(f"/api/runs/{run_id}").status_code == 404 and nil.get("/api/runs").json() == []
    assert web.client("bob").get(f"/api/runs/{run_id}").status_code == 404


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Referer": "https://evil.example/login.html"},
                                     {"Origin": "https://testserver.evil.example"}])
def test_a_sign_in_sent_from_another_site_is_refused(web, headers):
    api = web.client()
    r = api.post("/api/login", json={"username": "dana", "password": PASSWORD}, headers=headers)
    assert r.status_code == 403 and "another site" in r.json()["detail"], r.text
    assert "chainproof_session" not in r.headers.get("set-cookie", "")
    page = web.page()
    r = page.post("/login", data={"username": "dana", "password": PASSWORD, "next": "/runs"}, headers=headers)
    assert r.status_code == 403 and "another site" in r.text
    assert "chainproof_session" not in r.headers.get("set-cookie", "") and "chainproof_session" not in page.cookies
    assert "login" not in [e["kind"] for e in auth_events(web.app.state.accounts.engine, username="dana")]
    # the app's own page (same origin) and a script (no Origin, no Referer) sign in
    same = {"Origin": "https://testserver", "Referer": "https://testserver/login"}
    r = page.post("/login", data={"username": "dana", "password": PASSWORD, "next": "/runs"}, headers=same)
    assert r.status_code == 303 and "chainproof_session" in page.cookies
    assert web.client().post("/api/login", json={"username": "dana", "password": PASSWORD}).status_code == 200
    assert page.get("/login").headers["referrer-policy"] == "same-origin"  # so the browser sends the real Origin


def _from(web, address: str) -> TestClient:
    return TestClient(web.app, base_url="https://testserver", raise_server_exceptions=False, client=(address, 40000))


def _login(client: TestClient, username: str, password: str) -> int:
    return client.post("/api/login", json={"username": username, "password": password}).status_code


def test_failed_sign_ins_throttle_the_address_not_the_account(web):
    attacker, owner = _from(web, "203.0.113.66"), _from(web, "198.51.100.7")
    for _ in range(3):  # the fixture's auth.login_max_failures
        assert _login(attacker, "dana", WRONG) == 401
    r = attacker.post("/api/login", json={"username": "DANA", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # that address, that account (any case)
    assert _login(owner, "dana", PASSWORD) == 200  # the owner elsewhere is not locked out
    assert _login(attacker, "ana", PASSWORD) == 200  # nor is the address for other accounts, below its own limit
    # failures at several addresses do not add up against the account
    for address in ("192.0.2.1", "192.0.2.2"):
        for _ in range(2):
            assert _login(_from(web, address), "lee", WRONG) == 401
    assert _login(_from(web, "192.0.2.1"), "lee", PASSWORD) == 200


def test_password_spraying_from_one_address_is_throttled(web):
    web.app.state.accounts.settings.login_max_failures_per_client = 4
    sprayer = _from(web, "203.0.113.99")
    for name in ("dana", "lee", "aud", "nobody"):  # one guess per account, each below the account limit
        assert _login(sprayer, name, WRONG) == 401
    r = sprayer.post("/api/login", json={"username": "ana", "password": PASSWORD})
    assert r.status_code == 429 and "from this address" in r.json()["detail"]
    assert _login(_from(web, "198.51.100.8"), "ana", PASSWORD) == 200
    kinds = [e["kind"] for e in auth_events(web.app.state.accounts.engine, username="ana")]
    assert "login_throttled" in kinds


def _served(web, monkeypatch, allowed: str | None) -> TestClient:
    """The app as `chainproof serve` hands it to uvicorn (its proxy-header options, from the
    settings), reached by a client on 127.0.0.1 (uvicorn's own default trusted proxy)."""
    import uvicorn

    import chainproof.web

    if allowed is not None:
        monkeypatch.setenv("CHAINPROOF_WEB__FORWARDED_ALLOW_IPS", allowed)
    seen: dict = {}
    monkeypatch.setattr(chainproof.web, "serve", lambda **kw: seen.update(kw))
    assert CliRunner().invoke(cli, ["serve"]).exit_code == 0
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8000)
    config = uvicorn.Config(web.app, **{k: v for k, v in seen.items() if k not in ("host", "port")})
    config.load()
    return TestClient(config.loaded_app, base_url="https://testserver", raise_server_exceptions=False,
                      client=("127.0.0.1", 40000))


def _spoofed_logins(client: TestClient) -> list[int]:
    return [client.post("/api/login", json={"username": "dana", "password": WRONG},
                        headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(8)]


def test_a_local_client_cannot_pick_its_address_with_x_forwarded_for(web, monkeypatch):
    """By default no address is a trusted proxy: 8 wrong passwords under 8 spoofed addresses are
    one address's failures, throttled after the third."""
    codes = _spoofed_logins(_served(web, monkeypatch, None))
    assert codes[:3] == [401] * 3 and set(codes[3:]) == {429}, codes
    clients = {e["detail"].get("client") for e in auth_events(web.app.state.accounts.engine, username="dana")
               if e["kind"].startswith("login")}
    assert clients == {"127.0.0.1"}


def test_x_forwarded_for_is_honoured_from_a_configured_proxy(web, monkeypatch):
    codes = _spoofed_logins(_served(web, monkeypatch, '["127.0.0.1"]'))
    assert codes == [401] * 8, codes  # eight clients behind the proxy, one failure each
    failed = [e for e in auth_events(web.app.state.accounts.engine, username="dana") if e["kind"] == "login_failed"]
    assert {e["detail"]["client"] for e in failed} == {f"198.51.100.{i}" for i in range(8)}


def test_usernames_ignore_case(web, home):
    root = web.client("root")
    r = root.post("/api/accounts", json={"username": "Dana", "password": PASSWORD, "roles": ["approver"]})
    assert r.status_code == 422 and "username: an account 'dana' already exists" in r.json()["detail"]
    assert [a["username"] for a in root.get("/api/accounts").json()].count("dana") == 1
    r = web.client().post("/api/login", json={"username": " DaNa", "password": PASSWORD})
    assert r.status_code == 200 and r.json()["account"]["username"] == "dana"
    assert root.patch("/api/accounts/DANA", json={"roles": ["auditor"]}).json() == {
        "username": "dana", "roles": ["auditor"], "disabled": False}
    assert CliRunner().invoke(cli, ["login", "root", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    out = CliRunner().invoke(cli, ["users", "add", "AUD", "--role", "auditor", "--password-stdin"], input=PASSWORD + "\n")
    assert out.exit_code == 2 and "already exists" in out.output
    r = root.post("/api/accounts", json={"username": "Ärger", "password": PASSWORD, "roles": ["analyst"]})
    assert r.status_code == 201  # beyond ASCII too (SQLite's lower() folds only A-Z)
    r = root.post("/api/accounts", json={"username": "äRGER", "password": PASSWORD, "roles": ["analyst"]})
    assert r.status_code == 422 and "'Ärger' already exists" in r.json()["detail"]
    assert web.client().post("/api/login", json={"username": "ärger", "password": PASSWORD}).status_code == 200
