"""One model call that rides through transient faults: retries, Retry-After, failover, deadline.

:func:`call_resilient` runs one logical call as a sequence of HTTP attempts with tenacity:

* **What is retried** (:func:`classify`): 429, 408 and 5xx answers, timeouts, connection errors
  (refused, reset, truncated bodies), malformed answers (a body that is not the JSON the client
  expects) and "every circuit is open". Anything else (400, 401, 404, …) fails at once: a retry
  would get the same answer.
* **Where**: the endpoints in configured order, skipping those whose circuit breaker is open
  (:mod:`chainproof.agents.failover`). After a failure the next attempt goes to an endpoint not yet tried
  in this call, at once (a *failover*, recorded); when every endpoint has been tried, they are
  tried again in order after a wait.
* **How long to wait**: exactly the server's ``retry-after-ms`` / ``Retry-After`` (seconds or
  an HTTP date) when it sends one, else exponential back-off with jitter (tenacity's
  ``wait_exponential_jitter``; settings in :class:`chainproof.agents.config.RetrySettings`).
* **When to stop**: after ``max_attempts`` attempts, or when the next wait would cross the
  call's deadline (``deadline_s``: attempts, waits and rate-limit queueing together).
* **Limits**: every attempt first takes its share of the endpoint's RPM/TPM budget
  (:mod:`chainproof.agents.ratelimit`); the token charge is corrected by the actual usage.

Each attempt becomes an :class:`AttemptRecord`; when the call fails for good,
:class:`ModelCallFailed` names the endpoint, the cause and every attempt. The openai client's own
retries must be off (``max_retries=0``): otherwise each of our attempts is up to 3 requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import openai
from pydantic import BaseModel
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from chainproof.agents.config import RetrySettings
from chainproof.agents.failover import CircuitBreaker
from chainproof.agents.ratelimit import Limiter, RateLimitWaitTooLong
from chainproof.errors import CircuitOpen, MalformedResponse, ModelCallFailed

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], None]


class AttemptRecord(BaseModel):
    """One HTTP attempt of a model call, as the audit trail keeps it.

    ``attempt`` is 1-based across endpoints; ``wait_s`` the seconds slept before it (back-off
    or ``Retry-After``); ``queued_s`` the seconds waited for the client-side rate limiter;
    ``latency_s`` the request's wall time; ``error_class`` / ``error`` / ``status_code`` are
    ``None`` for the attempt that succeeded; ``kind`` is :func:`classify`'s label;
    ``failover_from`` names the endpoint the previous attempt went to when this one switched.
    """

    attempt: int
    endpoint: str
    wait_s: float = 0.0
    queued_s: float = 0.0
    latency_s: float = 0.0
    error_class: str | None = None
    error: str | None = None
    kind: str | None = None
    status_code: int | None = None
    retry_after_s: float | None = None
    failover_from: str | None = None


@dataclass
class Endpoint:
    """One endpoint as a call sees it: its audit ``name``, the process-wide ``breaker`` and
    ``limiter`` of its key (base URL + model), and ``client``, whatever ``attempt`` needs to
    send the request (a ``ChatOpenAI`` configured for the effort level)."""

    name: str
    url: str
    breaker: CircuitBreaker
    limiter: Limiter
    client: Any


def classify(exc: BaseException) -> str | None:
    """The fault's label when it is worth retrying, else ``None``.

    Labels: ``rate_limited`` (429), ``timeout``, ``connection``, ``server_error`` (5xx, 408),
    ``malformed_response``, ``circuit_open``.
    """
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited"
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        return "server_error" if exc.status_code >= 500 or exc.status_code == 408 else None
    if isinstance(exc, (MalformedResponse, json.JSONDecodeError, openai.APIResponseValidationError)):
        return "malformed_response"
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    return None


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms`` (OpenAI, Azure), else
    ``Retry-After`` as seconds or an HTTP date (RFC 9110 §10.2.3); ``None`` when absent/unreadable."""
    if isinstance(exc, CircuitOpen):
        return exc.retry_in_s
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000.0)
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def describe_error(exc: BaseException) -> str:
    """One line for an error: HTTP status, message and, for connection errors, the cause."""
    status = getattr(exc, "status_code", None)
    text = str(exc).strip() or type(exc).__name__
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if root is not exc and str(root) != str(exc):
        text = f"{text} ({type(root).__name__}: {root})"
    return f"{status} {text}" if status and not text.startswith("Error code") else text


