"""Web app benchmark: live events from the audit write to the SSE client, 50 clients on one run,
and the trace page of a 500-step run.

    python bench/web.py [--steps 100] [--clients 50] [--trace-steps 500] [--json]

The app (``chainproof.web.create_app``) is served by uvicorn on 127.0.0.1 in this process over a
SQLite audit store in a temporary folder; clients read ``/api/runs/ID/events`` over real HTTP
(httpx, ``Authorization: Bearer`` with an auditor's API token). A writer thread appends one
step row every ``--interval`` seconds through ``AuditStore.append`` (hashed, chained, one commit),
then ``run_completed``, which ends every stream.

* **latency**: from the moment ``append`` returned (the step is committed) to the moment the
  client has read the event whose id is that step's ``seq``: p50 / p95 / max over ``--steps``
  steps with one client (target: p95 under 200 ms; the stream polls the store every
  ``_sse.POLL_S`` = 0.1 s, which bounds it from below);
* **fan-out**: ``--clients`` concurrent SSE clients on one run while the steps are written:
  events lost = steps written minus step events received, summed over clients (target: 0), plus
  duplicates and out-of-order ids (both must be 0) and the latency p95 under that load;
* **trace page**: ``GET /runs/ID/trace`` of a recorded run of ``--trace-steps`` steps (each with
  a model call of a ~1 KB prompt and a tool call), rendered in process (FastAPI ``TestClient``,
  signed in as the auditor): the first request and the median of 3 (target: under 1 s).

Both clocks are this process's ``time.perf_counter``; run it with ``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_schema import EventRecord, ModelCallRecord, Step, ToolCallRecord
from chainproof.graphs.sla import percentile
from chainproof.settings import Settings
from chainproof.web import create_app

PASSWORD = "bench password long enough"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _step(no: int, prompt: str = "") -> list[Any]:
    now = datetime.now(UTC)
    rows: list[Any] = []
    if prompt:
        rows += [ModelCallRecord(step_no=no, node="act", model="m", effort="low", prompt_hash="0" * 64,
                                 messages=[{"role": "user", "content": prompt}], output=f"answer {no} " * 20,
                                 reasoning="", tool_calls=[], input_tokens=300, cached_input_tokens=0, output_tokens=60,
                                 reasoning_tokens=0, latency_s=0.4, finish_reason="stop", attempt=1, cost_usd=0.0001),
                 ToolCallRecord(step_no=no, node="act", tool="lookup", args={"q": f"item {no}"},
                                result={"rows": [no, no * 2], "note": "ok"}, error=None, latency_s=0.01)]
    rows.append(Step(step_no=no, node="act", kind="tool", title=f"Step {no}", status="ok", effort="low", inputs={},
                     output={"finding": f"finding {no}"}, input_tokens=300 if prompt else 0,
                     output_tokens=60 if prompt else 0, cost_usd=0.0001 if prompt else 0.0, started_at=now, duration_s=0.5))
    return rows


class Served:
    """The app on uvicorn in a thread, with an auditor's API token and a signed-in page client."""

    def __init__(self, home: Path):
        self.engine = Chainproof(Settings(home=home), models=StaticModels(ScriptedChatModel(replies=["unused"])))
        self.app = create_app(self.engine, workers=1)
        accounts = self.app.state.accounts
        accounts.add("aud", PASSWORD, ["auditor"], actor="bench")
        self.token, _ = accounts.issue_token(accounts.login("aud", PASSWORD))
        self.port = _port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.engine.close()


def _write(audit: AuditStore, run_id: str, steps: int, interval: float, written: dict[int, float],
           ready: threading.Event) -> None:
    ready.wait(timeout=30)
    time.sleep(0.3)  # the streams are open and polling
    for no in range(1, steps + 1):
        [step] = audit.append(run_id, *_step(no))
        written[step.seq] = time.perf_counter()
        time.sleep(interval)
    audit.append(run_id, EventRecord(kind="run_completed", detail={}))


async def _client(url: str, token: str, got: list[tuple[int, float]], connected: list[int]) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=30)) as http:
        async with http.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as r:
            r.raise_for_status()
            connected.append(1)
            event, seq = None, None
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("id: "):
                    seq = int(line[4:])
                elif not line and event:
                    if event == "step_finished" and seq is not None:
                        got.append((seq, time.perf_counter()))
                    event, seq = None, None


