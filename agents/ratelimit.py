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
(``pip install "chainproof[redis]"``). With ``database_url`` (PostgreSQL) the same buckets are rows
of ``chainproof_rate_buckets`` in that database, reserved by one upsert per bucket timed by the
database server's clock: every worker of a fleet shares them with nothing but the database it
already uses (:class:`PostgresRateLimiter`, the default for workers, see
``ModelSettings.shared_limits``).
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


_PG_TABLE = """CREATE TABLE IF NOT EXISTS chainproof_rate_buckets (
    key text PRIMARY KEY, level double precision NOT NULL, at double precision NOT NULL)"""
# One GCRA reservation: refill since the last one at `rate` units/s up to `cap`, take `n`; the row
# lock taken by the upsert serializes reservations of one bucket across every process.
_PG_RESERVE = """INSERT INTO chainproof_rate_buckets AS b (key, level, at)
VALUES (%(k)s, %(cap)s - %(n)s, extract(epoch FROM clock_timestamp())::double precision)
ON CONFLICT (key) DO UPDATE SET
  level = LEAST(%(cap)s, b.level + (extract(epoch FROM clock_timestamp())::double precision - b.at) * %(rate)s) - %(n)s,
  at = extract(epoch FROM clock_timestamp())::double precision
RETURNING level"""


class PostgresRateLimiter:
    """The same buckets as rows of ``chainproof_rate_buckets`` in a PostgreSQL database, shared by
    every process (every worker host) using ``key`` there. One connection per limiter in this
    process; a reservation is one transaction of one or two upserts (about 1 ms on a local server).

    Raises :class:`chainproof.errors.StorageError` naming ``database_url`` when the database
    cannot be reached (the model call then fails; nothing is sent past the limit)."""

    def __init__(self, database_url: str, key: str, rpm: float | None = None, tpm: float | None = None, *,
                 burst_s: float = 1.0, sleep: Sleep = time.sleep):
        self.rpm, self.tpm, self.burst_s = rpm, tpm, burst_s
        self._dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._buckets = [(f"{key}:requests", Bucket(rpm, burst_s)) if rpm else None,
                         (f"{key}:tokens", Bucket(tpm, burst_s)) if tpm else None]
        self._sleep = sleep
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            try:
                conn = psycopg.connect(self._dsn, autocommit=False, connect_timeout=10,
                                       application_name="chainproof-rate-limit")
                # a reservation lost in a server crash is one request the budget forgets: no reason
                # to wait for the WAL flush on every model call (PostgreSQL docs, "Asynchronous Commit")
                conn.execute("SET synchronous_commit = off")
                conn.commit()
                with conn.transaction():  # concurrent first uses: the lock orders the CREATEs
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('chainproof_rate_buckets'))")
                    conn.execute(_PG_TABLE)
            except psycopg.Error as exc:
                raise self._unreachable(exc) from exc
            self._conn = conn
        return self._conn

    def _unreachable(self, exc: Exception) -> Exception:
        from chainproof.errors import StorageError

        first = str(exc).splitlines()[0] if str(exc) else ""
        return StorageError(f"database_url (CHAINPROOF_DATABASE_URL): cannot reach the shared RPM/TPM budget "
                            f"(model.shared_limits): {type(exc).__name__}: {first}")

    def acquire(self, tokens: int, max_wait_s: float | None = None) -> float:
        """As :meth:`RateLimiter.acquire`, atomically across every process on the database."""
        import psycopg

        wait = 0.0
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction() as tx:
                    for entry, n in zip(self._buckets, (1, tokens)):
                        if entry is not None:
                            key, bucket = entry
                            level = conn.execute(_PG_RESERVE, {"k": key, "cap": bucket.capacity, "n": n,
                                                               "rate": bucket.rate}).fetchone()[0]
                            wait = max(wait, -level / bucket.rate)
                    if max_wait_s is not None and wait > max_wait_s:
                        raise psycopg.Rollback(tx)  # reserve nothing
            except psycopg.Error as exc:
                conn.close()
                raise self._unreachable(exc) from exc
        if max_wait_s is not None and wait > max_wait_s:
            raise RateLimitWaitTooLong("shared rate limit", self.rpm, self.tpm, wait, max_wait_s)
        if wait > 0:
            self._sleep(wait)
        return max(0.0, wait)

    def settle(self, estimated: int, actual: int) -> None:
        """Correct the shared token charge by ``estimated - actual`` tokens."""
        entry = self._buckets[1]
        if entry is None or actual == estimated:
            return
        with self._lock:
            conn = self._connection()
            with conn.transaction():
                conn.execute("UPDATE chainproof_rate_buckets SET level = level + %(d)s WHERE key = %(k)s",
                             {"d": estimated - actual, "k": entry[0]})


class NoLimit:
    """No client-side limit (the endpoint has no ``rpm``/``tpm`` configured)."""

    def acquire(self, tokens: int, max_wait_s: float | None = None) -> float:
        return 0.0

    def settle(self, estimated: int, actual: int) -> None:
        return None


_registry: dict[str, tuple[tuple[Any, ...], Limiter]] = {}
_registry_lock = threading.Lock()


def limiter_for(key: str, rpm: float | None, tpm: float | None, *, burst_s: float = 1.0,
                redis_url: str | None = None, database_url: str | None = None) -> Limiter:
    """The process-wide limiter of endpoint ``key`` (base URL + model): every run in the process
    that calls that endpoint shares it; with ``redis_url`` or ``database_url`` (PostgreSQL) every
    process using that server shares it too. Raises ``ValueError`` when ``key`` was already
    registered with different limits (two budgets for one endpoint would exceed it)."""
    config = (rpm, tpm, burst_s, redis_url or database_url)
    with _registry_lock:
        if key in _registry:
            known, existing = _registry[key]
            if known != config:
                raise ValueError(f"endpoint {key}: rate limits already set to rpm={known[0]}, tpm={known[1]}, "
                                 f"burst_s={known[2]}, shared in {known[3]}; got rpm={rpm}, tpm={tpm}, "
                                 f"burst_s={burst_s}, shared in {redis_url or database_url}")
            return existing
        if not (rpm or tpm):
            limiter: Limiter = NoLimit()
        elif redis_url:
            limiter = RedisRateLimiter(redis_url, key, rpm, tpm, burst_s=burst_s)
        elif database_url:
            limiter = PostgresRateLimiter(database_url, key, rpm, tpm, burst_s=burst_s)
        else:
            limiter = RateLimiter(rpm, tpm, burst_s=burst_s)
        _registry[key] = (config, limiter)
        return limiter


def reset_limiters() -> None:
    """Forget every registered limiter (tests, or after changing limits in a long-lived process)."""
    with _registry_lock:
        _registry.clear()
