"""A fake clock for the resilience stack, and a fixture that resets its process-wide registries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chainproof.agents.failover import reset_breakers
from chainproof.agents.ratelimit import reset_limiters


class FakeClock:
    """``clock()`` and ``sleep(s)`` in one: sleeping advances the clock and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fresh_registries() -> Iterator[None]:
    """Circuit breakers and rate limiters start empty and are emptied again after the test."""
    reset_breakers()
    reset_limiters()
    yield
    reset_breakers()
    reset_limiters()