def stream_run(served: Served, steps: int, clients: int, interval: float) -> dict[str, Any]:
    """``clients`` SSE clients on one fresh run while ``steps`` steps are written."""
    audit = served.engine.audit
    run_id = uuid.uuid4().hex[:12]
    audit.start_run(run_id, graph="bench", goal="bench", inputs={})
    written: dict[int, float] = {}
    received: list[list[tuple[int, float]]] = [[] for _ in range(clients)]
    connected: list[int] = []
    ready = threading.Event()
    writer = threading.Thread(target=_write, args=(audit, run_id, steps, interval, written, ready))
    writer.start()

    async def everyone() -> None:
        url = f"{served.url}/api/runs/{run_id}/events"
        tasks = [asyncio.create_task(_client(url, served.token, received[i], connected)) for i in range(clients)]
        while len(connected) < clients and not all(t.done() for t in tasks):
            await asyncio.sleep(0.05)
        ready.set()
        await asyncio.gather(*tasks)

    asyncio.run(everyone())
    writer.join()
    latencies = [(at - written[seq]) * 1000 for got in received for seq, at in got if seq in written]
    seqs = [[seq for seq, _ in got] for got in received]
    return {"clients": clients, "steps": steps,
            "lost": sum(len(set(written) - set(s)) for s in seqs),
            "duplicates": sum(len(s) - len(set(s)) for s in seqs),
            "out_of_order": sum(s != sorted(s) for s in seqs),
            "latency_ms": {"p50": round(percentile(latencies, 50) or 0, 1), "p95": round(percentile(latencies, 95) or 0, 1),
                           "max": round(max(latencies, default=0), 1)}}


def trace_page(served: Served, steps: int) -> dict[str, Any]:
    audit = served.engine.audit
    run_id = uuid.uuid4().hex[:12]
    audit.start_run(run_id, graph="bench", goal="bench", inputs={})
    prompt = "Read the filing section and list the material matters. " * 18  # ~1 KB
    for no in range(1, steps + 1):
        audit.append(run_id, *_step(no, prompt))
    audit.append(run_id, EventRecord(kind="run_completed", detail={}))
    page = TestClient(served.app, base_url="https://testserver")
    r = page.post("/login", data={"username": "aud", "password": PASSWORD, "next": "/runs"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    times = []
    size = 0
    for _ in range(4):
        t0 = time.perf_counter()
        r = page.get(f"/runs/{run_id}/trace")
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200 and f"Step {steps}" in r.text, r.text[-500:]
        size = len(r.content)
    return {"steps": steps, "records": len(audit.records(run_id)), "first_s": round(times[0], 3),
            "median_s": round(statistics.median(times[1:]), 3), "bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="steps written while clients stream")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between two step writes")
    parser.add_argument("--clients", type=int, default=50, help="concurrent SSE clients for the fan-out figure")
    parser.add_argument("--trace-steps", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        served = Served(Path(tmp) / "home")
        try:
            one = stream_run(served, args.steps, 1, args.interval)
            many = stream_run(served, args.steps, args.clients, args.interval)
            trace = trace_page(served, args.trace_steps)
        finally:
            served.close()
    results = {"latency": one, "fan_out": many, "trace_page": trace}
    if args.json:
        print(json.dumps(results))
        return
    lat = one["latency_ms"]
    print(f"Audit write -> SSE client, 1 client, {one['steps']} steps: p50 {lat['p50']} ms, p95 {lat['p95']} ms, "
          f"max {lat['max']} ms (target: p95 < 200 ms) {'OK' if lat['p95'] < 200 else 'MISSED'}")
    ml = many["latency_ms"]
    print(f"{many['clients']} concurrent SSE clients, {many['steps']} steps: events lost {many['lost']} "
          f"(target 0) {'OK' if many['lost'] == 0 else 'MISSED'}; duplicates {many['duplicates']}, "
          f"out of order {many['out_of_order']}; latency p50 {ml['p50']} ms, p95 {ml['p95']} ms, max {ml['max']} ms")
    print(f"Trace page of a {trace['steps']}-step run ({trace['records']} records, {trace['bytes']:,} bytes): "
          f"first {trace['first_s']:.3f} s, median of 3 {trace['median_s']:.3f} s (target: < 1 s) "
          f"{'OK' if trace['median_s'] < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