class _Call:
    """The state of one resilient call (which endpoints were tried, the records so far)."""

    def __init__(self, endpoints: list[Endpoint], policy: RetrySettings, clock: Clock):
        self.endpoints, self.policy, self.clock = endpoints, policy, clock
        self.started = clock()
        self.records: list[AttemptRecord] = []
        self.failed: set[str] = set()
        self.next_wait = 0.0
        self.backoff = wait_exponential_jitter(multiplier=policy.initial_wait_s, max=policy.max_wait_s, jitter=policy.jitter_s)

    def remaining_s(self) -> float:
        return self.policy.deadline_s - (self.clock() - self.started)

    def _candidates(self) -> list[Endpoint]:
        fresh = [e for e in self.endpoints if e.name not in self.failed]
        return fresh + [e for e in self.endpoints if e.name in self.failed]

    def choose(self) -> Endpoint:
        """The endpoint for the next attempt (takes a half-open circuit's trial slot)."""
        for endpoint in self._candidates():
            if endpoint.breaker.allow():
                return endpoint
        retry_in = min(e.breaker.retry_in() for e in self.endpoints)
        names = ", ".join(f"{e.name} ({e.url})" for e in self.endpoints)
        raise CircuitOpen(f"every endpoint's circuit is open: {names}; next trial in {retry_in:.1f}s", retry_in)

    def wait(self, state: Any) -> float:
        """tenacity ``wait``: none when failing over to an untried endpoint, else Retry-After
        or exponential back-off with jitter."""
        exc = state.outcome.exception()
        after = retry_after_s(exc)
        upcoming = next((e for e in self._candidates() if e.breaker.state != "open"), None)
        if upcoming is not None and upcoming.name not in self.failed and not isinstance(exc, CircuitOpen):
            self.next_wait = 0.0
        else:
            self.next_wait = after if after is not None else self.backoff(state)
        return self.next_wait

    def stop(self, state: Any) -> bool:
        """tenacity ``stop``: the next wait would cross the deadline."""
        return self.clock() - self.started + state.upcoming_sleep >= self.policy.deadline_s

    def failure_message(self, exc: BaseException, stopped_early: bool) -> str:
        last = self.records[-1] if self.records else None
        where = f"endpoint {last.endpoint!r}" if last else "no endpoint"
        url = next((e.url for e in self.endpoints if last and e.name == last.endpoint), "")
        n = len(self.records)
        if classify(exc) is None:
            why = "not retryable"
        elif stopped_early:
            after = retry_after_s(exc)
            why = (f"the next wait ({after:.1f}s asked by the server)" if after is not None else "the next wait") + \
                  f" would pass the call's {self.policy.deadline_s:g}s deadline"
        else:
            why = f"all {self.policy.max_attempts} attempts used"
        trail = "; ".join(f"#{r.attempt} {r.endpoint}: {r.kind or r.error_class}" for r in self.records)
        return (f"model call failed at {where} ({url}): {type(exc).__name__}: {describe_error(exc)} — {why}; "
                f"{n} attempt(s): {trail}")


def call_resilient(
    endpoints: list[Endpoint],
    attempt: Callable[[Endpoint], T],
    *,
    policy: RetrySettings,
    tokens: int = 0,
    tokens_used: Callable[[T], int | None] = lambda _: None,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> tuple[T, list[AttemptRecord]]:
    """Run ``attempt(endpoint)`` until it succeeds or the policy gives up.

    ``tokens`` is the call's estimated token charge (for TPM limits) and ``tokens_used(result)``
    the actual total, used to correct it. ``clock``/``sleep`` (seconds) are injectable so tests
    need not wait in real time. Returns the result and every :class:`AttemptRecord`.

    Raises:
        ModelCallFailed: a fault that is not retried, ``policy.max_attempts`` used, or the
            deadline reached (the message names endpoint, cause and attempts). Exceptions that
            are not model-access faults (programming errors) propagate unchanged.
    """
    if not endpoints:
        raise ValueError("model.endpoints: expected at least one endpoint")
    call = _Call(endpoints, policy, clock)
    attempts = stop_after_attempt(policy.max_attempts)
    retrying = Retrying(
        stop=lambda state: attempts(state) or call.stop(state),
        wait=call.wait,
        retry=retry_if_exception(lambda e: classify(e) is not None),
        sleep=lambda seconds: sleep(seconds) if seconds > 0 else None,
        reraise=True,
    )
    try:
        for attempt_state in retrying:
            with attempt_state:
                number = attempt_state.retry_state.attempt_number
                wait_s, call.next_wait = round(call.next_wait, 4), 0.0
                previous = call.records[-1].endpoint if call.records else None
                try:
                    endpoint = call.choose()
                except CircuitOpen as exc:
                    call.records.append(AttemptRecord(attempt=number, endpoint="-", wait_s=wait_s,
                                                      error_class="CircuitOpen", error=str(exc), kind="circuit_open",
                                                      retry_after_s=round(exc.retry_in_s, 4)))
                    raise
                record = AttemptRecord(attempt=number, endpoint=endpoint.name, wait_s=wait_s,
                                       failover_from=previous if previous not in (None, "-", endpoint.name) else None)
                call.records.append(record)
                started = time.perf_counter()
                try:
                    record.queued_s = round(endpoint.limiter.acquire(tokens, max_wait_s=max(0.0, call.remaining_s())), 4)
                    started = time.perf_counter()
                    result = attempt(endpoint)
                except BaseException as exc:
                    record.latency_s = round(time.perf_counter() - started, 4)
                    kind = classify(exc)
                    record.kind, record.error_class = kind, type(exc).__name__
                    record.error = describe_error(exc)[:500]
                    record.status_code = getattr(exc, "status_code", None)
                    after = retry_after_s(exc)
                    record.retry_after_s = round(after, 4) if after is not None else None
                    if kind in (None, "rate_limited"):
                        endpoint.breaker.release()
                    else:
                        endpoint.breaker.record_failure()
                    call.failed.add(endpoint.name)
                    raise
                record.latency_s = round(time.perf_counter() - started, 4)
                endpoint.breaker.record_success()
                used = tokens_used(result)
                if used is not None:
                    endpoint.limiter.settle(tokens, used)
                return result, call.records
    except Exception as exc:
        if classify(exc) is None and not isinstance(exc, (openai.APIError,)) and not isinstance(exc, RateLimitWaitTooLong):
            raise
        stopped_early = len(call.records) < policy.max_attempts
        raise ModelCallFailed(call.failure_message(exc, stopped_early), call.records, classify(exc)) from exc
    raise AssertionError("unreachable: tenacity either returns, raises or retries")  # pragma: no cover


