"""Model-access configuration: effort levels, their profiles, and which endpoint answers.

These models are nested inside :class:`chainproof.settings.Settings` (``CHAINPROOF_MODEL__...``).

What an effort level means for a call — the one place this mapping is written down:

* every model: the level's :class:`EffortProfile` (``max_tokens`` output cap, ``temperature``,
  ``timeout_s``); which level a step gets is decided by :mod:`chainproof.graphs.routing`;
* models with native reasoning effort (OpenAI o-series / gpt-5, ``supports_reasoning_effort``):
  ``reasoning_effort`` is sent as the profile says (and ``temperature`` is not: they reject it);
* models without it — emulation: the instruction :data:`EFFORT_INSTRUCTIONS` of the level is
  added to the system message of free-text calls (no tools, no JSON ``response_format``): ``low``
  answer directly; ``medium`` brief reasoning; ``high`` a think-first scaffold (reasoning inside
  ``<think>…</think>``, then the answer; the block is returned as reasoning, not as the answer).
  The embedded model (``provider="local"``) always emulates and adds
  :data:`HIGH_EFFORT_EXTRA_TOKENS` output tokens at ``high`` (:class:`chainproof.agents.local_llm.LocalLlamaChat`);
  OpenAI-compatible models without native support emulate when ``emulate_reasoning_effort`` is set
  (their ``high`` profile's ``max_tokens`` is the budget: size it for the scaffold).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

Effort = Literal["low", "medium", "high"]
EFFORTS: tuple[Effort, ...] = ("low", "medium", "high")

#: System-prompt addenda emulating ``reasoning_effort`` for models without a native reasoning mode.
EFFORT_INSTRUCTIONS: dict[str, str] = {
    "low": "Answer directly and concisely. Do not explain your reasoning.",
    "medium": "Answer concisely. If the task needs reasoning, keep it to a few short sentences before the answer.",
    "high": (
        "Think step by step first: write your reasoning inside <think> and </think> tags, "
        "then give the final answer after the closing </think> tag."
    ),
}

HIGH_EFFORT_EXTRA_TOKENS = 256
"""Output tokens the embedded model adds to ``max_tokens`` at ``high`` for the think-first scaffold."""


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


def _default_profiles() -> dict[Effort, EffortProfile]:
    # Sized for the embedded 1.5B model (~17 output tokens/s on 2 cores, measured in agents/local_llm.py):
    # low ~10 s, medium ~20 s, high ~45 s of generation at most (high must fit a whole JSON decision).
    return {
        "low": EffortProfile(max_tokens=192, timeout_s=120, reasoning_effort="low"),
        "medium": EffortProfile(max_tokens=320, timeout_s=240, reasoning_effort="medium"),
        "high": EffortProfile(max_tokens=768, timeout_s=600, reasoning_effort="high"),
    }


class EndpointSettings(BaseModel):
    """One OpenAI-compatible endpoint of a failover list.

    ``name`` labels it in the audit trail; ``base_url`` ``None`` means api.openai.com;
    ``api_key`` / ``model`` default to the enclosing :class:`ModelSettings` ones; ``rpm`` /
    ``tpm`` are the endpoint's requests / tokens per minute (``None``: no client-side limit).
    """

    name: str = Field(min_length=1)
    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str | None = None
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)


class RetrySettings(BaseModel):
    """How one model call rides through transient faults (429, 5xx, timeouts, connection errors,
    malformed answers); see :mod:`chainproof.agents.resilience`.

    ``max_attempts`` counts HTTP requests of one call across all endpoints; waits between them
    are exponential with jitter (``initial_wait_s`` · 2ⁿ + up to ``jitter_s``, at most
    ``max_wait_s``: AWS Architecture Blog, "Exponential Backoff and Jitter"), or exactly the
    server's ``Retry-After``. ``deadline_s`` bounds the whole call (attempts, waits, rate-limit
    queueing) in seconds.
    """

    max_attempts: int = Field(default=4, ge=1)
    initial_wait_s: float = Field(default=0.5, ge=0)
    max_wait_s: float = Field(default=30.0, ge=0)
    jitter_s: float = Field(default=0.5, ge=0)
    deadline_s: float = Field(default=900.0, gt=0)


class CircuitSettings(BaseModel):
    """Per-endpoint circuit breaker (:class:`chainproof.agents.failover.CircuitBreaker`): opens after
    ``failure_threshold`` consecutive failures, lets a trial request through after
    ``reset_timeout_s`` seconds."""

    failure_threshold: int = Field(default=5, ge=1)
    reset_timeout_s: float = Field(default=30.0, gt=0)


class ModelSettings(BaseModel):
    """Which chat model answers.

    ``provider="local"`` (default): the embedded llama.cpp model (no key, no network).
    ``provider="openai"``: ``langchain_openai.ChatOpenAI`` against ``base_url`` (OpenAI when
    unset; vLLM, Ollama or llama.cpp's server when set) with model ``model``, or against the
    ordered failover list ``endpoints`` when given. ``rpm``/``tpm`` limit the single-endpoint
    form (per endpoint in ``endpoints``): requests per minute and tokens per minute, the units of
    OpenAI's ``x-ratelimit-limit-requests`` / ``x-ratelimit-limit-tokens``, with tokens charged at
    admission as OpenAI counts them (see :mod:`chainproof.agents.ratelimit`). ``shared_limits``
    says where those budgets live, so that they hold across every process calling the endpoint.
    """

    provider: Literal["local", "openai"] = "local"
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: SecretStr | None = None
    endpoints: list[EndpointSettings] = Field(default_factory=list)
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    rate_limit_burst_s: float = Field(
        default=1.0, gt=0, description="Seconds' worth of requests/tokens that may go out at once.")
    redis_url: str | None = Field(
        default=None, description="redis://127.0.0.1:6379/0 to share RPM/TPM limits across processes.")
    shared_limits: Literal["auto", "process", "database", "redis"] = Field(
        default="auto",
        description="Where the RPM/TPM budgets live: 'process' (this process only), 'redis' (redis_url), "
        "'database' (the audit database, PostgreSQL: every worker of a fleet shares it); 'auto': redis when "
        "redis_url is set, else database when database_url is PostgreSQL, else process.")
    retry: RetrySettings = Field(default_factory=RetrySettings)
    circuit: CircuitSettings = Field(default_factory=CircuitSettings)
    supports_reasoning_effort: bool = False
    emulate_reasoning_effort: bool = Field(
        default=False,
        description="For OpenAI-compatible models without native reasoning_effort: add the effort's "
        "instruction (EFFORT_INSTRUCTIONS) to free-text prompts.")
    stream: bool = Field(
        default=False, description="Stream answers (token usage is the same as when invoking).")
    json_mode: bool = Field(
        default=True,
        description="Ask the endpoint for response_format={'type': 'json_object'} on structured steps.",
    )
    profiles: dict[Effort, EffortProfile] = Field(default_factory=_default_profiles)

    @field_validator("profiles", mode="before")
    @classmethod
    def _merge_profiles(cls, value: Any) -> Any:
        """A partial profile (``[model.profiles.high] max_tokens = 4096``, or one environment
        variable) changes only what it names: the rest comes from the defaults."""
        if not isinstance(value, dict):
            return value
        merged = {e: p.model_dump() for e, p in _default_profiles().items()}
        for effort, given in value.items():
            given = given.model_dump(exclude_unset=True) if isinstance(given, BaseModel) else given
            merged[effort] = {**merged.get(effort, {}), **given} if isinstance(given, dict) else given
        return merged

    @model_validator(mode="after")
    def _all_efforts(self) -> ModelSettings:
        missing = [e for e in EFFORTS if e not in self.profiles]
        if missing:
            raise ValueError(f"model.profiles: missing effort level(s) {missing}; expected low, medium and high")
        if self.shared_limits == "redis" and not self.redis_url:
            raise ValueError("model.shared_limits: 'redis' needs model.redis_url (CHAINPROOF_MODEL__REDIS_URL)")
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"model.endpoints: names must be unique, got {names}")
        return self

    def resolved_endpoints(self) -> list[EndpointSettings]:
        """The failover list with defaults filled in: ``endpoints``, or one endpoint named
        ``default`` built from ``base_url`` / ``model`` / ``api_key`` / ``rpm`` / ``tpm``."""
        if not self.endpoints:
            return [EndpointSettings(name="default", base_url=self.base_url, api_key=self.api_key,
                                     model=self.model, rpm=self.rpm, tpm=self.tpm)]
        return [e.model_copy(update={"model": e.model or self.model, "api_key": e.api_key or self.api_key})
                for e in self.endpoints]


class LocalModelSettings(BaseModel):
    """The embedded model: ``gguf_path`` overrides the bundled Qwen2.5-Coder-1.5B-Instruct.

    ``cache_prompt`` and ``forced_call_prompt`` are :class:`~chainproof.agents.local_llm.LocalLlamaChat`'s
    fields of the same names (the KV-prefix reuse between calls; how a grammar-forced call names
    its tool: one system line, ``"line"``, or the chat template's tools block, ``"template"``)."""

    gguf_path: Path | None = None
    n_ctx: int = Field(default=4096, ge=512)
    n_threads: int | None = None
    cache_prompt: bool = True
    forced_call_prompt: Literal["line", "template"] = "line"
