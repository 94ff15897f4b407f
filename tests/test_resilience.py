"""Resilient model access against the fault-injecting server: retries, Retry-After, deadline,
failover, circuit breaker, streaming faults. Waits run on a fake clock: no real sleeping."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool

from chainproof.agents.calls import call_model
from chainproof.agents.config import EffortProfile, EndpointSettings, ModelSettings
from chainproof.agents.models import ConfiguredModels
from chainproof.agents.resilience import ModelCallFailed
from chainproof.settings import Settings
from testkit.clock import FakeClock
from testkit.fake_openai import FakeOpenAI

pytestmark = pytest.mark.usefixtures("fresh_registries")


def models_for(*endpoints: tuple[str, str], clock: FakeClock, timeout_s: float = 5.0, **settings) -> ConfiguredModels:
    profiles = {e: EffortProfile(max_tokens=64, timeout_s=timeout_s) for e in ("low", "medium", "high")}
    model = ModelSettings(provider="openai", model="fake-model", api_key="sk-test", profiles=profiles,
                          endpoints=[EndpointSettings(name=n, base_url=u) for n, u in endpoints], **settings)
    return ConfiguredModels(model, Settings().local, Path("/nonexistent"), clock=clock, sleep=clock.sleep)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there: connection refused


def ask(models: ConfiguredModels):
    return call_model(models.chat("low"), [HumanMessage("hi")], effort="low")[1]


@pytest.mark.parametrize("kind", ["429", "500", "503", "reset", "malformed_json", "truncated", "hang"])
def test_each_fault_kind_is_retried_and_the_attempts_are_recorded(kind):
    clock = FakeClock()
    with FakeOpenAI(lambda body: "fine") as server:
        server.inject(kind, hang_s=5)
        call = ask(models_for(("main", server.base_url), clock=clock, timeout_s=0.2,
                             retry={"initial_wait_s": 0.5, "jitter_s": 0.0}))
        assert len(server.requests) == 2
    assert call.output == "fine"
    first, second = call.http_attempts
    assert first["endpoint"] == "main" and first["error_class"] and first["kind"] in (
        "rate_limited", "server_error", "connection", "malformed_response", "timeout")
    assert second == {**second, "attempt": 2, "error_class": None, "wait_s": 0.5}
    assert clock.slept == [0.5]  # back-off on the fake clock, not in real time


@pytest.mark.parametrize(("kind", "cause"), [("503", "503"), ("reset", "Connection error"),
                                             ("malformed_json", "JSONDecodeError"), ("429", "Rate limit")])
def test_persistent_fault_ends_in_an_error_naming_endpoint_and_cause_after_exactly_max_attempts(kind, cause):
    clock = FakeClock()
    with FakeOpenAI(lambda body: "never") as server:
        server.inject(kind, times=None)
        models = models_for(("eu-primary", server.base_url), clock=clock, retry={"max_attempts": 3})
        with pytest.raises(ModelCallFailed) as failed:
            ask(models)
        assert len(server.requests) == 3  # the openai client's own retries are off: no 3 x 3 = 9
        assert {h.get("x-stainless-retry-count") for h in server.headers} == {"0"}
    message = str(failed.value)
    assert "eu-primary" in message and server.base_url in message and cause in message
    assert "all 3 attempts used" in message
    assert [a.attempt for a in failed.value.attempts] == [1, 2, 3] and len(clock.slept) == 2


def test_retry_after_is_honoured_exactly():
    clock = FakeClock()
    with FakeOpenAI(lambda body: "ok") as server:
        server.inject("429", times=2, retry_after=2.5)
        call = ask(models_for(("main", server.base_url), clock=clock))
    assert clock.slept == [2.5, 2.5]
    assert [a["retry_after_s"] for a in call.http_attempts] == [2.5, 2.5, None]
    assert [a["wait_s"] for a in call.http_attempts] == [0.0, 2.5, 2.5]


def test_retry_after_beyond_the_deadline_fails_at_once_with_the_reason():
    clock = FakeClock()
    with FakeOpenAI(lambda body: "ok") as server:
        server.inject("429", retry_after=300)
        models = models_for(("main", server.base_url), clock=clock, retry={"deadline_s": 60})
        with pytest.raises(ModelCallFailed, match=r"300\.0s asked by the server.*60s deadline"):
            ask(models)
    assert clock.slept == [] and len(server.requests) == 1


def test_server_rpm_limit_answers_429_with_retry_after_ms():
    clock = FakeClock()
    with FakeOpenAI(lambda body: "ok", rpm=60) as server:  # 1 request/s, burst of 1
        models = models_for(("main", server.base_url), clock=clock, retry={"max_attempts": 1})
        ask(models)
        with pytest.raises(ModelCallFailed, match="429") as failed:
            ask(models)
    assert server.stats == {"ok": 1, "rate_limited": 1}
    assert 0.5 < failed.value.attempts[0].retry_after_s <= 1.0


def test_failover_to_the_second_endpoint_when_the_first_is_down():
    clock = FakeClock()
    with FakeOpenAI(lambda body: "from the secondary") as secondary:
        models = models_for(("us-east", closed_port_url()), ("us-west", secondary.base_url), clock=clock)
        call = ask(models)
    assert call.output == "from the secondary"
    down, up = call.http_attempts
    assert (down["endpoint"], down["kind"], up["endpoint"], up["failover_from"]) == ("us-east", "connection", "us-west", "us-east")
    assert clock.slept == []  # failing over to an untried endpoint needs no wait


def test_circuit_opens_after_repeated_failures_and_closes_after_a_good_trial():
    clock = FakeClock()
    with FakeOpenAI(lambda body: "primary") as primary, FakeOpenAI(lambda body: "secondary") as secondary:
        primary.inject("503", times=None)
        models = models_for(("primary", primary.base_url), ("secondary", secondary.base_url), clock=clock,
                            circuit={"failure_threshold": 2, "reset_timeout_s": 30})
        assert [ask(models).output for _ in range(2)] == ["secondary", "secondary"]
        assert len(primary.requests) == 2
        breaker = models.chat("low").endpoints[0].breaker
        assert breaker.state == "open"
        call = ask(models)  # open: the primary is not even tried
        assert len(primary.requests) == 2 and [a["endpoint"] for a in call.http_attempts] == ["secondary"]
        clock.now += 31
        primary.heal()
        assert ask(models).output == "primary"  # the half-open trial succeeds
    assert breaker.state == "closed"
    assert [state for _, state in breaker.transitions] == ["open", "half_open", "closed"]


def test_every_circuit_open_is_a_clear_error_when_the_deadline_is_near():
    clock = FakeClock()
    with FakeOpenAI(lambda body: "x") as server:
        server.inject("500", times=None)
        models = models_for(("only", server.base_url), clock=clock, retry={"max_attempts": 5, "deadline_s": 20},
                            circuit={"failure_threshold": 1, "reset_timeout_s": 60})
        with pytest.raises(ModelCallFailed, match="every endpoint's circuit is open.*only"):
            ask(models)
        assert len(server.requests) == 1


def test_stream_is_retried_before_the_first_chunk_and_a_broken_stream_is_a_clear_error():
    clock = FakeClock()
    with FakeOpenAI(lambda body: "a streamed answer") as server:
        chat = models_for(("main", server.base_url), clock=clock).chat("low")
        server.inject("503")
        chunks = list(chat.stream([HumanMessage("x")]))
        total = chunks[0]
        for c in chunks[1:]:
            total = total + c
        assert total.content == "a streamed answer" and total.usage_metadata["output_token_details"]["reasoning"] == 7
        server.inject("truncated")
        with pytest.raises(ModelCallFailed, match=r"stream from endpoint 'main' \(http://127\.0\.0\.1.*broke after 1 chunk"):
            list(chat.stream([HumanMessage("x")]))


def test_tool_calls_go_through_the_resilient_model():
    @tool
    def lookup(ticker: str) -> str:
        """Look a ticker up."""
        return ticker

    clock = FakeClock()
    with FakeOpenAI(lambda body: {"tool_calls": [{"name": "lookup", "arguments": {"ticker": "MMM"}}]}) as server:
        server.inject("500")
        chat = models_for(("main", server.base_url), clock=clock).chat("low").bind_tools([lookup])
        reply = chat.invoke([HumanMessage("look up 3M")])
        assert server.requests[-1]["tools"][0]["function"]["name"] == "lookup"
    assert reply.tool_calls[0]["name"] == "lookup" and reply.tool_calls[0]["args"] == {"ticker": "MMM"}
    assert len(reply.response_metadata["http_attempts"]) == 2


def test_a_429_during_the_half_open_trial_does_not_leave_the_circuit_stuck():
    clock = FakeClock()
    with FakeOpenAI(lambda body: "back") as server:
        server.inject("500", times=1)
        models = models_for(("only", server.base_url), clock=clock, retry={"max_attempts": 1},
                            circuit={"failure_threshold": 1, "reset_timeout_s": 10})
        with pytest.raises(ModelCallFailed):
            ask(models)
        clock.now += 11
        server.inject("429", times=1)  # the trial is throttled: says nothing about health
        with pytest.raises(ModelCallFailed, match="429"):
            ask(models)
        assert ask(models).output == "back"  # the next request is let through as the trial
