"""Scripted models for the toy graph with fixed token usage, and a price table to cost them."""

from __future__ import annotations

import json

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage

from chainproof.agents.config import EffortProfile, ModelSettings
from chainproof.agents.pricing import Price
from chainproof.agents.scripted import ScriptedChatModel

GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})
# 1000 / 500 / 2000 USD per 1M tokens: 0.001 USD per input token, 0.0005 cached, 0.002 output
PRICES = {"m": Price(input=1000, cached_input=500, output=2000, source="test table", date="2026-11-29")}
SMALL_CAPS = ModelSettings(profiles={e: EffortProfile(max_tokens=50) for e in ("low", "medium", "high")})


def usage_metadata(input_tokens=100, cached=0, output=50, reasoning=0) -> dict:
    return {"input_tokens": input_tokens, "output_tokens": output, "total_tokens": input_tokens + output,
            "input_token_details": {"cache_read": cached}, "output_token_details": {"reasoning": reasoning}}


def toy_model(name: str = "m", **usage) -> ScriptedChatModel:
    """Answers every toy prompt (the verdict JSON for decide) with fixed usage (default: 100 in,
    50 out = 0.2 USD at PRICES)."""

    def reply(messages):
        text = GOOD if "Give the verdict" in str(messages[-1].content) else "It is so."
        return AIMessage(content=text, usage_metadata=usage_metadata(**usage))

    return ScriptedChatModel(replies=[reply], repeat_last=True, model_name=name)


class ModelMustNotBeCalled(BaseChatModel):
    """Raises on any call: a replay that used a model would fail."""

    @property
    def _llm_type(self) -> str:
        return "must-not-be-called"

    def _generate(self, *args, **kwargs):
        raise AssertionError("replay called a model")
