"""Fleet-wide limits on the real PostgreSQL: two worker processes that share nothing but the
database URL keep, together, to one endpoint's RPM (the buckets are rows in the database; each
process alone would send at the full rate), and to a queue's runs-per-period limit (DBOS's queue
limiter counts starts in the database)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from chainproof.agents.models import StaticModels
from chainproof.agents.ratelimit import PostgresRateLimiter, RateLimitWaitTooLong
from chainproof.app import Chainproof
from chainproof.settings import Settings
from testkit import fleet
from testkit.fake_openai import FakeOpenAI

pytest.importorskip("dbos", reason="the workers extra (PyPI dbos) is not installed")

fleet.register_all()


def _max_in_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_two_workers_keep_together_to_one_endpoints_rpm(pg_url, tmp_path):
    rpm = 240  # 4 requests/s; a burst of 1 s (4 requests)
    arrivals: list[float] = []
    lock = threading.Lock()

    def answer(body):
        with lock:
            arrivals.append(time.monotonic())
        return fleet.fake_openai_answer(body)

    with FakeOpenAI(answer) as server:
        env = {"CHAINPROOF_MODEL__PROVIDER": "openai", "CHAINPROOF_MODEL__BASE_URL": server.base_url,
               "CHAINPROOF_MODEL__API_KEY": "test-key", "CHAINPROOF_MODEL__MODEL": "fleet-model",
               "CHAINPROOF_MODEL__RPM": str(rpm)}
        procs = fleet.start_ready(pg_url, tmp_path, "w1", "w2", concurrency=4, delay_s=-1, **env)
        settings = Settings(home=tmp_path / "submitter", database_url=pg_url, checkpoint_url=pg_url)
        with Chainproof(settings, models=StaticModels(fleet.fleet_model())) as app:
            ids = [app.submit("fleet", {"tag": f"r{i}", "n": 3}).run_id for i in range(12)]
            fleet.wait_status(app, ids, "completed", procs)
            outs = fleet.stop_workers(*procs)
    assert {o["worker"] for o in outs if o["advanced"]} == {"w1", "w2"}  # both workers called the model
    assert len(arrivals) == 12 * 4, len(arrivals)  # 4 requests a run
    span = max(arrivals) - min(arrivals)
    # together at most the limit: the burst, then 4/s (with one process-local budget each, 8/s)
    assert (len(arrivals) - 4) / span * 60 <= rpm * 1.1, (len(arrivals), span)
    assert _max_in_window(arrivals, 2.0) <= 4 + 8 + 1
    with psycopg.connect(pg_url) as conn:  # the budget is a row in the shared database
        keys = [k for (k,) in conn.execute("SELECT key FROM chainproof_rate_buckets").fetchall()]
    assert keys == [f"{server.base_url}|fleet-model:requests"]


def test_a_shared_bucket_refuses_a_wait_past_the_deadline_and_reserves_nothing(pg_url):
    a = PostgresRateLimiter(pg_url, "ep", rpm=60, tpm=6000)  # two processes' limiters on one row
    b = PostgresRateLimiter(pg_url, "ep", rpm=60, tpm=6000)
    assert a.acquire(10) == 0.0
    with pytest.raises(RateLimitWaitTooLong, match="shared rate limit"):
        b.acquire(10, max_wait_s=0.2)  # the one request a second is taken, by the other process
    assert 0.5 < b.acquire(10, max_wait_s=2.0) <= 1.0  # the refused call took no slot
    level = "SELECT level FROM chainproof_rate_buckets WHERE key = 'ep:tokens'"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        before = conn.execute(level).fetchone()[0]
        b.settle(estimated=10, actual=4)  # the call used fewer tokens than estimated: 6 come back
        assert conn.execute(level).fetchone()[0] == pytest.approx(before + 6)


def test_a_queues_runs_per_period_holds_across_two_workers(pg_url, tmp_path):
    limits = '{"chainproof-runs": {"runs_per_period": 2, "period_s": 2}}'
    procs = fleet.start_ready(pg_url, tmp_path, "w1", "w2", concurrency=4, CHAINPROOF_WORKERS__QUEUE_LIMITS=limits)
    settings = Settings(home=tmp_path / "submitter", database_url=pg_url, checkpoint_url=pg_url)
    with Chainproof(settings, models=StaticModels(fleet.fleet_model())) as app:
        ids = [app.submit("fleet", {"tag": f"q{i}", "n": 1}).run_id for i in range(8)]
        fleet.wait_status(app, ids, "completed", procs)
        fleet.stop_workers(*procs)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT started_at_epoch_ms, executor_id FROM dbos.workflow_status "
                            "WHERE queue_name = 'chainproof-runs' ORDER BY started_at_epoch_ms").fetchall()
    starts = [ms / 1000 for ms, _ in rows]
    assert len(starts) == 8 and {e for _, e in rows} <= {"w1", "w2"}
    # no three starts within 2 s, whichever worker took them (alone, 4 slots each would start 8 at once)
    assert all(starts[i + 2] - starts[i] >= 2.0 - 0.05 for i in range(len(starts) - 2)), starts


def test_shared_limits_database_without_postgres_names_the_setting(tmp_path):
    from chainproof.agents.config import ModelSettings
    from chainproof.agents.models import ConfiguredModels

    settings = Settings(home=tmp_path, model=ModelSettings(provider="openai", base_url="http://127.0.0.1:9/v1",
                                                           rpm=60, shared_limits="database"))
    with pytest.raises(ValueError, match="model.shared_limits: 'database' needs database_url"):
        ConfiguredModels(settings.model, settings.local, Path("/x"), database_url="sqlite:///x").chat("low")
