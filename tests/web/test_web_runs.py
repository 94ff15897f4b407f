"""The JSON API end to end: an analyst starts a run, an approver decides it as a signed-in
account, an auditor verifies, replays and exports it; live events reconnect exactly."""

from __future__ import annotations

import json
import threading

from chainproof._live import LiveReader
from testkit.web_app import API_KEY, PASSWORD, SCRIPT, start


def _events(client, run_id: str, last: int | None = None) -> list[tuple[int, str, dict]]:
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    out, fields = [], {}
    with client.stream("GET", f"/api/runs/{run_id}/events", headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line and fields:  # a blank line ends an event (WHATWG "dispatch the event")
                out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
                fields = {}
            elif line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
    return out


def _run_to_completion(web):
    ana, dana = web.client("ana"), web.client("dana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    [req] = dana.get("/api/pending").json()
    r = dana.post(f"/api/runs/{run_id}/decisions", json={"action": "approve", "request_id": req["request_id"],
                                                         "proposed_hash": req["proposed_hash"], "comment": "ok " + SCRIPT})
    assert r.status_code == 202, r.text
    web.wait(ana, run_id, "completed")
    return run_id, req


def test_analyst_starts_approver_decides_as_account_and_the_run_completes(web):
    ana = web.client("ana")
    graphs = {g["name"]: g for g in ana.get("/api/graphs").json()}
    assert graphs["web-toy"]["error"] is None
    run_id, req = _run_to_completion(web)
    assert req["question"] and req["proposed"]["verdict"] == "yes"
    header = ana.get(f"/api/runs/{run_id}").json()
    assert header["started_by"] == "ana" and header["department"] == "M&A" and header["status"] == "completed"
    decision = next(r for r in web.engine.audit.records_of(run_id, "approvals") if r.action == "approve")
    assert decision.approver == "dana"
    assert decision.payload["account"]["username"] == "dana" and decision.payload["account"]["via"] == "session"
    # the decision's run_resumed is not followed by a second one from the background resume
    assert [e.kind for e in web.engine.audit.records_of(run_id, "events")].count("run_resumed") == 1
    assert [r["run_id"] for r in ana.get("/api/runs", params={"status": "completed"}).json()] == [run_id]
    assert ana.get("/api/runs", params={"graph": "other"}).json() == []
    trace = ana.get(f"/api/runs/{run_id}/trace").json()
    square = next(r for r in trace["records"] if r["table"] == "tool_calls" and r["tool"] == "square")
    step = ana.get(f"/api/runs/{run_id}/steps/{square['step_no']}").json()
    assert [r["table"] for r in step["records"]].count("steps") == 1 and square in step["records"]
    assert ana.get(f"/api/runs/{run_id}/steps/99").status_code == 404
    costs = ana.get("/api/costs", params={"run_id": run_id}).json()
    assert costs["total"]["calls"] == 4
    assert ana.get("/api/costs").status_code == 422


def test_auditor_verifies_replays_and_exports_and_markup_stays_text(web):
    run_id, _ = _run_to_completion(web)
    aud = web.client("aud")
    assert aud.get(f"/api/runs/{run_id}/verify").json()["ok"] is True
    assert aud.get(f"/api/runs/{run_id}/replay").json()["outcome"] == "identical"
    page = aud.get(f"/api/runs/{run_id}/export", params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"] and "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text.lower()  # the tool result, the model text and the comment are escaped
    assert page.text.count("&lt;script&gt;") >= 3
    data = aud.get(f"/api/runs/{run_id}/export").json()
    assert data["verify"]["ok"] and data["run"]["run_id"] == run_id
    trace = aud.get(f"/api/runs/{run_id}/trace")
    assert trace.headers["content-type"] == "application/json" and trace.headers["x-content-type-options"] == "nosniff"
    for r in (page, trace):
        assert API_KEY not in r.text and PASSWORD not in r.text


def test_last_event_id_reconnect_gets_exactly_the_missed_events(web):
    run_id, _ = _run_to_completion(web)
    aud = web.client("aud")
    everything = _events(aud, run_id)
    kinds = [k for _, k, _ in everything]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert {"step_finished", "paused", "resumed"} <= set(kinds)
    ids = [i for i, _, _ in everything]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    seqs = {r.seq for r in web.engine.audit.records(run_id)}
    assert set(ids) <= seqs  # each id is an audit record's seq
    step = next(d for _, k, d in everything if k == "step_finished")
    assert {"node", "effort", "tokens", "cost_usd", "seconds"} <= set(step)
    # every finished step was announced before, by a step_started naming the same step
    for i, (_, kind, data) in enumerate(everything):
        if kind == "step_finished":
            started = [d for _, k, d in everything[:i] if k == "step_started" and d["step_no"] == data["step_no"]]
            assert started and started[-1]["node"] == data["node"] and started[-1]["effort"] == data["effort"], data
    # the approval step ran twice: it paused (announced, not finished), then ran again after the decision
    at_pause = kinds.index("paused")
    assert "step_started" in kinds[:at_pause] and kinds[at_pause + 1:].count("step_started") >= 1
    paused = next(d for _, k, d in everything if k == "paused")
    assert paused["why"] == "approval" and paused["requests"][0]["proposed"]["verdict"] == "yes"
    for cut in (1, len(everything) // 2, len(everything) - 2):
        again = _events(aud, run_id, last=ids[cut - 1])
        assert again == everything[cut:]  # exactly the missed ones, none twice, in order
    assert _events(aud, run_id, last=ids[-1]) == []  # the stream ends after completion


def test_bad_start_input_is_refused_at_once_with_the_field(web):
    ana = web.client("ana")
    r = ana.post("/api/runs", json={"graph": "web-toy", "inputs": {"x": "seven"}})
    assert r.status_code == 422 and "x: expected an integer" in r.json()["detail"]
    r = ana.post("/api/runs", json={"graph": "no-such-graph", "inputs": {}})
    assert r.status_code == 404
    assert ana.get("/api/runs").json() == []
    # a body that does not fit the endpoint's schema is the caller's mistake (422 naming the field), not a server error
    r = ana.post("/api/runs", json={"inputs": {}})
    assert r.status_code == 422 and "body.graph: Field required" in r.json()["detail"]
    r = ana.post("/api/runs", content=b"notjson", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_resume_and_fork(web):
    ana = web.client("ana")
    run_id = start(web, ana, max_steps=1)
    web.wait(ana, run_id, "paused")
    r = ana.post(f"/api/runs/{run_id}/resume", json={"max_steps": 5})
    assert r.status_code == 202
    web.app.state.runner.jobs[run_id].future.result(timeout=60)  # the run was "paused" before the resume, too
    web.wait(ana, run_id, "paused")
    assert web.engine.pending_requests(run_id)  # now waiting at the approval
    gate = threading.Event()
    real_advance = web.engine.advance

    def held_advance(run_id: str, **kw):  # the fork runs only once the test lets it
        assert gate.wait(30)
        return real_advance(run_id, **kw)

    web.engine.advance = held_advance
    fork = ana.post(f"/api/runs/{run_id}/fork", json={"at_step": 1})
    assert fork.status_code == 202, fork.text  # answered while the fork has not run a step
    child_id = fork.json()["run_id"]
    assert fork.json() == {"run_id": child_id, "parent_run_id": run_id, "status": "started",
                           "events": f"/api/runs/{child_id}/events"}
    child = ana.get(f"/api/runs/{child_id}").json()
    assert child["parent_run_id"] == run_id and child["started_by"] == "ana" and child["status"] == "started"
    gate.set()
    web.wait(ana, child_id, "paused")  # ran in the background to its own approval request
    kinds = [e.type for e in LiveReader(web.app.state.reader, child_id).batch()]  # its stream stays open while paused
    assert kinds[0] == "started" and "step_started" in kinds and kinds[-1] == "paused"
    assert ana.post("/api/runs/nope/fork", json={"at_step": 1}).status_code == 404  # refused, nothing recorded
    assert len(ana.get("/api/runs").json()) == 2
    assert web.client("aud").post(f"/api/runs/{run_id}/fork", json={"at_step": 1}).status_code == 403


def test_terminal_watch_shows_the_same_events_as_the_sse_stream(web):
    from typer.testing import CliRunner

    from chainproof.cli import app as cli

    run_id, _ = _run_to_completion(web)
    streamed = _events(web.client("aud"), run_id)
    out = CliRunner().invoke(cli, ["watch", run_id, "--json"])
    assert out.exit_code == 0, out.output
    watched = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(e["id"], e["event"], e["data"]) for e in watched] == streamed  # same ids, types and data
    cut = streamed[3][0]
    rest = CliRunner().invoke(cli, ["watch", run_id, "--json", "--after", str(cut), "--no-follow"])
    assert [json.loads(line)["id"] for line in rest.stdout.splitlines()] == [i for i, _, _ in streamed[4:]]
    text = CliRunner().invoke(cli, ["watch", run_id]).stdout
    assert "… step   1" in text and "✓ step   1" in text and "paused for approval" in text and "completed" in text
    assert CliRunner().invoke(cli, ["watch", "nope"]).exit_code == 2


def test_a_last_event_id_beyond_any_sequence_number_is_refused_not_a_broken_stream(web):
    ana = web.client("ana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")  # recorded: an unknown run would be 404 before its headers are read
    for headers, params in (({"Last-Event-ID": "99999999999999999999999"}, {}), ({}, {"after": 2**63})):
        r = ana.get(f"/api/runs/{run_id}/events", headers=headers, params=params)
        assert r.status_code == 422, r.text


def test_a_budget_out_of_range_is_refused_before_a_run_is_recorded(web):
    ana = web.client("ana")
    for extra, field in (({"max_steps": 1e23}, "max_steps"), ({"budget_usd": -1}, "budget_usd")):
        r = ana.post("/api/runs", json={"graph": "web-toy", "inputs": {"x": 1}, **extra})
        assert r.status_code == 422 and field in r.text, r.text
    assert ana.get("/api/runs").json() == []  # nothing recorded, so no failed run to explain
