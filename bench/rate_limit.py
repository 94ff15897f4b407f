"""Rate-limit benchmark: many concurrent chains sharing one endpoint's RPM budget.

Starts the fault-injecting OpenAI-compatible server (``tests/support/testkit/fake_openai.py``) on 127.0.0.1 with
its own RPM limit (429 when exceeded), then runs ``--chains`` concurrent chains in one process,
each a loop of sequential model calls through ``ConfiguredModels`` (the production path:
client-side RPM limiter shared by the process, tenacity retries honouring ``Retry-After``) for
``--seconds`` seconds; calls already queued then finish.

Reports: achieved requests per minute as a share of the server's limit (answered calls over
the wall time from the first call to the last answer; the steady-state rate leaves out the first
2 s, which hold the limiter's initial burst of 1 s worth of requests), 429s that reached a caller, 429s the
server sent (absorbed by retries), and p50/p95 latency of a call (queueing for the limiter
included) and of the HTTP request alone. Targets (issue 7): at least 95 % of the configured RPM
with zero 429s reaching callers.

Usage: ``python bench/rate_limit.py [--rpm 600] [--chains 100] [--seconds 30] [--json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

from langchain_core.messages import HumanMessage

# The fault-injecting server is shared with the tests (tests/support/testkit); only that folder is
# added to the path, never the repository root, so chainproof is imported as installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from chainproof.agents.calls import call_model
from chainproof.agents.config import LocalModelSettings, ModelSettings
from chainproof.agents.models import ConfiguredModels
from chainproof.agents.resilience import ModelCallFailed
from testkit.fake_openai import FakeOpenAI


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run(rpm: float, chains: int, seconds: float, server_latency_s: float) -> dict:
    """Run the benchmark; returns the figures (seconds, requests per minute, counts)."""
    with FakeOpenAI(lambda body: "The figures are as reported.", rpm=rpm, latency_s=server_latency_s) as server:
        settings = ModelSettings(provider="openai", model="bench-model", base_url=server.base_url, rpm=rpm)
        chat = ConfiguredModels(settings, LocalModelSettings(), Path("/nonexistent")).chat("low")
        lock = threading.Lock()
        call_s: list[float] = []
        request_s: list[float] = []
        answered: list[float] = []
        failures: dict[str, int] = {}
        absorbed_429 = 0
        start = time.perf_counter()
        stop_at = start + seconds

        def chain(i: int) -> None:
            nonlocal absorbed_429
            step = 0
            while time.perf_counter() < stop_at:
                step += 1
                t0 = time.perf_counter()
                try:
                    _, call = call_model(chat, [HumanMessage(f"chain {i} step {step}: summarise")], effort="low")
                except ModelCallFailed as exc:
                    with lock:
                        failures[exc.kind or "other"] = failures.get(exc.kind or "other", 0) + 1
                    continue
                done = time.perf_counter()
                with lock:
                    call_s.append(done - t0)
                    request_s.append(call.http_attempts[-1]["latency_s"])
                    answered.append(done)
                    absorbed_429 += sum(1 for a in call.http_attempts if a["status_code"] == 429)

        threads = [threading.Thread(target=chain, args=(i,)) for i in range(chains)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = max(answered) - start if answered else float("nan")
        achieved = len(answered) / wall * 60.0 if answered else 0.0
        # without the first 2 s, which include the bucket's initial burst (1 s worth of requests)
        later = [t for t in answered if t > start + 2.0]
        steady = len(later) / (max(later) - start - 2.0) * 60.0 if len(later) > 1 else float("nan")
        return {
            "rpm_limit": rpm,
            "chains": chains,
            "issue_seconds": seconds,
            "wall_seconds": round(wall, 2),
            "calls_answered": len(answered),
            "achieved_rpm": round(achieved, 1),
            "share_of_limit": round(achieved / rpm, 4),
            "steady_state_rpm": round(steady, 1),
            "429_reached_callers": failures.get("rate_limited", 0),
            "other_failures": sum(v for k, v in failures.items() if k != "rate_limited"),
            "429_sent_by_server": server.stats.get("rate_limited", 0),
            "429_absorbed_by_retries": absorbed_429,
            "call_latency_p50_s": round(_pct(call_s, 0.50), 3),
            "call_latency_p95_s": round(_pct(call_s, 0.95), 3),
            "request_latency_p50_s": round(_pct(request_s, 0.50), 3),
            "request_latency_p95_s": round(_pct(request_s, 0.95), 3),
            "request_latency_mean_s": round(statistics.fmean(request_s), 3) if request_s else None,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rpm", type=float, default=600, help="the server's RPM limit (and the client's)")
    parser.add_argument("--chains", type=int, default=100, help="concurrent chains")
    parser.add_argument("--seconds", type=float, default=30, help="how long chains start new calls")
    parser.add_argument("--server-latency-ms", type=float, default=50, help="the server's answer time")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    results = run(args.rpm, args.chains, args.seconds, args.server_latency_ms / 1000)
    if args.json:
        print(json.dumps(results))
    else:
        width = max(map(len, results))
        print(f"{'figure':<{width}}  value")
        for key, value in results.items():
            print(f"{key:<{width}}  {value}")
        ok = results["share_of_limit"] >= 0.95 and results["429_reached_callers"] == 0
        print(f"\ntarget (>= 95 % of the RPM limit, no 429 reaching a caller): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
