"""Shared RPM/TPM budgets: what one reservation costs, and whether two processes keep to one limit.

For each store of the buckets (``process``: in memory, one budget per process; ``redis``: the
Lua script in the local Redis; ``database``: the upsert in the local PostgreSQL, a fresh
database), two processes reserve at once:

* cost: ``--calls`` reservations each on a limit too high to wait (1e9 RPM and TPM), wall time per
  reservation (p50/p95, milliseconds): the overhead a model call pays for the shared budget;
* correctness: ``--seconds`` of reservations as fast as allowed on ``--rpm`` (600), the requests
  both processes were granted per minute, as a share of the limit (1.0 = exactly the limit;
  ``process`` gives each process its own budget, so about 2.0).

Usage: ``nice python bench/shared_limits.py [--calls 1000] [--rpm 600] [--seconds 10] [--json]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from chainproof.agents.ratelimit import PostgresRateLimiter, RateLimiter, RedisRateLimiter

REDIS_URL = "redis://127.0.0.1:6379/15"


def _limiter(store: str, url: str, key: str, rpm: float, tpm: float | None):
    if store == "process":
        return RateLimiter(rpm, tpm)
    if store == "redis":
        return RedisRateLimiter(REDIS_URL, key, rpm, tpm)
    return PostgresRateLimiter(url, key, rpm, tpm)


def _worker(store: str, url: str, key: str, calls: int, rpm: float, seconds: float, out: mp.Queue) -> None:
    fast = _limiter(store, url, key + ":fast", 1e9, 1e9)
    lat = []
    for _ in range(calls):
        t = time.perf_counter()
        fast.acquire(100)
        lat.append(time.perf_counter() - t)
    limited = _limiter(store, url, key + ":limited", rpm, None)
    granted = 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        limited.acquire(0)
        granted += 1
    out.put((lat, granted))


def run(store: str, url: str, calls: int, rpm: float, seconds: float) -> dict:
    key = f"bench-{uuid.uuid4().hex[:8]}"
    out: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_worker, args=(store, url, key, calls, rpm, seconds, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    lat = sorted(x for r in results for x in r[0])
    granted = sum(r[1] for r in results)
    burst = 2 * max(1.0, rpm / 60)  # each bucket starts full: one second's worth
    return {"store": store, "reserve_p50_ms": round(lat[len(lat) // 2] * 1000, 3),
            "reserve_p95_ms": round(lat[int(len(lat) * 0.95)] * 1000, 3),
            "granted_per_min": round((granted - burst) / seconds * 60, 1),
            "share_of_limit": round((granted - burst) / seconds * 60 / rpm, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rpm", type=float, default=600)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--stores", default="process,redis,database")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from testkit.pg import fresh_database

    rows = []
    with fresh_database() as url:
        for store in args.stores.split(","):
            rows.append(run(store, url, args.calls, args.rpm, args.seconds))
    if args.json:
        print(json.dumps({"rpm": args.rpm, "processes": 2, "rows": rows}))
        return 0
    print(f"2 processes, {args.calls} reservations each; {args.rpm:.0f} RPM for {args.seconds:.0f} s")
    cols = list(rows[0])
    print("  ".join(f"{c:>15}" for c in cols))
    for r in rows:
        print("  ".join(f"{r[c]!s:>15}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
