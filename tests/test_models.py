"""Model access: ChatOpenAI against a local OpenAI-compatible server, usage accounting, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from chainproof.agents.calls import Usage, call_model
from chainproof.agents.config import ModelSettings
from chainproof.agents.models import ConfiguredModels
from chainproof.agents.structured import invoke_structured
from chainproof.settings import Settings
from testkit.fake_openai import FakeOpenAI


def _models(base_url: str, **kw) -> ConfiguredModels:
    s = Settings(model=ModelSettings(provider="openai", model="fake-model", base_url=base_url, api_key="sk-test-0123456789abcdefXYZ", **kw))
    return ConfiguredModels(s.model, s.local, Path("/nonexistent"))


def test_openai_compatible_call_counts_reasoning_and_cached_tokens_once():
    with FakeOpenAI(lambda body: "Revenue grew.") as server:
        models = _models(server.base_url)
        reply, call = call_model(models.chat("low"), [HumanMessage("hi")], effort="low")
        body = server.requests[0]
    assert call.output == "Revenue grew."
    assert call.usage.reasoning_tokens == 7 and call.usage.cached_input_tokens == 3
    # reasoning tokens are part of output tokens, not added on top
    assert call.usage.output_tokens == len("Revenue grew.") // 4 + 7
    assert call.usage.total_tokens == call.usage.input_tokens + call.usage.output_tokens
    assert body["max_completion_tokens"] == Settings().model.profiles["low"].max_tokens
    assert "reasoning_effort" not in body  # not sent unless the endpoint supports it
    assert call.model == "fake-model"


def test_reasoning_effort_is_sent_per_effort_level_when_supported():
    with FakeOpenAI(lambda body: "ok") as server:
        models = _models(server.base_url, supports_reasoning_effort=True)
        call_model(models.chat("high"), [HumanMessage("hi")], effort="high")
        call_model(models.chat("low"), [HumanMessage("hi")], effort="low")
    assert [r["reasoning_effort"] for r in server.requests] == ["high", "low"]
    assert "temperature" not in server.requests[0]


def test_same_usage_whether_invoked_or_streamed():
    with FakeOpenAI(lambda body: "A steady business.") as server:
        chat = _models(server.base_url).chat("medium")
        invoked = Usage.from_message(chat.invoke([HumanMessage("x")]))
        chunks = list(chat.stream([HumanMessage("x")]))
        total = chunks[0]
        for c in chunks[1:]:
            total = total + c
    assert invoked == Usage.from_message(total) and invoked.reasoning_tokens == 7


class Verdict(BaseModel):
    verdict: str


def test_structured_output_uses_json_mode_on_openai_endpoints():
    with FakeOpenAI(lambda body: '{"verdict": "go"}') as server:
        models = _models(server.base_url)
        out = invoke_structured(models.json_chat("medium", Verdict), [HumanMessage("decide")], Verdict, effort="medium")
    assert out.value == Verdict(verdict="go")
    assert server.requests[0]["response_format"] == {"type": "json_object"}


def test_openai_without_key_or_base_url_names_the_setting(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    s = Settings(model=ModelSettings(provider="openai"))
    with pytest.raises(ValueError, match="model.api_key"):
        ConfiguredModels(s.model, s.local, Path("/x")).chat("low")


def test_a_partial_profile_changes_only_what_it_names():
    # as in README's chainproof.toml example: only [model.profiles.high] max_tokens is given
    merged = ModelSettings(profiles={"high": {"max_tokens": 4096}}).profiles
    default = ModelSettings().profiles
    assert merged["high"].max_tokens == 4096 and merged["high"].timeout_s == default["high"].timeout_s
    assert merged["low"] == default["low"] and merged["medium"] == default["medium"]
    with pytest.raises(ValueError, match="extreme"):
        ModelSettings(profiles={"extreme": {"max_tokens": 10}})


def test_missing_local_runtime_fails_before_a_run_is_recorded(settings, monkeypatch):
    import importlib.util

    from chainproof.agents.local_weights import LocalModelUnavailable
    from chainproof.app import Chainproof

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    with Chainproof(settings) as app:
        with pytest.raises(LocalModelUnavailable, match='CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" pip install'):
            app.start("due-diligence", {"company": "MMM", "as_of": "2018-02-08"})
        assert app.audit.list_runs() == []


def test_effort_is_emulated_for_models_without_native_reasoning_effort_when_asked():
    from langchain_core.messages import SystemMessage

    from chainproof.agents.config import EFFORT_INSTRUCTIONS

    with FakeOpenAI(lambda body: '{"verdict": "yes"}') as server:
        emulated = _models(server.base_url, emulate_reasoning_effort=True)
        call_model(emulated.chat("high"), [SystemMessage("You analyse companies."), HumanMessage("hi")], effort="high")
        call_model(emulated.chat("low"), [HumanMessage("hi")], effort="low")
        call_model(emulated.json_chat("high", Verdict), [HumanMessage("decide")], effort="high")  # JSON: no scaffold
        call_model(_models(server.base_url).chat("high"), [HumanMessage("hi")], effort="high")  # not asked
        native = _models(server.base_url, emulate_reasoning_effort=True, supports_reasoning_effort=True)
        call_model(native.chat("high"), [HumanMessage("hi")], effort="high")  # native wins
        firsts = [r["messages"][0] for r in server.requests]
    assert firsts[0] == {"role": "system", "content": "You analyse companies.\n\n" + EFFORT_INSTRUCTIONS["high"]}
    assert firsts[1] == {"role": "system", "content": EFFORT_INSTRUCTIONS["low"]}
    assert all(m["role"] == "user" for m in firsts[2:])
    assert server.requests[4]["reasoning_effort"] == "high"
