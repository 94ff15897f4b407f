"""Model-access configuration: effort levels, their profiles, and which endpoint answers.

These models are nested inside :class:`graphs.settings.Settings` (``CHAINPROOF_MODEL__...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

Effort = Literal["low", "medium", "high"]
EFFORTS: tuple[Effort, ...] = ("low", "medium", "high")


class EffortProfile(BaseModel):
    """What one effort level means for a model call.

    ``max_tokens`` caps output tokens (reasoning tokens included, as in OpenAI's
    ``max_completion_tokens``); ``reasoning_effort`` is sent only to endpoints configured with
    ``supports_reasoning_effort`` (OpenAI o-series / gpt-5 accept ``low|medium|high``);
    ``timeout_s`` is the per-request timeout in seconds (ChatOpenAI has none by default).
    """

    max_tokens: int = Field(gt=0)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    timeout_s: float = Field(default=120.0, gt=0)
    reasoning_effort: Effort | None = None


def _default_profiles() -> dict[str, EffortProfile]:
    # Sized for the embedded 1.5B model (~17 output tokens/s on 2 cores, see agents/local_llm.py):
    # low ~10 s, medium ~20 s, high ~45 s of generation at most (high must fit a whole JSON decision).
    return {
        "low": EffortProfile(max_tokens=192, timeout_s=120, reasoning_effort="low"),
        "medium": EffortProfile(max_tokens=320, timeout_s=240, reasoning_effort="medium"),
        "high": EffortProfile(max_tokens=768, timeout_s=600, reasoning_effort="high"),
    }


class ModelSettings(BaseModel):
    """Which chat model answers.

    ``provider="local"`` (default): the embedded llama.cpp model (no key, no network).
    ``provider="openai"``: ``langchain_openai.ChatOpenAI`` against ``base_url`` (OpenAI when
    unset; vLLM, Ollama or llama.cpp's server when set) with model ``model``.
    """

    provider: Literal["local", "openai"] = "local"
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: SecretStr | None = None
    supports_reasoning_effort: bool = False
    json_mode: bool = Field(
        default=True,
        description="Ask the endpoint for response_format={'type': 'json_object'} on structured steps.",
    )
    profiles: dict[Effort, EffortProfile] = Field(default_factory=_default_profiles)

    @model_validator(mode="after")
    def _all_efforts(self) -> "ModelSettings":
        missing = [e for e in EFFORTS if e not in self.profiles]
        if missing:
            raise ValueError(f"model.profiles: missing effort level(s) {missing}; expected low, medium and high")
        return self


class LocalModelSettings(BaseModel):
    """The embedded model: ``gguf_path`` overrides the bundled Qwen2.5-Coder-1.5B-Instruct."""

    gguf_path: Path | None = None
    n_ctx: int = Field(default=4096, ge=512)
    n_threads: int | None = None
