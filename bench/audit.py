"""Audit-store benchmark: hashed audit rows per second (SQLite and PostgreSQL, one commit per step
against one batched commit) and the replay time of a recorded 50-step run.

    python bench/audit.py [--steps 200] [--pg-url postgresql://postgres@127.0.0.1:5432/test] [--json]

Each step appends 3 rows (a model call with a ~1 KB prompt, a tool call, the step row) through
``AuditStore.append``, which redacts, hashes and chains every row. SQLite is a WAL file in a
temporary folder (synchronous=FULL, the default); PostgreSQL uses a throwaway schema. Replay runs a
recorded run of a 50-step chain (plan, 23 tool→observe pairs, decide, approve, report) with
``graphs.replay.replay_run`` (median of 3). Target: replay of a 50-step run under 1 s.

Every appended row also writes its Merkle leaf row (``merkle_leaves``) in the same transaction; target:
at least 1,000 rows/s on SQLite with one commit per step. Merkle figures (``--merkle-leaves``,
default 10**6 synthetic leaves in memory): the tree hash, an RFC 9162 inclusion proof and a
consistency proof (built and verified; size in hashes and bytes), and signing a tree head over the
SQLite store the throughput runs wrote (reading its leaves, hashing, Ed25519). Store figures
(``--store-runs``, default 10,000 runs of 10 records): signing and publishing a head over that
store, and ``verify --against`` it (every record re-read and re-hashed). ``--leaves N`` is a short
name for ``--merkle-leaves`` (a quick run: ``--leaves 10000 --store-runs 100 --steps 50``).

Signed decisions (``--decisions``, default 1,000): building a decision statement and signing it
with Ed25519 (what ``approve --key`` adds to a decision), and checking it against the registered
key from the store (what ``verify`` adds per decision), in microseconds each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import StructuredTool
from pydantic import BaseModel

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_schema import ModelCallRecord, Step, ToolCallRecord
from chainproof.checkpoints.log_heads import LogKeys, publish_head
from chainproof.checkpoints.log_verifier import leaf_hash, root_of, verify_consistency, verify_inclusion
from chainproof.checkpoints.merkle import consistency_proof, inclusion_proof
from chainproof.graphs.registry import register
from chainproof.graphs.replay import replay_run
from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.graphs.view import ChainView
from chainproof.settings import Settings

PROMPT = ("Goal: assess the company. Steps done: a, b, c. What we know so far: " + "figures as reported; " * 45)[:1000]


def _step_rows(n: int) -> list[Any]:
    now = datetime.now(UTC)
    messages = [{"type": "system", "data": {"content": "You are a careful analyst."}},
                {"type": "human", "data": {"content": PROMPT + str(n)}}]
    return [
        ModelCallRecord(step_no=n, node="observe", model="bench", effort="medium", prompt_hash="a" * 64,
                        messages=messages, output="The figures show steady margins. " * 9, reasoning="",
                        tool_calls=[], input_tokens=250, cached_input_tokens=0, output_tokens=75,
                        reasoning_tokens=0, latency_s=0.5, finish_reason="stop", attempt=1, cost_usd=None),
        ToolCallRecord(step_no=n, node="act", tool="financial_health", args={"dossier": "MMM", "as_of": "2018-02-08"},
                       result={"revenue_cagr": 0.031, "flags": ["none"], "years": [2015, 2016, 2017]}, error=None,
                       latency_s=0.01),
        Step(step_no=n, node="observe", kind="observe", title=f"Interpret step {n}", status="ok", effort="medium",
             effort_reason="static", model="bench", inputs={"plan_step": f"s{n}"}, output={"finding": "steady"},
             input_tokens=250, output_tokens=75, cost_usd=None, started_at=now, duration_s=0.5),
    ]


def rows_per_second(url: str, steps: int, batched: bool) -> float:
    """Hashed rows appended per second (rows/s) to a fresh run at ``url``."""
    store = AuditStore(url)
    run_id = f"bench-{uuid.uuid4().hex[:8]}"
    store.start_run(run_id, graph="bench", goal="benchmark", inputs={})
    rows = [_step_rows(n) for n in range(1, steps + 1)]
    started = time.perf_counter()
    if batched:
        store.append(run_id, *[r for step in rows for r in step])
    else:
        for step in rows:
            store.append(run_id, *step)
    elapsed = time.perf_counter() - started
    store.close()
    return 3 * steps / elapsed


class Decision(BaseModel):
    verdict: Literal["go", "stop"]


def _lookup(key: str) -> dict[str, Any]:
    return {"key": key, "value": len(key), "note": "figures as reported"}


class BenchChain(ChainSpec[Decision]):
    """A chain of ``PAIRS`` tool steps: 1 + 2×23 + 3 = 50 super-steps."""

    name = "bench-chain"
    decision_schema = Decision
    PAIRS = 23

    def tools(self):
        return [StructuredTool.from_function(_lookup, name="lookup", description="look a key up")]

    def goal(self, inputs):
        return "Benchmark a 50-step chain."

    def plan(self, inputs):
        return [PlanStep(id=f"s{i}", title=f"Look up {i}", kind="tool", tool="lookup", args={"key": f"k{i}"},
                         instruction="Say what the value is.", effort="low") for i in range(self.PAIRS)]

    def decision_prompt(self, view: ChainView) -> str:
        return "Decide go or stop."

    def fallback_decision(self, view: ChainView, errors: list[str]) -> Decision:
        return Decision(verdict="stop")

    def render_report(self, view: ChainView) -> str:
        return f"# Bench\n{view.state['decision']}\n"


def replay_seconds(home: Path, repeats: int = 3) -> tuple[float, int, str]:
    """Median wall time (s) of replaying a recorded 50-step run, its step count and outcome."""
    register(BenchChain.name, BenchChain)
    model = ScriptedChatModel(replies=['{"verdict": "go"}'], repeat_last=True)
    # a store created with typed-name decisions (approvals.require_signature off): the figure is the replay's
    settings = Settings(home=home, approvals={"require_signature": False})
    with Chainproof(settings, models=StaticModels(model)) as app:
        run = app.start(BenchChain.name, {})
        app.decide(run.run_id, action="approve", approver="bench")
        times, report = [], None
        for _ in range(repeats):
            started = time.perf_counter()
            report = replay_run(app.audit, run.run_id)
            times.append(time.perf_counter() - started)
    return statistics.median(times), len(report.steps), report.outcome


def _timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def merkle_figures(n: int) -> dict[str, Any]:
    """Seconds to hash a tree of ``n`` leaves, and to build and verify an inclusion proof (of the
    middle leaf) and a consistency proof (from ``n // 2 + 1`` leaves), with their sizes."""
    leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]
    root, root_s = _timed(lambda: root_of(leaves))
    m = n // 2 + 1
    path, incl_s = _timed(lambda: inclusion_proof(leaves, n // 2))
    ok_i, incl_v = _timed(lambda: verify_inclusion(leaves[n // 2], n // 2, n, path, root))
    proof, cons_s = _timed(lambda: consistency_proof(leaves, m))
    old = root_of(leaves[:m])
    ok_c, cons_v = _timed(lambda: verify_consistency(m, n, old, root, proof))
    assert ok_i and ok_c
    return {"leaves": n, "root_s": round(root_s, 3),
            "inclusion": {"hashes": len(path), "bytes": 32 * len(path), "build_s": round(incl_s, 3),
                          "verify_ms": round(incl_v * 1000, 3)},
            "consistency": {"from": m, "hashes": len(proof), "bytes": 32 * len(proof), "build_s": round(cons_s, 3),
                            "verify_ms": round(cons_v * 1000, 3)}}


def head_seconds(url: str, home: Path) -> tuple[int, float]:
    """``(leaves, seconds)`` to sign and publish the tree head of the store at ``url``."""
    store = AuditStore(url)
    try:
        head, seconds = _timed(lambda: publish_head(store.engine, LogKeys(home / "key.pem", home / "pub"), []))
    finally:
        store.close()
    return head["tree_size"], seconds


def store_figures(runs: int, steps: int, home: Path) -> dict[str, Any]:
    """A SQLite store of ``runs`` runs of ``steps`` steps (3 rows each, one append per run): seconds
    to sign a tree head over it (no sink; then publishing to a new sink, which mirrors every leaf,
    and again) and to check it against that head (``verify --against``: every record read and
    hashed again, a consistency proof)."""
    from chainproof.checkpoints.log_heads import FileSink
    from chainproof.checkpoints.merkle_log import check_against

    store = AuditStore(f"sqlite:///{home}/store.sqlite")
    try:
        for _ in range(runs):
            run_id = f"bench-{uuid.uuid4().hex[:8]}"
            store.start_run(run_id, graph="bench", goal="benchmark", inputs={})
            store.append(run_id, *[r for n in range(1, steps + 1) for r in _step_rows(n)])
        keys, sink = LogKeys(home / "key.pem", home / "pub"), FileSink(home / "heads.jsonl")
        head, sign_s = _timed(lambda: publish_head(store.engine, keys, []))
        _, first_s = _timed(lambda: publish_head(store.engine, keys, [sink]))
        _, again_s = _timed(lambda: publish_head(store.engine, keys, [sink]))
        check, verify_s = _timed(lambda: check_against(store, head["tree_size"], bytes.fromhex(head["root_hash"]),
                                                       [sink.leaves()]))
        assert check.ok, check.as_dict()
    finally:
        store.close()
    return {"runs": runs, "leaves": head["tree_size"], "sign_s": round(sign_s, 3),
            "publish_new_sink_s": round(first_s, 3), "publish_again_s": round(again_s, 3),
            "verify_against_s": round(verify_s, 3)}


def decision_figures(n: int, home: Path) -> dict[str, Any]:
    """Microseconds per decision to build and sign a statement (``KeySigner``), and to look the
    key up in a SQLite store's registry and verify the signature (``decision_problem``'s work)."""
    from chainproof.checkpoints._approver_keys import (
        ApproverKeys,
        KeySigner,
        create_key,
        decision_statement,
        load_public_key,
        signature_problem,
    )

    private, public, _ = create_key(home / "approver" / "approver.key")
    signer = KeySigner.from_file(private)
    from chainproof.checkpoints.grants import OperatorTrust

    trust = OperatorTrust(home / "keys" / "operator.key", home / "keys" / "operator-public")
    trust.create()  # the operator key countersigns the approver's registration (a grant)
    store = AuditStore(f"sqlite:///{home}/decisions.sqlite", trust=trust)
    try:
        registry = ApproverKeys(store.engine)
        registry.add("Dana Approver", load_public_key(public), [], actor="bench")
        statements = [decision_statement(
            run_id=f"run{i}", thread_id=f"run{i}", checkpoint_id="1f0" + "0" * 33, interrupt_id="a" * 32,
            request_id="b" * 32, proposed_hash="c" * 64, action="edit", edited={"verdict": "yes", "n": i},
            comment="as discussed", approver="Dana Approver", key_id=signer.key_id,
            decided_at=datetime.now(UTC).isoformat()) for i in range(n)]
        signatures, sign_s = _timed(lambda: [signer.sign(s) for s in statements])
        problems, verify_s = _timed(lambda: [signature_problem(registry.active(signer.key_id).public_key, s, sig)
                                             for s, sig in zip(statements, signatures, strict=True)])
        assert not any(problems), problems[:1]
    finally:
        store.close()
    return {"decisions": n, "sign_us": round(sign_s / n * 1e6, 1), "verify_us": round(verify_s / n * 1e6, 1)}


def _pg_schema(url: str):
    import psycopg

    name = f"cp_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return name, f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps appended per measurement (3 rows each)")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--merkle-leaves", "--leaves", type=int, default=10**6, help="leaves of the in-memory Merkle figures")
    parser.add_argument("--decisions", type=int, default=1000, help="decisions signed and verified (0: skip)")
    parser.add_argument("--store-runs", type=int, default=10_000,
                        help="runs (3 steps, 10 records each) of the store heads are signed over and verified (0: skip)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    results: dict[str, Any] = {"steps": args.steps, "rows_per_step": 3, "audit_rows_per_s": {}}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/audit.sqlite"
        results["audit_rows_per_s"]["sqlite"] = {
            "commit_per_step": round(rows_per_second(url, args.steps, batched=False)),
            "batched": round(rows_per_second(url, args.steps, batched=True)),
        }
        try:
            schema, pg = _pg_schema(args.pg_url)
        except Exception as exc:
            results["audit_rows_per_s"]["postgresql"] = {"skipped": f"{type(exc).__name__}: {exc}"}
        else:
            try:
                results["audit_rows_per_s"]["postgresql"] = {
                    "commit_per_step": round(rows_per_second(pg, args.steps, batched=False)),
                    "batched": round(rows_per_second(pg, args.steps, batched=True)),
                }
            finally:
                import psycopg

                with psycopg.connect(args.pg_url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        size, head_s = head_seconds(url, Path(tmp))
        results["signed_head"] = {"leaves": size, "seconds": round(head_s, 3)}
        seconds, n_steps, outcome = replay_seconds(Path(tmp) / "home")
        if args.store_runs:
            results["store"] = store_figures(args.store_runs, 3, Path(tmp))
        if args.decisions:
            results["signed_decisions"] = decision_figures(args.decisions, Path(tmp))
    results["replay"] = {"steps": n_steps, "seconds": round(seconds, 3), "outcome": outcome, "model_calls": 0,
                         "target_s": 1.0, "meets_target": seconds < 1.0}
    results["merkle"] = merkle_figures(args.merkle_leaves)
    sqlite_rate = results["audit_rows_per_s"]["sqlite"]["commit_per_step"]
    results["append_target_rows_per_s"] = 1000
    results["append_meets_target"] = sqlite_rate >= 1000
    if args.json:
        print(json.dumps(results))
        return
    print(f"Audit rows per second (hash-chained, {args.steps} steps × 3 rows)")
    print(f"{'backend':<12} {'commit per step':>16} {'batched':>10}")
    for backend, row in results["audit_rows_per_s"].items():
        if "skipped" in row:
            print(f"{backend:<12} skipped: {row['skipped']}")
        else:
            print(f"{backend:<12} {row['commit_per_step']:>16,} {row['batched']:>10,}")
    print(f"SQLite, one commit per step: target >= 1,000 rows/s (with their Merkle leaves): "
          f"{'met' if results['append_meets_target'] else 'NOT met'}")
    h = results["signed_head"]
    print(f"Signing a tree head over that store ({h['leaves']:,} leaves): {h['seconds']:.3f} s")
    if "store" in results:
        st = results["store"]
        print(f"A store of {st['runs']:,} runs ({st['leaves']:,} leaves): signing a head {st['sign_s']:.3f} s; "
              f"publishing to a new sink (mirroring every leaf) {st['publish_new_sink_s']:.3f} s, again "
              f"{st['publish_again_s']:.3f} s; verify --against {st['verify_against_s']:.3f} s")
    mk = results["merkle"]
    print(f"\nMerkle tree of {mk['leaves']:,} leaves (in memory): root {mk['root_s']:.3f} s")
    for kind in ("inclusion", "consistency"):
        p = mk[kind]
        print(f"  {kind:<12} proof: {p['hashes']} hashes ({p['bytes']} bytes), built in {p['build_s']:.3f} s, "
              f"verified in {p['verify_ms']:.3f} ms")
    if "signed_decisions" in results:
        d = results["signed_decisions"]
        print(f"\nSigned decisions ({d['decisions']:,}): statement + Ed25519 signature {d['sign_us']:.1f} µs each; "
              f"registered-key lookup + verification {d['verify_us']:.1f} µs each")
    r = results["replay"]
    print(f"\nReplay of a recorded {r['steps']}-step run: {r['seconds']:.3f} s (median of 3, {r['outcome']}, "
          f"0 model calls; target < 1 s: {'met' if r['meets_target'] else 'NOT met'})")


if __name__ == "__main__":
    main()
