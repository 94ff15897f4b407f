"""Agent-loop benchmark: does an agent step's per-iteration cost stay flat as its loop grows?

Runs the test suite's agent graph (``tests/support/testkit/agent_graph.py``) with a scripted model
(no model time: each iteration's wall time is Chainproof's overhead plus a trivial tool) and the
SQLite checkpointer and audit store:

* a **50-iteration** agent step: 49 iterations that each call a tool, then the answer;
* the same step with **5 iterations** (4 tool calls, then the answer), for the marginal bytes.

Reports the wall time per iteration at iterations 5 and 50 (median of the iterations ending there,
from the progress event each iteration's step row sends; the median over ``--repeat`` runs, 5 by
default, as these machines are noisy), their ratio, and the bytes the database
files grow by per iteration (checkpoints + audit after a WAL checkpoint, the reasoning cache's
pages excluded: ``(bytes of the 50-iteration run - bytes of the 5-iteration run) / 45``; the
50-iteration run's total bytes / 50 is shown too). Targets: iteration 50 within 1.3x of
iteration 5; at most 8 KiB per iteration.

Then a **chain of ``--chain-steps`` plan steps (500) in parallel groups**
(``tests/support/testkit/parallel_graph.py``: groups of three independent tool steps whose results
the model interprets, then one step that needs them) is run twice, with ``depends_on`` (the groups
run concurrently) and without (the same steps in sequence), with a model that takes
``--delay`` seconds (0.02) per interpretation; the speed-up is the sequential wall time over the
parallel one (at most 3, the group size; less by the per-step overhead and the serial steps).

Usage: ``python bench/agent_loop.py [--iterations 50] [--repeat 5] [--chain-steps 500] [--delay 0.02] [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# the scripted graph is shared with the tests (tests/support/testkit), the storage measures with
# bench/long_chain.py; chainproof itself is imported as installed
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

from long_chain import _cache_bytes, _db_bytes, _per_step_ms  # noqa: E402

from chainproof.agents.models import StaticModels  # noqa: E402
from chainproof.agents.scripted import ScriptedChatModel  # noqa: E402
from chainproof.app import Chainproof  # noqa: E402
from chainproof.graphs.registry import register  # noqa: E402
from chainproof.settings import Settings  # noqa: E402
from testkit.agent_graph import DECISION, FINAL, AgentChain, call  # noqa: E402
from testkit.parallel_graph import ParallelChain, sleepy_model  # noqa: E402

TARGET_RATIO = 1.3
TARGET_BYTES = 8 * 1024


def replies(iterations: int) -> list[Any]:
    """``iterations - 1`` iterations that call a tool (arguments vary, as a real loop's do), the
    answer, then the decision."""
    tools = [call(("multiply", {"a": float(i), "b": 2.5})) if i % 2 else call(("ratio", {"numerator": float(i),
                                                                                         "denominator": 7.0}))
             for i in range(1, iterations)]
    return [*tools, FINAL, DECISION]


def run(iterations: int, folder: Path) -> dict[str, Any]:
    """One run of the agent step with ``iterations`` iterations; times per iteration and bytes."""
    register("agent-chain", lambda: AgentChain(max_iterations=iterations, review_every=0))
    settings = Settings(home=folder)
    stamps: list[float] = []

    def progress(event: Any) -> None:
        if getattr(event, "node", None) == "agent":
            stamps.append(time.perf_counter())

    started = time.perf_counter()
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=replies(iterations)))) as app:
        result = app.start("agent-chain", {}, max_steps=iterations + 10, on_progress=progress)
    wall = time.perf_counter() - started
    assert result.status == "completed" and result.state["iterations"] == iterations, result.status
    assert result.state["findings"]["compare"]["summary"] == FINAL
    ckpt = _db_bytes(Path(settings.resolved_checkpoint_url))
    audit_path = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
    audit = _db_bytes(audit_path) - _cache_bytes(audit_path)
    marks = tuple(m for m in (5, iterations) if m <= iterations)
    return {"per_iteration_ms": _per_step_ms(stamps, marks), "wall_s": round(wall, 3), "checkpoint_bytes": ckpt,
            "audit_bytes": audit, "bytes": ckpt + audit}


def chain_wall(steps: int, parallel: bool, delay: float, folder: Path) -> float:
    """Wall seconds of a ``steps``-step chain of parallel groups (``parallel``) or the same steps in
    sequence, the model taking ``delay`` s per interpretation; no reasoning cache."""
    register("parallel-chain", lambda: ParallelChain(parallel=parallel, groups=steps // 4, keep=False))
    started = time.perf_counter()
    with Chainproof(Settings(home=folder), models=StaticModels(sleepy_model(delay))) as app:
        result = app.start("parallel-chain", {}, max_steps=steps + 10, cache=False)
    assert result.status == "completed" and result.state["done_count"] == steps // 4 * 4, result.status
    return round(time.perf_counter() - started, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="runs of the long step; each mark's median is taken")
    parser.add_argument("--chain-steps", type=int, default=500, help="plan steps of the parallel-groups chain")
    parser.add_argument("--delay", type=float, default=0.02, help="model seconds per interpretation in that chain")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    n = args.iterations
    if n < 10:
        parser.error(f"--iterations: expected at least 10 (iteration 5 is the baseline), got {n}")
    if args.chain_steps < 8:
        parser.error(f"--chain-steps: expected at least 8 (two groups of four steps), got {args.chain_steps}")
    if args.repeat < 1:
        parser.error(f"--repeat: expected at least 1, got {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        long_runs = [run(n, Path(tmp) / f"long{i}") for i in range(args.repeat)]
        short_run = run(5, Path(tmp) / "short")
        steps = args.chain_steps
        sequential = chain_wall(steps, False, args.delay, Path(tmp) / "sequential")
        grouped = chain_wall(steps, True, args.delay, Path(tmp) / "parallel")
    long_run = long_runs[0]
    per = {m: round(statistics.median(r["per_iteration_ms"][m] for r in long_runs), 3) for m in (5, n)}
    results = {
        "iterations": n,
        "per_iteration_ms": {"5": per[5], str(n): per[n]},
        "late_over_early": round(per[n] / per[5], 3),
        "bytes_per_iteration": round((long_run["bytes"] - short_run["bytes"]) / (n - 5)),
        "total_bytes_per_iteration": round(long_run["bytes"] / n),
        "checkpoint_bytes": long_run["checkpoint_bytes"], "audit_bytes": long_run["audit_bytes"],
        "wall_s": long_run["wall_s"],
        "parallel_groups": {"steps": steps, "delay_s": args.delay, "sequential_s": sequential, "parallel_s": grouped,
                            "speedup": round(sequential / grouped, 2)},
        "targets": {"late_over_early_max": TARGET_RATIO, "bytes_per_iteration_max": TARGET_BYTES},
    }
    results["meets_targets"] = (results["late_over_early"] <= TARGET_RATIO
                                and results["bytes_per_iteration"] <= TARGET_BYTES)
    if args.json:
        print(json.dumps(results))
        return 0
    print(f"Agent step of {n} iterations, scripted model, SQLite checkpoints and audit store\n")
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| ms per iteration at iteration 5 (median) | {per[5]} | |")
    print(f"| ms per iteration at iteration {n} (median) | {per[n]} | |")
    print(f"| iteration {n} / iteration 5 | {results['late_over_early']} | <= {TARGET_RATIO} |")
    print(f"| bytes per iteration (marginal, {n} vs 5 iterations) | {results['bytes_per_iteration']:,} | "
          f"<= {TARGET_BYTES:,} |")
    print(f"| bytes per iteration (whole run / {n}) | {results['total_bytes_per_iteration']:,} | |")
    print(f"| wall time of the {n}-iteration run (s) | {long_run['wall_s']} | |")
    print(f"| {steps}-step chain in groups of 3 independent steps: sequence / parallel (s) | "
          f"{sequential} / {grouped} | |")
    print(f"| speed-up of the parallel groups | {results['parallel_groups']['speedup']}x | |")
    print(f"\nTargets {'met' if results['meets_targets'] else 'NOT met'}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
