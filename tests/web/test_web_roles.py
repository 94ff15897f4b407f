"""Every endpoint of the JSON API against every role: allowed roles get the endpoint's answer,
every other role is refused (403, or 404 for a run it may not see, so its existence does not
leak) and a stranger gets 401. Writes are sent with bodies the endpoint rejects after the role
check (422), so the matrix changes nothing."""

from __future__ import annotations

import pytest

from testkit.web_app import start

ALL = {"ana", "bob", "dana", "aud", "root"}
READ = {"ana", "dana", "aud"}  # bob is an analyst of another department than the run's
RUN = "{run}"


def _matrix(req: str) -> list[tuple[str, str, dict | None, set[str], int]]:
    """(method, path, JSON body, roles allowed, the allowed roles' status)."""
    r = f"/api/runs/{RUN}"
    return [
        ("GET", "/api/graphs", None, ALL, 200),
        ("POST", "/api/runs", {"graph": "web-toy", "inputs": {"x": "seven"}}, {"ana", "bob"}, 422),
        ("GET", "/api/runs", None, {"ana", "bob", "dana", "aud"}, 200),
        ("GET", r, None, READ, 200),
        ("GET", f"{r}/trace", None, READ, 200),
        ("GET", f"{r}/steps/1", None, READ, 200),
        ("GET", f"{r}/verify", None, READ, 200),
        ("GET", f"{r}/replay", None, READ, 200),
        ("GET", f"{r}/export", None, READ, 200),
        ("GET", f"/api/costs?run_id={RUN}", None, READ, 200),
        ("GET", "/api/sla", None, {"ana", "bob", "dana", "aud"}, 200),
        ("POST", f"{r}/resume", {"max_steps": 0}, {"ana"}, 422),
        ("POST", f"{r}/fork", {"at_step": -1}, {"ana"}, 422),
        ("GET", "/api/pending", None, {"ana", "bob", "dana", "aud"}, 200),
        ("POST", f"{r}/decisions", {"action": "maybe", "request_id": req}, {"dana"}, 422),
        ("GET", "/api/me", None, ALL, 200),
        ("GET", "/api/tokens", None, ALL, 200),
        ("DELETE", "/api/tokens/nope", None, ALL, 422),  # no such token of yours
        ("GET", "/api/accounts", None, {"root"}, 200),
        ("POST", "/api/accounts", {"username": "x", "password": "short", "roles": ["analyst"]}, {"root"}, 422),
        ("PATCH", "/api/accounts/nobody", {"roles": ["auditor"]}, {"root"}, 422),  # no such account
        ("GET", "/api/auth-events", None, {"root", "aud"}, 200),
    ]


@pytest.fixture
def paused(web):
    ana = web.client("ana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    [req] = web.client("dana").get("/api/pending").json()
    return run_id, req["request_id"]


def test_every_endpoint_allows_its_roles_and_refuses_the_others(web, paused):
    run_id, req = paused
    clients = {name: web.client(name) for name in ALL} | {None: web.client()}
    wrong = []
    for method, path, body, allowed, status in _matrix(req):
        url = path.replace(RUN, run_id)
        for name, client in clients.items():
            got = client.request(method, url, json=body).status_code
            expected = {status} if name in allowed else {401} if name is None else {403, 404}
            if got not in expected:
                wrong.append(f"{method} {path} as {name}: {got}, expected {sorted(expected)}")
    assert wrong == [], "\n".join(wrong)
    # the refusals hid the run from those who may not see it, and changed nothing
    assert [r["run_id"] for r in clients["aud"].get("/api/runs").json()] == [run_id]
    assert web.engine.audit.run_status(run_id) == "paused" and len(web.client("dana").get("/api/pending").json()) == 1


def test_live_events_are_refused_to_roles_that_may_not_read_the_run(web, paused):
    run_id, _ = paused
    url = f"/api/runs/{run_id}/events"
    assert web.client().get(url).status_code == 401
    assert web.client("root").get(url).status_code == 403  # admins manage accounts, they do not read runs
    assert web.client("bob").get(url).status_code == 404  # another department's run


def test_api_sign_out_ends_the_session(web):
    for name in ("ana", "dana", "aud", "root"):
        client = web.client(name)
        assert client.post("/api/logout").status_code == 200
        assert client.get("/api/me").status_code == 401
