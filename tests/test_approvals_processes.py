"""Pause in one process, decide from others — on SQLite and on PostgreSQL (checkpointer and audit
store both): one of several parallel requests is answered by id from a second process, and two
processes racing to answer the same request differently get exactly one decision through."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ApprovalRecord, Step
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit import toy_graph
from testkit.environ import without_settings
from testkit.pg import pg_unreachable as unreachable
from testkit.toy_graph import ParallelToy

REPO = Path(__file__).resolve().parents[1]
register("toy-parallel", ParallelToy)

DECIDER = textwrap.dedent("""
    import sys, time, json
    from pathlib import Path
    from chainproof.graphs.approval import ApprovalRefused
    from chainproof.graphs.registry import register
    from chainproof.app import Chainproof, RunBusy
    from testkit import toy_graph
    from testkit.toy_graph import ParallelToy
    register("toy-parallel", ParallelToy)
    run_id, request_id, action, name, gate = sys.argv[1:6]
    with Chainproof() as app:
        Path(gate + "." + name).touch()           # ready
        while not Path(gate).exists():            # wait for the go signal
            time.sleep(0.005)
        try:
            r = app.decide(run_id, action=action, approver=name, comment="from " + name, request_id=request_id)
        except ApprovalRefused as exc:
            print("REFUSED", exc)
            sys.exit(2)
        except RunBusy as exc:  # the other decider holds the run's lock right now
            print("BUSY", exc)
            sys.exit(3)
        print(json.dumps({"status": r.status, "pending": [q["request_id"] for q in r.requests],
                          "prepared": toy_graph.PREPARED, "tool_calls": toy_graph.CALLS}))
""")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, home):
    """``(settings, env)`` for this process and for child processes, on one backend."""
    env = without_settings()
    env["CHAINPROOF_HOME"] = str(home)
    if request.param == "postgres":
        reason = unreachable()
        if reason:
            pytest.skip(reason)
        url = request.getfixturevalue("pg_url")  # sets the fleet's operator trust: the deciders inherit it
        env = {**without_settings(), "CHAINPROOF_HOME": str(home)}
        env.update(CHAINPROOF_DATABASE_URL=url, CHAINPROOF_CHECKPOINT_URL=url)
        return Settings(home=home, database_url=url, checkpoint_url=url), env
    return Settings(home=home), env


def _start(settings: Settings) -> tuple[str, list[dict]]:
    toy_graph.PREPARED.clear()
    model = ScriptedChatModel(replies=["a", "b", "c", json.dumps({"verdict": "yes", "reason": "large enough"})])
    with Chainproof(settings, models=StaticModels(model)) as app:
        run = app.start("toy-parallel", {"x": 3})
    assert run.status == "paused" and len(run.requests) == 3
    return run.run_id, run.requests


def _deciders(env: dict[str, str], gate: Path, *args: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen([sys.executable, "-c", DECIDER, *a, str(gate)], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for a in args]
    deadline = time.monotonic() + 120
    while not all(Path(f"{gate}.{a[3]}").exists() for a in args):
        assert time.monotonic() < deadline, "decider processes did not start"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    gate.touch()
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        outs.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return outs


def test_pause_here_decide_one_parallel_request_in_another_process(backend, tmp_path):
    settings, env = backend
    run_id, requests = _start(settings)
    beta = requests[1]["request_id"]
    [out] = _deciders(env, tmp_path / "go", (run_id, beta, "approve", "Other Process"))
    assert out.returncode == 0, out.stderr + out.stdout
    child = json.loads(out.stdout)
    assert child["status"] == "paused"
    assert child["pending"] == [requests[0]["request_id"], requests[2]["request_id"]]
    assert child["prepared"] == {} and child["tool_calls"] == {}  # the other process re-ran nothing
    assert toy_graph.PREPARED == {"alpha": 1, "beta": 1, "gamma": 1}
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=[]))) as app:
        decisions = [(a.request_id, a.action, a.approver, a.comment)
                     for a in app.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"]
        assert decisions == [(beta, "approve", "Other Process", "from Other Process")]
        assert [r["request_id"] for r in app.pending_requests(run_id)] == child["pending"]


def test_two_processes_racing_on_one_request_exactly_one_decides(backend, tmp_path):
    settings, env = backend
    run_id, requests = _start(settings)
    alpha = requests[0]["request_id"]
    outs = _deciders(env, tmp_path / "go", (run_id, alpha, "approve", "Ana"), (run_id, alpha, "reject", "Bob"))
    codes = sorted(o.returncode for o in outs)
    assert codes in ([0, 2], [0, 3]), [(o.stdout, o.stderr) for o in outs]  # refused after it, or busy during it
    winner = ["Ana", "Bob"][[o.returncode for o in outs].index(0)]
    loser_out = next(o for o in outs if o.returncode != 0).stdout
    assert ("REFUSED" in loser_out and alpha in loser_out) or ("BUSY" in loser_out and run_id in loser_out)
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=[]))) as app:
        decisions = [(a.request_id, a.approver) for a in app.audit.records_of(run_id, ApprovalRecord)
                     if a.action != "requested"]
        approve_steps = [s for s in app.audit.records_of(run_id, Step) if s.node == "approve"]
        assert decisions == [(alpha, winner)]
        assert len(approve_steps) == 1 and approve_steps[0].output["approver"] == winner
        assert len(app.pending_requests(run_id)) == 2
