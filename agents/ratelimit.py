"""Client-side RPM/TPM limits, shared by every run in a process (optionally across processes).

Providers enforce their per-minute limits over short intervals (OpenAI's rate-limit guide: a
limit of 60,000 requests/minute "may be enforced as 1,000 requests/second"), so each limit is a
token bucket holding ``burst_s`` seconds' worth (at least one request / one token), refilled
continuously at ``limit / 60`` per second. Buckets use *reservations* (the GCRA form of a token
bucket, as in Go's ``x/time/rate.Reserve``): a caller takes its share at once, the level may go
negative, and the caller sleeps until its reservation is covered. Waiters are served in arrival
order and no thread polls.

Tokens are estimated before the call the way OpenAI counts them at admission (prompt characters
/ 4 + the output cap, see :func:`estimate_tokens`) and corrected with the actual usage afterwards
(:meth:`RateLimiter.settle`).

:func:`limiter_for` keeps one limiter per endpoint key in the process. With ``redis_url`` the
buckets live in Redis (one Lua script reserves both atomically, timed by the Redis server's
clock), so several worker processes share one budget; this needs the optional ``redis`` package
(``pip install "chainproof[redis]"``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.messages import BaseMessage

from chainproof.errors import RateLimitWaitTooLong

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def estimate_tokens(messages: Sequence[BaseMessage], max_tokens: int | None) -> int:
    """Tokens a request is charged at admission: message characters / 4 (OpenAI's rule of
    thumb for English) plus ``max_tokens``, the output cap (OpenAI's rate-limit guide counts the
    larger of the two estimates; charging both is the safe side)."""
    chars = sum(len(m.content) if isinstance(m.content, str) else len(str(m.content)) for m in messages)
    return max(1, chars // 4) + int(max_tokens or 0)


@dataclass
class Bucket:
    """One limit: ``per_minute`` units (requests or tokens), ``burst_s`` seconds of capacity."""

    per_minute: float
    burst_s: float = 1.0

    def __post_init__(self) -> None:
        if self.per_minute <= 0:
            raise ValueError(f"rate limit: expected a positive per-minute limit, got {self.per_minute}")
        self.capacity = max(1.0, self.per_minute * self.burst_s / 60.0)
        self.rate = self.per_minute / 60.0  # units per second
        self.level = self.capacity
        self.at: float | None = None

    def reserve(self, n: float, now: float) -> float:
        """Take ``n`` units; returns the seconds to wait before they are covered."""
        if self.at is not None:
            self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now
        self.level -= n
        return max(0.0, -self.level / self.rate)

    def give_back(self, n: float) -> None:
        self.level = min(self.capacity, self.level + n)


class Limiter(Protocol):
    def acquire(self, tokens: int, max_wait_s: float | None = None) -> float: ...

    def settle(self, estimated: int, actual: int) -> None: ...


class RateLimiter:
    """RPM and/or TPM limits in this process (``None`` = no limit of that kind).

    Args:
        rpm: requests per minute; tpm: tokens per minute; burst_s: seconds of burst (see module).
        clock / sleep: injectable for tests (seconds).
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None, *, burst_s: float = 1.0,
                 clock: Clock = time.monotonic, sleep: Sleep = time.sleep):
        self.rpm, self.tpm = rpm, tpm
        self._requests = Bucket(rpm, burst_s) if rpm else None
        self._tokens = Bucket(tpm, burst_s) if tpm else None
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()

    def acquire(self, tokens: int, max_wait_s: float | None = None) -> float:
        """Reserve one request and ``tokens`` tokens, sleep until they are covered; returns the
        seconds waited. Raises :class:`RateLimitWaitTooLong` (reserving nothing) when the wait
        would exceed ``max_wait_s``."""
        with self._lock:
            now = self._clock()
            wait = 0.0
            if self._requests:
                wait = max(wait, self._requests.reserve(1, now))
            if self._tokens:
                wait = max(wait, self._tokens.reserve(tokens, now))
            if max_wait_s is not None and wait > max_wait_s:
                if self._requests:
                    self._requests.give_back(1)
                if self._tokens:
                    self._tokens.give_back(tokens)
                raise RateLimitWaitTooLong("rate limit", self.rpm, self.tpm, wait, max_wait_s)
        if wait > 0:
            self._sleep(wait)
        return wait

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the token charge of a finished call from ``estimated`` to ``actual`` tokens."""
        if self._tokens and actual != estimated:
            with self._lock:
                if actual < estimated:
                    self._tokens.give_back(estimated - actual)
                else:
                    self._tokens.level -= actual - estimated


_REDIS_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local wait = 0
local n = {tonumber(ARGV[1]), tonumber(ARGV[2])}
local taken = {}
for i = 1, 2 do
  local per_minute = tonumber(ARGV[2 + i])
  if per_minute > 0 then
    local cap = math.max(1, per_minute * tonumber(ARGV[5]) / 60)
    local rate = per_minute / 60
    local level = tonumber(redis.call('HGET', KEYS[i], 'level') or cap)
    local at = tonumber(redis.call('HGET', KEYS[i], 'at') or now)
    level = math.min(cap, level + (now - at) * rate) - n[i]
    taken[i] = level
    wait = math.max(wait, -level / rate)
  end
end
local max_wait = tonumber(ARGV[6])
if max_wait >= 0 and wait > max_wait then return {'refused', tostring(wait)} end
for i = 1, 2 do
  if taken[i] then
    redis.call('HSET', KEYS[i], 'level', tostring(taken[i]), 'at', tostring(now))
    redis.call('EXPIRE', KEYS[i], 3600)
  end
end
return {'ok', tostring(wait)}
"""


