"""One advancer per run across hosts: processes with separate CHAINPROOF_HOMEs (so no file lock is
shared) and one PostgreSQL database race to resume the same run, or to approve it while another
resumes it. Every round, one process advances the run and the other gets RunBusy (or, if it came
after, finds nothing to do): each step's tool runs once, and the model requests made add up to
those of one advance."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ModelCallRecord as ModelCall
from chainproof.checkpoints.audit_schema import Step
from chainproof.checkpoints.verify import verify_run
from chainproof.settings import Settings
from testkit import fleet

fleet.register_all()

RACER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from chainproof.agents.models import StaticModels
    from chainproof.app import Chainproof
    from chainproof.errors import ChainproofError, RunBusy
    from testkit.fleet import fleet_model, register_all
    register_all()
    mode, run_id, gate, name = sys.argv[1:5]
    model = fleet_model(0.05)
    with Chainproof(models=StaticModels(model)) as app:
        Path(gate + "." + name).touch()           # ready
        while not Path(gate).exists():            # wait for the go signal
            time.sleep(0.002)
        try:
            if mode == "approve":
                r = app.decide(run_id, action="approve", approver=name)
            else:
                r = app.resume(run_id, max_steps=15)
            outcome = r.status
        except RunBusy:
            outcome = "busy"
        except ChainproofError as exc:            # came after the winner: nothing left to do
            outcome = "nothing: " + type(exc).__name__
        print(json.dumps({"outcome": outcome, "model_requests": len(model.calls)}))
""")



def _race(url: str, tmp: Path, round_no: int, *runs: tuple[str, str]) -> list[dict]:
    """Start one racer per ``(mode, run_id)``, each with its own home, release them together."""
    gate = tmp / f"go{round_no}"
    procs = []
    for i, (mode, run_id) in enumerate(runs):
        env = fleet.child_env(tmp / f"home-{round_no}-{i}", url, tmp)
        procs.append(subprocess.Popen([sys.executable, "-c", RACER, mode, run_id, str(gate), f"p{i}"], cwd=fleet.REPO,
                                      env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    deadline = time.monotonic() + 120
    while not all(Path(f"{gate}.p{i}").exists() for i in range(len(runs))):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    gate.touch()
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr[-3000:]
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outs


# 3 rounds in the default suite; the 20 of issue 12's "Done when" with `pytest -m slow`
ROUNDS = pytest.mark.parametrize("rounds", [3, pytest.param(20, marks=pytest.mark.slow)])


@ROUNDS
def test_resume_against_resume_from_two_homes_advances_once(pg_url, tmp_path, rounds):
    settings = Settings(home=tmp_path / "home", database_url=pg_url, checkpoint_url=pg_url)
    for round_no in range(rounds):
        with Chainproof(settings, models=StaticModels(fleet.fleet_model())) as app:
            run = app.start("fleet", {"tag": f"r{round_no}", "n": 15}, max_steps=10)  # stops at its step budget
            assert run.budget_stop is not None
            before = len(app.audit.records_of(run.run_id, ModelCall))
        effects_before = len(fleet.lines(tmp_path / "effects.log"))
        outs = _race(pg_url, tmp_path, round_no, ("resume", run.run_id), ("resume", run.run_id))
        winner, loser = sorted(outs, key=lambda o: o["outcome"] != "completed")
        assert winner["outcome"] == "completed" and loser["outcome"] in ("busy", "nothing: RunNotResumable"), outs
        assert loser["model_requests"] == 0
        with Chainproof(settings, models=StaticModels(fleet.fleet_model())) as app:
            calls = app.audit.records_of(run.run_id, ModelCall)
            steps = [s.title for s in app.audit.records_of(run.run_id, Step) if s.title.startswith("Step ")]
        effects = fleet.lines(tmp_path / "effects.log")[effects_before:]
        assert sorted(line.split()[1] for line in effects) == sorted(f"s{i}" for i in range(11, 16))  # each once
        assert len(steps) == len(set(steps)) == 15
        # the requests both processes sent are those one advance records (no second execution)
        assert sum(o["model_requests"] for o in outs) == len(calls) - before > 0


@ROUNDS
def test_approve_against_resume_from_two_homes_applies_the_decision_once(pg_url, tmp_path, rounds):
    settings = Settings(home=tmp_path / "home", database_url=pg_url, checkpoint_url=pg_url)
    for round_no in range(rounds):
        with Chainproof(settings, models=StaticModels(fleet.fleet_model())) as app:
            run = app.start("fleet-gated", {"tag": f"a{round_no}", "n": 2})
            assert run.status == "paused" and len(run.requests) == 1
            before = len(app.audit.records_of(run.run_id, ModelCall))
        outs = _race(pg_url, tmp_path, round_no, ("approve", run.run_id), ("resume", run.run_id))
        approve, resume = outs
        # the approver wins (and completes the run), or loses the lock before recording anything
        assert approve["outcome"] in ("completed", "busy"), outs
        assert resume["outcome"] in ("busy", "nothing: RunNotResumable", "completed"), outs
        assert [o["outcome"] for o in outs].count("completed") <= 1, outs
        with Chainproof(settings, models=StaticModels(fleet.fleet_model())) as app:
            nodes = [s.node for s in app.audit.records_of(run.run_id, Step)]
            decided = app.audit.decision_for(run.requests[0]["request_id"])
            after = len(app.audit.records_of(run.run_id, ModelCall)) - before
            if approve["outcome"] == "busy":  # nothing was recorded: the person answers again
                assert decided is None and "approve" not in nodes
                assert app.decide(run.run_id, action="approve", approver="again").status == "completed"
                nodes = [s.node for s in app.audit.records_of(run.run_id, Step)]
            assert nodes.count("approve") == 1 and nodes.count("report") == 1
            assert app.audit.run_status(run.run_id) == "completed" and verify_run(app.audit, run.run_id).ok
        assert sum(o["model_requests"] for o in outs) == after
