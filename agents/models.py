"""Which chat model answers at which effort: the model provider used by every graph.

A provider maps an effort level (``low`` / ``medium`` / ``high``) to a LangChain chat model
configured from that level's :class:`~chainproof.agents.config.EffortProfile`. Models are built lazily, on
the first call at that effort, so commands that never call a model (``approve``, ``show``) never
load the embedded model.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from pydantic import BaseModel

from chainproof.agents.config import EFFORT_INSTRUCTIONS, Effort, EndpointSettings, LocalModelSettings, ModelSettings


class ModelProvider(Protocol):
    """Gives the chat model for an effort level and a JSON-constrained variant of it."""

    def chat(self, effort: Effort) -> BaseChatModel | Runnable: ...

    def json_chat(self, effort: Effort, schema: type[BaseModel]) -> BaseChatModel | Runnable: ...


class StaticModels:
    """One given model for every effort (or a dict ``{effort: model}``): tests, replay, demos."""

    def __init__(self, model: BaseChatModel | dict[str, BaseChatModel]):
        self._models = model if isinstance(model, dict) else {e: model for e in ("low", "medium", "high")}

    def chat(self, effort: Effort) -> BaseChatModel:
        try:
            return self._models[effort]
        except KeyError:
            raise KeyError(f"no model configured for effort {effort!r}; have {sorted(self._models)}") from None

    def json_chat(self, effort: Effort, schema: type[BaseModel]) -> BaseChatModel:
        return self.chat(effort)


class ConfiguredModels:
    """Builds models from settings: the embedded local model or ``ChatOpenAI``.

    Args:
        model: endpoint and effort profiles (``Settings.model``).
        local: embedded-model options (``Settings.local``).
        models_dir: cache folder for the assembled GGUF (``Settings.models_dir``).

        clock / sleep: time source and sleep (seconds) of the retry policy and circuit breakers;
            tests pass fakes so Retry-After and back-off need no real waiting.
        database_url: the audit store's URL; on PostgreSQL the RPM/TPM budgets are shared there
            (``model.shared_limits`` ``auto`` or ``database``), so every worker keeps to one budget.

    For ``openai`` every effort level gets a :class:`~chainproof.agents.resilient_chat.ResilientChatModel`
    over ``model.resolved_endpoints()``: one ``ChatOpenAI(max_retries=0,
    timeout=profile.timeout_s)`` per endpoint, the process-wide circuit breaker and RPM/TPM
    limiter of each endpoint, and the ``model.retry`` policy.

    Raises (from :meth:`chat`):
        agents.local_weights.LocalModelUnavailable: provider ``local`` without the ``[local]`` extra.
        ValueError: provider ``openai`` with no API key for api.openai.com.
    """

    def __init__(self, model: ModelSettings, local: LocalModelSettings, models_dir: Path, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 database_url: str | None = None):
        self.settings = model
        self.database_url = database_url
        self.local = local
        self.models_dir = models_dir
        self.clock, self.sleep = clock, sleep
        self._cache: dict[Effort, BaseChatModel] = {}
        self._lock = threading.Lock()

    def chat(self, effort: Effort) -> BaseChatModel:
        with self._lock:
            if effort not in self._cache:
                self._cache[effort] = self._build(effort)
            return self._cache[effort]

    def preflight(self) -> None:
        """Fail fast, before a run is recorded, when the configured model cannot answer: the
        embedded model without llama-cpp-python or its weights (joined and verified here, ~5 s the
        first time), or ``openai`` without a key. Loads no weights into memory."""
        if self.settings.provider == "local":
            import importlib.util

            from chainproof.agents.llama_runtime import LLAMA_INSTALL_HINT
            from chainproof.agents.local_weights import LocalModelUnavailable, check_gguf, local_model_path

            if importlib.util.find_spec("llama_cpp") is None:
                raise LocalModelUnavailable(
                    "The embedded model needs llama-cpp-python, which is not installed. Install it with:\n"
                    f"    {LLAMA_INSTALL_HINT}\nor use a remote model: CHAINPROOF_MODEL__PROVIDER=openai."
                )
            if self.local.gguf_path:
                check_gguf(self.local.gguf_path)
            else:
                local_model_path(self.models_dir)
            return
        self.chat("low")

    def json_chat(self, effort: Effort, schema: type[BaseModel]) -> BaseChatModel | Runnable:
        chat = self.chat(effort)
        if not self.settings.json_mode:
            return chat
        if self.settings.provider == "local":
            # llama.cpp turns a JSON schema into a grammar: the reply always parses.
            return chat.bind(response_format={"type": "json_object", "schema": schema.model_json_schema()})
        return chat.bind(response_format={"type": "json_object"})

    def _build(self, effort: Effort) -> BaseChatModel:
        if self.settings.provider == "local":
            return self._build_local(effort)
        from chainproof.agents.failover import breaker_for
        from chainproof.agents.ratelimit import limiter_for
        from chainproof.agents.resilience import Endpoint
        from chainproof.agents.resilient_chat import ResilientChatModel

        s = self.settings
        endpoints = []
        for ep in s.resolved_endpoints():
            url = ep.base_url or "https://api.openai.com/v1"
            key = f"{url}|{ep.model}"
            endpoints.append(Endpoint(
                name=ep.name, url=url, client=self._build_openai(effort, ep),
                breaker=breaker_for(key, s.circuit.failure_threshold, s.circuit.reset_timeout_s, self.clock),
                limiter=limiter_for(key, ep.rpm, ep.tpm, burst_s=s.rate_limit_burst_s, **self._shared_limits()),
            ))
        emulate = s.emulate_reasoning_effort and not s.supports_reasoning_effort
        return ResilientChatModel(endpoints=endpoints, retry=s.retry, max_tokens=s.profiles[effort].max_tokens,
                                  model_name=endpoints[0].client.model_name, clock=self.clock, sleep=self.sleep,
                                  effort_instruction=EFFORT_INSTRUCTIONS[effort] if emulate else None)

    def _shared_limits(self) -> dict[str, str | None]:
        """Where the endpoints' RPM/TPM budgets live (``model.shared_limits``): ``redis_url`` or
        ``database_url`` for :func:`~chainproof.agents.ratelimit.limiter_for`. Raises
        ``ValueError`` naming the setting when ``database`` is asked for without PostgreSQL."""
        mode = self.settings.shared_limits
        postgres = self.database_url if (self.database_url or "").startswith(("postgresql", "postgres://")) else None
        if mode == "database" and postgres is None:
            raise ValueError(f"model.shared_limits: 'database' needs database_url (CHAINPROOF_DATABASE_URL) on "
                             f"PostgreSQL, got {self.database_url!r}")
        if mode == "redis" or (mode == "auto" and self.settings.redis_url):
            return {"redis_url": self.settings.redis_url}
        if mode == "database" or (mode == "auto" and postgres):
            return {"database_url": postgres}
        return {}

    def _build_openai(self, effort: Effort, endpoint: EndpointSettings) -> BaseChatModel:
        from langchain_openai import ChatOpenAI

        profile = self.settings.profiles[effort]
        secret = endpoint.api_key
        key = secret.get_secret_value() if secret else os.environ.get("OPENAI_API_KEY")
        if not key:
            if endpoint.base_url is None:
                field = "model.api_key" if not self.settings.endpoints else f"model.endpoints[{endpoint.name}].api_key"
                raise ValueError(
                    f"{field}: provider 'openai' needs CHAINPROOF_MODEL__API_KEY (or OPENAI_API_KEY), "
                    "or CHAINPROOF_MODEL__BASE_URL for a local OpenAI-compatible server"
                )
            key = "not-needed"  # vLLM / Ollama / llama.cpp servers accept any key
        kwargs: dict[str, Any] = {
            "model": endpoint.model,
            "api_key": key,
            "base_url": endpoint.base_url,
            "max_tokens": profile.max_tokens,
            "timeout": profile.timeout_s,  # ChatOpenAI has no timeout by default
            "max_retries": 0,  # agents.resilience retries; the openai client's own 2 retries would multiply them
            "stream_usage": True,  # with base_url set, LangChain would otherwise drop usage when streaming
        }
        if self.settings.supports_reasoning_effort and profile.reasoning_effort:
            kwargs["reasoning_effort"] = profile.reasoning_effort  # reasoning models reject temperature
        else:
            kwargs["temperature"] = profile.temperature
        return ChatOpenAI(**kwargs)

    def _build_local(self, effort: Effort) -> BaseChatModel:
        from chainproof.agents.local_llm import LocalLlamaChat
        from chainproof.agents.local_weights import local_model_path

        profile = self.settings.profiles[effort]
        path = self.local.gguf_path or local_model_path(self.models_dir)
        kwargs: dict[str, Any] = {
            "model_path": str(path),
            "model_name": f"local:{Path(path).name.removesuffix('.gguf')}",
            "n_ctx": self.local.n_ctx,
            "max_tokens": profile.max_tokens,
            "temperature": profile.temperature,
            "reasoning_effort": effort,
            "cache_prompt": self.local.cache_prompt,
            "forced_call_prompt": self.local.forced_call_prompt,
        }
        if self.local.n_threads:
            kwargs["n_threads"] = self.local.n_threads
        return LocalLlamaChat(**kwargs)
