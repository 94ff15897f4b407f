"""CLI start-up benchmark: wall time of each read-only command against a store of N runs.

    python bench/cli.py [--runs 200] [--repeats 5] [--json]

Builds, in a temporary ``CHAINPROOF_HOME``, N runs of a small chain (two tool steps, a reasoning
step, a decision) with a scripted model (no network, no model weights): every other run is
approved to completion, the rest stay paused at their approval request. Then it times each
read-only command (``runs``, ``show RUN``, ``verify RUN``, ``pending``, ``costs RUN``) as a
subprocess of this Python (``python -m chainproof.cli``), median of ``--repeats``. Target (issue
10): under 0.5 s wall each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import StructuredTool
from pydantic import BaseModel

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.graphs.registry import register
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.settings import Settings

TARGET_S = 0.5


class Verdict(BaseModel):
    verdict: Literal["go", "stop"]


def _lookup(key: str) -> dict[str, Any]:
    return {"key": key, "value": len(key)}


class SmallChain(ChainSpec):
    """Two tool steps and one reasoning step, then a decision a person approves."""

    name = "bench-cli"
    decision_schema = Verdict

    def tools(self):
        return [StructuredTool.from_function(_lookup, name="lookup", description="look a key up")]

    def goal(self, inputs):
        return f"Benchmark run {inputs.get('n')}."

    def plan(self, inputs):
        steps = [PlanStep(id=f"s{i}", title=f"Look up {i}", kind="tool", tool="lookup", args={"key": f"k{i}"},
                          instruction="Say what the value is.", effort="low") for i in range(2)]
        return [*steps, PlanStep(id="think", title="Think", kind="reason", instruction="Go or stop?", effort="low")]

    def decision_prompt(self, view):
        return "Decide go or stop."

    def fallback_decision(self, view, errors):
        return Verdict(verdict="stop")

    def render_report(self, view):
        return f"# Bench\n{view.decision}\n"


def build_store(home: Path, runs: int) -> str:
    """Record ``runs`` runs in ``home``; returns the id of the last (a completed run)."""
    register(SmallChain.name, SmallChain)
    model = ScriptedChatModel(replies=['{"verdict": "go"}'], repeat_last=True)
    last = ""
    with Chainproof(Settings(home=home), models=StaticModels(model)) as app:
        for n in range(runs):
            run = app.start(SmallChain.name, {"n": n}, started_by="bench", department="bench")
            if n % 2 == 1 or n == runs - 1:
                app.decide(run.run_id, action="approve", approver="bench")
                last = run.run_id
    return last


def time_command(args: list[str], env: dict[str, str], repeats: int) -> tuple[float, int]:
    """Median wall seconds of ``python -m chainproof.cli ARGS`` and its exit code."""
    times, code = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "chainproof.cli", *args], env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        code = done.returncode
        if code != 0:
            raise SystemExit(f"chainproof {' '.join(args)} exited {code}: {done.stderr.strip()}")
    return statistics.median(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs in the store")
    parser.add_argument("--repeats", type=int, default=5, help="timings per command (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        run_id = build_store(home, args.runs)
        build_s = time.perf_counter() - started
        env = {**os.environ, "CHAINPROOF_HOME": str(home), "COLUMNS": "200"}
        for var in ("CHAINPROOF_DATABASE_URL", "CHAINPROOF_CHECKPOINT_URL", "CHAINPROOF_CONFIG"):
            env.pop(var, None)
        commands = {"runs": ["runs"], "show": ["show", run_id], "verify": ["verify", run_id], "pending": ["pending"],
                    "costs": ["costs", run_id]}
        seconds = {name: round(time_command(cmd, env, args.repeats)[0], 3) for name, cmd in commands.items()}
    results = {"runs": args.runs, "repeats": args.repeats, "build_s": round(build_s, 1), "target_s": TARGET_S,
               "seconds": seconds, "all_within_target": all(s < TARGET_S for s in seconds.values())}
    if args.json:
        print(json.dumps(results))
        return
    print(f"store: {args.runs} runs (built in {build_s:.1f}s); wall time per command, median of {args.repeats}")
    print(f"{'command':<10} {'seconds':>8} {'target':>8}  ok")
    for name, value in seconds.items():
        print(f"{name:<10} {value:>8.3f} {'< ' + str(TARGET_S):>8}  {'yes' if value < TARGET_S else 'NO'}")


if __name__ == "__main__":
    main()