class RedisRateLimiter:
    """The same buckets in Redis, shared by every process using ``key`` on that server.

    Raises ``ImportError`` (naming the extra) when the ``redis`` package is missing.
    """

    def __init__(self, url: str, key: str, rpm: float | None = None, tpm: float | None = None, *,
                 burst_s: float = 1.0, sleep: Sleep = time.sleep):
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError('model.redis_url needs the redis package: pip install "chainproof[redis]"') from exc
        self.rpm, self.tpm, self.burst_s = rpm, tpm, burst_s
        self._redis = redis.Redis.from_url(url)
        self._keys = [f"chainproof:ratelimit:{key}:requests", f"chainproof:ratelimit:{key}:tokens"]
        self._reserve = self._redis.register_script(_REDIS_RESERVE)
        self._sleep = sleep

    def acquire(self, tokens: int, max_wait_s: float | None = None) -> float:
        """As :meth:`RateLimiter.acquire`, atomically across processes."""
        status, wait = self._reserve(keys=self._keys, args=[
            1, tokens, self.rpm or 0, self.tpm or 0, self.burst_s, -1 if max_wait_s is None else max_wait_s])
        wait = float(wait)
        if status == b"refused" and max_wait_s is not None:  # the script refuses only given a deadline
            raise RateLimitWaitTooLong("shared rate limit", self.rpm, self.tpm, wait, max_wait_s)
        if wait > 0:
            self._sleep(wait)
        return wait

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the shared token charge (``HINCRBYFLOAT`` on the level)."""
        if self.tpm and actual != estimated:
            self._redis.hincrbyfloat(self._keys[1], "level", estimated - actual)


class NoLimit:
    """No client-side limit (the endpoint has no ``rpm``/``tpm`` configured)."""

    def acquire(self, tokens: int, max_wait_s: float | None = None) -> float:
        return 0.0

    def settle(self, estimated: int, actual: int) -> None:
        return None


_registry: dict[str, tuple[tuple[Any, ...], Limiter]] = {}
_registry_lock = threading.Lock()


def limiter_for(key: str, rpm: float | None, tpm: float | None, *, burst_s: float = 1.0,
                redis_url: str | None = None) -> Limiter:
    """The process-wide limiter of endpoint ``key`` (base URL + model): every run in the process
    that calls that endpoint shares it. Raises ``ValueError`` when ``key`` was already registered
    with different limits (two budgets for one endpoint would exceed it)."""
    config = (rpm, tpm, burst_s, redis_url)
    with _registry_lock:
        if key in _registry:
            known, existing = _registry[key]
            if known != config:
                raise ValueError(f"endpoint {key}: rate limits already set to rpm={known[0]}, tpm={known[1]}, "
                                 f"burst_s={known[2]}, redis_url={known[3]}; got rpm={rpm}, tpm={tpm}, "
                                 f"burst_s={burst_s}, redis_url={redis_url}")
            return existing
        if not (rpm or tpm):
            limiter: Limiter = NoLimit()
        elif redis_url:
            limiter = RedisRateLimiter(redis_url, key, rpm, tpm, burst_s=burst_s)
        else:
            limiter = RateLimiter(rpm, tpm, burst_s=burst_s)
        _registry[key] = (config, limiter)
        return limiter


def reset_limiters() -> None:
    """Forget every registered limiter (tests, or after changing limits in a long-lived process)."""
    with _registry_lock:
        _registry.clear()
