"""Long-chain benchmark: does per-step cost stay flat as a chain grows?

Runs, in one process and one run, a 500-step chain twice with scripted model answers:

* **chainproof**: the orchestrator (bounded state, goal review every 5 plan steps, audit store),
  SQLite checkpointer (``durability="sync"``) and SQLite audit store;
* **plain loop**: a one-node LangGraph loop that keeps an ``add_messages`` history and sends it to
  the model every step, with the same SqliteSaver and ``durability="sync"``;
* **bare loop** (JSON key ``bare_loop``): a bare LangGraph loop of Chainproof's shape without
  Chainproof: ``act`` calls a no-op tool, ``observe`` asks the same scripted model to interpret
  it and keeps a bounded window of findings; the same SQLite saver, ``durability="sync"``. It is
  the floor Chainproof's engine cost is measured against (the ratio ``chainproof_over_bare``).

Reports the wall time per plan step around steps 10, 100, 250 and 500 (median of the 5 steps
ending there), bytes written per step (database files after a WAL checkpoint; the reasoning
cache's pages, measured with SQLite's ``dbstat``, are reported apart) and the ratios.
Targets: chainproof's step-500 time within 1.3x of step 10; checkpoint + audit storage at most
8 KiB per step; chainproof's time per plan step within 2x of the bare loop's at steps 10 and 500.

Usage: ``python bench/long_chain.py [--steps 500] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

# The scripted benchmark graph is shared with the tests (tests/support/testkit); only that folder is
# added to the path, never the repository root, so chainproof is imported as installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.saver import open_checkpointer
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.long_graph import LongChain, _tick, long_model

MARKS = (10, 100, 250, 500)


def _db_bytes(path: Path) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path.stat().st_size


CACHE_OBJECTS = ("reasoning_cache", "sqlite_autoindex_reasoning_cache_1", "ix_reasoning_cache_expires_at")


def _cache_bytes(path: Path) -> int:
    """Bytes of the reasoning cache's table and indexes inside the audit database (SQLite's
    ``dbstat``): the cache shares the database but is not audit storage."""
    conn = sqlite3.connect(path)
    marks = ",".join("?" * len(CACHE_OBJECTS))
    size = conn.execute(f"SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN ({marks})", CACHE_OBJECTS).fetchone()[0]
    conn.close()
    return int(size)


def _per_step_ms(stamps: list[float], marks: tuple[int, ...]) -> dict[int, float]:
    """Median duration (ms) of the 5 steps ending at each mark; stamps[i] = end of step i+1."""
    durations = [b - a for a, b in zip(stamps, stamps[1:])]  # durations[i] = step i+2
    out = {}
    for mark in marks:
        window = durations[max(0, mark - 6): mark - 1]
        out[mark] = round(statistics.median(window) * 1000, 3) if window else float("nan")
    return out


def run_chainproof(steps: int, folder: Path) -> dict[str, Any]:
    register("long", LongChain)
    settings = Settings(home=folder / "chainproof")
    stamps: list[float] = []

    def progress(event: dict[str, Any]) -> None:
        if event["node"] == "observe":
            stamps.append(time.perf_counter())

    started = time.perf_counter()
    with Chainproof(settings, models=StaticModels(long_model())) as app:
        result = app.start("long", {"n": steps}, max_steps=steps, on_progress=progress)
    wall = time.perf_counter() - started
    assert result.status == "completed" and result.state["done_count"] == steps, result.status
    ckpt = _db_bytes(Path(settings.resolved_checkpoint_url))
    audit_path = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
    audit_file = _db_bytes(audit_path)
    cache = _cache_bytes(audit_path)
    return {"per_step_ms": _per_step_ms(stamps, MARKS), "wall_s": round(wall, 2), "checkpoint_bytes": ckpt,
            "audit_bytes": audit_file - cache, "cache_bytes": cache, "bytes_per_step": round((ckpt + audit_file - cache) / steps)}


class LoopState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    count: int


def run_plain_loop(steps: int, folder: Path) -> dict[str, Any]:
    model = ScriptedChatModel(replies=["ok"], repeat_last=True)
    stamps: list[float] = []

    def agent(state: LoopState) -> dict[str, Any]:
        n = state["count"] + 1
        result = _tick(f"plain{n}")
        prompt = HumanMessage(f"Step {n}: tool result {json.dumps(result)}. Note the value.")
        reply = model.invoke([*state["messages"], prompt])
        stamps.append(time.perf_counter())
        return {"messages": [prompt, reply], "count": n}

    builder = StateGraph(LoopState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", lambda s: "agent" if s["count"] < steps else END, ["agent", END])
    path = folder / "plain" / "checkpoints.sqlite"
    started = time.perf_counter()
    with open_checkpointer(str(path)) as saver:
        graph = builder.compile(checkpointer=saver)
        graph.invoke({"messages": [], "count": 0}, {"configurable": {"thread_id": "plain"}, "recursion_limit": steps + 5},
                     durability="sync")
    wall = time.perf_counter() - started
    size = _db_bytes(path)
    return {"per_step_ms": _per_step_ms(stamps, MARKS), "wall_s": round(wall, 2), "checkpoint_bytes": size,
            "audit_bytes": 0, "cache_bytes": 0, "bytes_per_step": round(size / steps)}


class BareState(TypedDict):
    n: int
    done: int
    pending: dict[str, Any] | None
    findings: list[str]


def run_bare_loop(steps: int, folder: Path) -> dict[str, Any]:
    model = ScriptedChatModel(replies=["ok"], repeat_last=True)
    stamps: list[float] = []

    def noop(step: str) -> dict[str, Any]:
        return {"step": step}

    def act(state: BareState) -> dict[str, Any]:
        return {"pending": noop(f"s{state['done'] + 1}")}

    def observe(state: BareState) -> dict[str, Any]:
        reply = model.invoke([HumanMessage(f"Tool result {json.dumps(state['pending'])}. Note the value.")])
        stamps.append(time.perf_counter())
        return {"pending": None, "done": state["done"] + 1, "findings": [*state["findings"], str(reply.content)][-3:]}

    builder = StateGraph(BareState)
    builder.add_node("act", act)
    builder.add_node("observe", observe)
    builder.add_edge(START, "act")
    builder.add_edge("act", "observe")
    builder.add_conditional_edges("observe", lambda s: "act" if s["done"] < s["n"] else END, ["act", END])
    path = folder / "bare" / "checkpoints.sqlite"
    started = time.perf_counter()
    with open_checkpointer(str(path)) as saver:
        graph = builder.compile(checkpointer=saver)
        graph.invoke({"n": steps, "done": 0, "pending": None, "findings": []},
                     {"configurable": {"thread_id": "bare"}, "recursion_limit": 2 * steps + 5}, durability="sync")
    wall = time.perf_counter() - started
    size = _db_bytes(path)
    return {"per_step_ms": _per_step_ms(stamps, MARKS), "wall_s": round(wall, 2), "checkpoint_bytes": size,
            "audit_bytes": 0, "cache_bytes": 0, "bytes_per_step": round(size / steps)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {"chainproof": run_chainproof(args.steps, folder), "plain_loop": run_plain_loop(args.steps, folder),
                   "bare_loop": run_bare_loop(args.steps, folder)}
    marks = [m for m in MARKS if m <= args.steps]
    for r in results.values():
        r["late_over_early"] = round(r["per_step_ms"][marks[-1]] / r["per_step_ms"][marks[0]], 3)
    results["chainproof_over_bare"] = {
        m: round(results["chainproof"]["per_step_ms"][m] / results["bare_loop"]["per_step_ms"][m], 2) for m in marks}
    results["steps"] = args.steps
    results["storage_ratio_plain_over_chainproof"] = round(
        results["plain_loop"]["bytes_per_step"] / results["chainproof"]["bytes_per_step"], 2)
    if args.json:
        print(json.dumps(results))
        return 0
    header = "| run | " + " | ".join(f"ms/step @{m}" for m in marks) + " | late/early | KiB/step | DB MiB | wall s |"
    print(header)
    print("|" + "---|" * (len(marks) + 5))
    for name in ("chainproof", "bare_loop", "plain_loop"):
        r = results[name]
        total = (r["checkpoint_bytes"] + r["audit_bytes"] + r["cache_bytes"]) / 2**20
        print(f"| {name} | " + " | ".join(f"{r['per_step_ms'][m]:.2f}" for m in marks)
              + f" | {r['late_over_early']:.2f} | {r['bytes_per_step'] / 1024:.2f} | {total:.2f} | {r['wall_s']:.1f} |")
    print("\nchainproof / bare loop, time per plan step: "
          + ", ".join(f"@{m}: {r:.2f}x" for m, r in results["chainproof_over_bare"].items()) + " (target: at most 2x)")
    print(f"\nplain loop stores {results['storage_ratio_plain_over_chainproof']}x the bytes per step of chainproof "
          "(chainproof: checkpoints + audit tables; plain loop: checkpoints only). A step is a plan step "
          "(act + observe, plus a goal review every 5). The reasoning cache, which shares the audit database "
          f"but is not audit storage, adds {results['chainproof']['cache_bytes'] / args.steps / 1024:.2f} KiB per step.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
