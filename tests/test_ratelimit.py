"""Client-side RPM/TPM limits: spacing, token correction, one budget per endpoint per process,
and the Redis variant shared by processes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from chainproof.agents.config import ModelSettings
from chainproof.agents.models import ConfiguredModels
from chainproof.agents.ratelimit import RateLimiter, RateLimitWaitTooLong, RedisRateLimiter, limiter_for, reset_limiters
from chainproof.settings import Settings
from testkit.clock import FakeClock


def test_requests_are_spaced_to_the_rpm_after_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(rpm=120, clock=clock, sleep=clock.sleep)  # 2/s, burst of 1 s = 2 requests
    waits = [limiter.acquire(0) for _ in range(5)]
    assert waits == [0.0, 0.0, 0.5, 0.5, 0.5]  # each caller sleeps until its own slot
    assert clock.now - 1000.0 == pytest.approx(1.5)  # 5 requests need 1.5 s at 2/s after a burst of 2


def test_tokens_are_charged_by_estimate_and_corrected_by_usage():
    clock = FakeClock()
    limiter = RateLimiter(tpm=6000, clock=clock, sleep=clock.sleep)  # 100 tokens/s, capacity 100
    assert limiter.acquire(100) == 0.0
    limiter.settle(estimated=100, actual=40)  # 60 tokens come back
    assert limiter.acquire(60) == 0.0
    assert limiter.acquire(50) == pytest.approx(0.5)


def test_a_wait_past_the_deadline_is_refused_and_reserves_nothing():
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, clock=clock, sleep=clock.sleep)
    limiter.acquire(0)
    with pytest.raises(RateLimitWaitTooLong, match="rpm=60.*1.0s.*0.5s left"):
        limiter.acquire(0, max_wait_s=0.5)
    assert limiter.acquire(0) == pytest.approx(1.0)  # the refused call took no slot


def test_runs_in_one_process_share_one_budget_per_endpoint():
    reset_limiters()
    try:
        s = Settings(model=ModelSettings(provider="openai", base_url="http://127.0.0.1:9/v1", rpm=600))
        a = ConfiguredModels(s.model, s.local, Path("/x")).chat("low")
        b = ConfiguredModels(s.model, s.local, Path("/x")).chat("high")
        assert a.endpoints[0].limiter is b.endpoints[0].limiter
        with pytest.raises(ValueError, match="rate limits already set to rpm=600"):
            limiter_for(f"http://127.0.0.1:9/v1|{s.model.model}", 100, None)
    finally:
        reset_limiters()


def _redis_or_skip() -> str:
    redis = pytest.importorskip("redis", reason="the optional redis package is not installed")
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as exc:
        pytest.skip(f"no Redis server at {url}: {exc}")
    return url


def test_redis_limiter_is_one_budget_across_processes():
    url = _redis_or_skip()
    key = f"test-{uuid.uuid4().hex}"
    slept: list[float] = []
    # two limiters on one key stand for two worker processes
    workers = [RedisRateLimiter(url, key, rpm=600, sleep=slept.append) for _ in range(2)]
    waits = [workers[i % 2].acquire(0) for i in range(14)]
    assert waits[:10] == [0.0] * 10  # the shared burst: 10 requests (1 s at 10/s)
    assert waits[10:] == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=0.05)  # then one slot per 0.1 s, shared
    with pytest.raises(RateLimitWaitTooLong, match="shared rate limit"):
        workers[0].acquire(0, max_wait_s=0.1)
