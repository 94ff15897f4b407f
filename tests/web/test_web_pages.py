"""The pages over the JSON API's rules: sign-in, forms with CSRF, roles and visibility, the
new-run form from the graph's schema, the inbox's edit with a diff and confirmation, the trace
with verify and replay, costs; and recorded markup shown as text on every page."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from testkit.web_app import PASSWORD, SCRIPT, safe_page, start

ESCAPED = "&lt;script&gt;alert("


_safe = safe_page


def _start_page_run(web, client, x: str = "7") -> str:
    r = client.post("/runs/new", data={"csrf": client.csrf, "graph": "web-toy", "in_x": x})
    assert r.status_code == 303, r.text[-2000:]
    return r.headers["location"].rsplit("/", 1)[1]


def test_sign_in_page_sessions_and_redirects(web):
    anon = web.page()
    r = anon.get("/runs")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/runs"
    r = anon.post("/login", data={"username": "ana", "password": "wrong password 123", "next": "/runs"})
    assert "Sign in" in _safe(r, 401) and "chainproof_session" not in r.headers.get("set-cookie", "")
    r = anon.post("/login", data={"username": "ana", "password": PASSWORD, "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["location"] == "/runs"  # no open redirect
    session = next(c for c in r.headers.get_list("set-cookie") if c.startswith("chainproof_session="))
    assert "HttpOnly" in session and "Secure" in session and "samesite=strict" in session.lower()
    ana = web.page("ana")
    assert "Sign out" in _safe(ana.get("/runs"))
    assert ana.post("/logout", data={}).status_code == 403  # sign-out without the CSRF token changes nothing
    assert ana.get("/runs").status_code == 200
    assert ana.post("/logout", data={"csrf": ana.csrf}).status_code == 303
    assert ana.get("/runs").status_code == 303  # the session is revoked, not just forgotten
    assert web.page().get("/static/live.js").status_code == 200


def test_new_run_form_is_generated_from_the_schema_and_needs_csrf(web):
    ana = web.page("ana")
    form = _safe(ana.get("/runs/new?graph=web-toy"))
    assert 'name="in_x" type="number"' in form and 'step="1"' in form and "the number to square" in form
    r = ana.post("/runs/new", data={"graph": "web-toy", "in_x": "7"})
    assert r.status_code == 403 and web.engine.audit.list_runs() == []  # no CSRF token: nothing started
    r = ana.post("/runs/new", data={"csrf": ana.csrf, "graph": "web-toy", "in_x": "seven"})
    assert "x: expected an integer" in _safe(r, 422) and 'value="seven"' in r.text
    assert web.engine.audit.list_runs() == []
    assert web.page("aud").post("/runs/new", data={"csrf": "x", "graph": "web-toy", "in_x": "7"}).status_code == 403
    run_id = _start_page_run(web, ana)
    live = _safe(ana.get(f"/runs/{run_id}"))
    assert f'data-events="/api/runs/{run_id}/events"' in live and '<script src="/static/live.js" defer>' in live
    web.wait(web.client("ana"), run_id, "paused")
    runs = _safe(ana.get("/runs", params={"status": "paused", "graph": "web-toy", "started_by": "ana"}))
    assert f"/runs/{run_id}" in runs
    assert f"/runs/{run_id}" not in ana.get("/runs", params={"status": "completed"}).text
    assert f"/runs/{run_id}" not in ana.get("/runs", params={"started_by": "someone"}).text


def test_roles_and_visibility_on_pages(web):
    ana = web.page("ana")
    run_id = _start_page_run(web, ana)
    web.wait(web.client("ana"), run_id, "paused")
    bob, root, aud = web.page("bob"), web.page("root"), web.page("aud")
    assert "approver, auditor" in _safe(bob.get("/inbox"), 403)  # analysts have no inbox
    assert ana.get("/inbox").status_code == 403 and root.get("/runs").status_code == 403
    assert bob.get(f"/runs/{run_id}").status_code == 404 and bob.get(f"/runs/{run_id}/trace").status_code == 404
    assert f"/runs/{run_id}" not in bob.get("/runs").text
    inbox = _safe(aud.get("/inbox"))  # auditors read the inbox but get no decision forms
    [req] = web.client("aud").get("/api/pending").json()
    assert req["question"] in inbox and "/decide" not in inbox
    url = f"/inbox/{run_id}/{req['request_id']}/decide"
    assert ana.post(url, data={"csrf": ana.csrf, "action": "approve"}).status_code == 403
    assert aud.post(url, data={"csrf": aud.csrf, "action": "approve"}).status_code == 403
    dana = web.page("dana")
    assert dana.post(url, data={"csrf": "forged", "action": "approve"}).status_code == 403
    assert "action" in _safe(dana.post(url, data={"csrf": dana.csrf, "action": "delete"}), 422)
    assert web.engine.pending_requests(run_id)  # nothing was decided


def test_inbox_edit_shows_a_checked_diff_and_needs_confirmation(web):
    ana, dana = web.page("ana"), web.page("dana")
    run_id = _start_page_run(web, ana)
    web.wait(web.client("ana"), run_id, "paused")
    inbox = _safe(dana.get("/inbox"))
    assert ESCAPED in inbox and f"/runs/{run_id}/trace#step-" in inbox  # the proposal's reason, as text
    [req] = web.client("dana").get("/api/pending").json()
    base = f"/inbox/{run_id}/{req['request_id']}"
    form = _safe(dana.get(f"{base}/edit"))
    assert '<select id="in_verdict" name="in_verdict"' in form and ESCAPED in form
    r = dana.post(f"{base}/edit", data={"csrf": dana.csrf, "in_verdict": "maybe", "in_reason": "fine reason"})
    assert "verdict" in _safe(r, 422) and "Confirm" not in r.text
    r = dana.post(f"{base}/edit", data={"csrf": dana.csrf, "in_verdict": "yes", "in_reason": req["proposed"]["reason"]})
    assert "no field was changed" in _safe(r, 422)
    edited_reason = f"too thin {SCRIPT}"
    confirm = _safe(dana.post(f"{base}/edit", data={"csrf": dana.csrf, "in_verdict": "no", "in_reason": edited_reason,
                                                    "comment": f"see {SCRIPT}"}))
    assert confirm.count('class="changed"') == 2 and ESCAPED in confirm and "Confirm the edit" in confirm
    assert web.engine.pending_requests(run_id)  # a preview decides nothing
    edited = re.search(r'name="edited" value="([^"]*)"', confirm).group(1)
    r = dana.post(f"{base}/decide", data={"csrf": dana.csrf, "action": "edit", "edited": html.unescape(edited),
                                          "proposed_hash": req["proposed_hash"], "comment": f"see {SCRIPT}"})
    assert r.status_code == 303 and r.headers["location"] == f"/runs/{run_id}"
    again = dana.post(f"{base}/decide", data={"csrf": dana.csrf, "action": "approve", "proposed_hash": req["proposed_hash"]})
    # refused either way: already decided, or (while the background resume holds the run's lock) busy
    said = _safe(again, 409).lower()
    assert "decided" in said or "no open" in said or "being advanced by another process" in said
    web.wait(web.client("ana"), run_id, "completed")
    [decision] = [a for a in web.engine.audit.records_of(run_id, "approvals") if a.action != "requested"]
    assert (decision.action, decision.approver) == ("edit", "dana")
    assert decision.payload["edited"] == {"verdict": "no", "reason": edited_reason}


def test_trace_verifies_replays_and_shows_every_recorded_text_as_text(web):
    ana, dana, aud = web.page("ana"), web.page("dana"), web.page("aud")
    run_id = _start_page_run(web, ana)
    web.wait(web.client("ana"), run_id, "paused")
    [req] = web.client("dana").get("/api/pending").json()
    r = dana.post(f"/inbox/{run_id}/{req['request_id']}/decide",
                  data={"csrf": dana.csrf, "action": "reject", "proposed_hash": req["proposed_hash"]})
    assert "comment" in _safe(r, 409)  # a rejection needs a reason
    r = dana.post(f"/inbox/{run_id}/{req['request_id']}/decide",
                  data={"csrf": dana.csrf, "action": "approve", "comment": f"ok {SCRIPT}", "proposed_hash": req["proposed_hash"]})
    assert r.status_code == 303
    web.wait(web.client("ana"), run_id, "completed")
    trace = _safe(aud.get(f"/runs/{run_id}/trace"))
    # the tool result, the model's text, the proposal and the approver's comment: each escaped
    assert trace.count(ESCAPED) >= 4 and "tool says &lt;script&gt;" in trace and "Comment: ok &lt;script&gt;" in trace
    assert "<details>" in trace and 'id="finding-square"' in trace and "Tool call <code>square</code>" in trace
    assert "intact" not in trace and "identical" not in trace
    verified = _safe(aud.get(f"/runs/{run_id}/trace", params={"check": "verify"}))
    assert re.search(r'id="verify-result"[^>]*>Verify: <strong>intact</strong>', verified)
    replayed = _safe(aud.get(f"/runs/{run_id}/trace", params={"check": "replay"}))
    assert re.search(r'id="replay-result"[^>]*>Replay: <strong>identical</strong>', replayed)
    assert "completed" in _safe(ana.get(f"/runs/{run_id}"))


def test_costs_by_node_effort_department_and_month_with_markup_as_text(web):
    root = web.client("root")
    assert root.post("/api/accounts", json={"username": "mal", "password": PASSWORD, "roles": ["analyst"],
                                            "department": SCRIPT}).status_code == 201
    mal, ana, aud = web.page("mal"), web.page("ana"), web.page("aud")
    for who in (ana, mal):
        web.wait(web.client("ana" if who is ana else "mal"), _start_page_run(web, who), "paused")
    month = datetime.now(UTC).strftime("%Y-%m")
    costs = _safe(aud.get("/costs", params={"month": month}))
    for heading in ("By node", "By effort", "By department", "By month"):
        assert heading in costs
    assert "M&amp;A" in costs and ESCAPED in costs and f">{month}</text>" in costs and "<rect" in costs
    own = _safe(ana.get("/costs"))
    assert ESCAPED not in own and "M&amp;A" in own  # analysts see their department's calls only
    assert ana.get("/costs", params={"department": SCRIPT}).status_code == 403
    assert "month" in _safe(aud.get("/costs", params={"month": "2024-13"}), 422)
    for page in ("/runs", f"/runs?department={SCRIPT}"):
        assert ESCAPED in _safe(aud.get(page))
    [run] = web.client("mal").get("/api/runs").json()
    assert ESCAPED in _safe(mal.get(f"/runs/{run['run_id']}"))


def test_markup_in_an_edited_field_a_comment_and_a_tool_result_is_text_on_every_page(web):
    ana, dana = web.client("ana"), web.client("dana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    [req] = dana.get("/api/pending").json()
    r = dana.post(f"/api/runs/{run_id}/decisions", json={
        "action": "edit", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"],
        "changes": [f"reason=\"edited {SCRIPT}\""], "comment": f"because {SCRIPT}"})
    assert r.status_code == 202, r.text
    web.wait(ana, run_id, "completed")
    aud = web.page("aud")
    pages = {path: _safe(aud.get(path)) for path in
             ("/runs", f"/runs/{run_id}", f"/runs/{run_id}/trace", "/inbox", "/costs", "/sla")}
    trace = pages[f"/runs/{run_id}/trace"]
    assert "edited &lt;script&gt;" in trace and "because &lt;script&gt;" in trace and "tool says &lt;script&gt;" in trace
    export = web.client("aud").get(f"/api/runs/{run_id}/export", params={"format": "html"}).text
    assert "<script" not in export.lower()
    assert "edited &lt;script&gt;" in export and "because &lt;script&gt;" in export and "tool says &lt;script&gt;" in export
