"""Failover between endpoints and a circuit breaker per endpoint.

A profile lists its endpoints in order of preference (for example a primary and a secondary
region). Each endpoint has a :class:`CircuitBreaker` shared by every run in the process
(:func:`breaker_for`): after ``failure_threshold`` consecutive failures (connection errors,
timeouts, 5xx, malformed answers — not 429s, which mean "slow down", not "down") it *opens* and
the endpoint gets no requests for ``reset_timeout_s`` seconds; then it is *half-open*: one trial
request is let through, and its success closes the circuit, its failure opens it again. This is
the state machine of Nygard's *Release It!* (as in resilience4j / pybreaker).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

Clock = Callable[[], float]
State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Closed → open after ``failure_threshold`` consecutive failures → half-open after
    ``reset_timeout_s`` seconds (one trial request) → closed on success / open on failure.

    ``clock`` returns seconds (``time.monotonic`` by default; tests pass a fake clock).
    ``transitions`` lists ``(time, state)`` changes, for the audit and tests.
    """

    def __init__(self, name: str, failure_threshold: int = 5, reset_timeout_s: float = 30.0,
                 clock: Clock = time.monotonic):
        if failure_threshold < 1:
            raise ValueError(f"circuit.failure_threshold: expected >= 1, got {failure_threshold}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_out = False
        self.transitions: list[tuple[float, State]] = []

    @property
    def state(self) -> State:
        with self._lock:
            return self._state()

    def _state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_timeout_s:
            return "half_open"
        return "open"

    def retry_in(self) -> float:
        """Seconds until the circuit lets a trial request through (0 when it would now)."""
        with self._lock:
            if self._opened_at is None:
                return 0.0
            return max(0.0, self._opened_at + self.reset_timeout_s - self._clock())

    def allow(self) -> bool:
        """May a request go to this endpoint now? In half-open state only one trial at a time."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_out:
                self._trial_out = True
                self.transitions.append((self._clock(), "half_open"))
                return True
            return False

    def release(self) -> None:
        """The request told nothing about the endpoint's health (a 429, a refused rate-limit
        wait, a bad request): give a half-open trial slot back without changing state."""
        with self._lock:
            self._trial_out = False

    def record_success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                self.transitions.append((self._clock(), "closed"))
            self._failures, self._opened_at, self._trial_out = 0, None, False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            trial_failed = self._trial_out
            self._trial_out = False
            if trial_failed or (self._opened_at is None and self._failures >= self.failure_threshold):
                self._opened_at = self._clock()
                self.transitions.append((self._opened_at, "open"))


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(key: str, failure_threshold: int, reset_timeout_s: float, clock: Clock = time.monotonic) -> CircuitBreaker:
    """The process-wide breaker of endpoint ``key`` (base URL + model), created on first use."""
    with _breakers_lock:
        if key not in _breakers:
            _breakers[key] = CircuitBreaker(key, failure_threshold, reset_timeout_s, clock)
        return _breakers[key]


def reset_breakers() -> None:
    """Forget every breaker (tests)."""
    with _breakers_lock:
        _breakers.clear()
