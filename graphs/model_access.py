"""How orchestrator nodes call a model: through the reasoning cache, invoked or streamed.

:class:`ModelAccess` wraps :func:`chainproof.agents.calls.call_model`: it computes the cache key of the
request (:func:`chainproof.checkpoints.reasoning_cache.cache_key` over the model name, effort, wire messages,
bound tools and sampling parameters: the effort profile plus whatever is bound, e.g. the JSON
``response_format``), answers from the cache when it can — a :class:`~chainproof.agents.calls.ModelCall` with
``cache_hit=True`` whose usage is the tokens the hit saved and which costs nothing — and otherwise
calls the model and stores the answer.

The cache is a :class:`CacheSource`: :class:`StoredCache` over the database table in live runs;
replay passes one that answers exactly where the recorded run had a hit.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableBinding

from chainproof.agents.calls import ModelCall, Usage, ai_message, call_model, model_name_of, wire_messages
from chainproof.agents.config import EffortProfile
from chainproof.checkpoints.reasoning_cache import ReasoningCache, cache_key


class CacheSource(Protocol):
    """Where cached answers come from. ``lookup`` returns a stored response dict (see
    :func:`response_of`) or None; ``store`` keeps one."""

    def lookup(self, key: str, messages: list[dict[str, Any]], effort: str) -> dict[str, Any] | None: ...

    def store(self, key: str, model: str, effort: str, response: dict[str, Any]) -> None: ...


@dataclass
class StoredCache:
    """:class:`CacheSource` over the ``reasoning_cache`` table."""

    cache: ReasoningCache

    def lookup(self, key: str, messages: list[dict[str, Any]], effort: str) -> dict[str, Any] | None:
        return self.cache.get(key)

    def store(self, key: str, model: str, effort: str, response: dict[str, Any]) -> None:
        self.cache.put(key, model, effort, response)


def response_of(call: ModelCall) -> dict[str, Any]:
    """What the cache keeps of a call: model, output, reasoning, tool calls, usage, finish reason."""
    return {"model": call.model, "output": call.output, "reasoning": call.reasoning, "tool_calls": call.tool_calls,
            "usage": call.usage.model_dump(), "finish_reason": call.finish_reason}


def _binding(model: BaseChatModel | Runnable) -> dict[str, Any]:
    return dict(model.kwargs) if isinstance(model, RunnableBinding) else {}


@dataclass
class ModelAccess:
    """Calls models for the nodes. ``profiles``: effort -> :class:`EffortProfile` (part of the
    cache key); ``cache``: None turns the cache off; ``stream``: stream answers
    (``call_model(stream=True)``; same usage and records as invoking)."""

    profiles: Mapping[str, EffortProfile]
    cache: CacheSource | None = None
    stream: bool = False

    def key(self, model: BaseChatModel | Runnable, messages: list[dict[str, Any]], effort: str) -> str:
        """The cache key of calling ``model`` on ``messages`` (wire form) at ``effort``."""
        bound = _binding(model)
        profile = self.profiles.get(effort)
        params = {**(profile.model_dump(exclude={"timeout_s"}) if profile else {}),
                  **{k: v for k, v in bound.items() if k != "tools"}}
        return cache_key(model_name_of(model), effort, messages, bound.get("tools"), params)

    def call(self, model: BaseChatModel | Runnable, messages: list[BaseMessage], *, effort: str,
             use_cache: bool = True, store: bool = True) -> tuple[AIMessage, ModelCall]:
        """Answer from the cache (``use_cache`` and a cache configured) or call the model and, with
        ``store``, keep the answer (see :meth:`keep` for answers that must be checked first).
        Model exceptions propagate unchanged; a failed call stores nothing."""
        if self.cache is None or not use_cache:
            return call_model(model, messages, effort=effort, stream=self.stream)
        started = time.perf_counter()
        wire = wire_messages(messages)
        key = self.key(model, wire, effort)
        hit = self.cache.lookup(key, wire, effort)
        if hit is not None:
            record = ModelCall(
                model=hit["model"], effort=effort, messages=wire, output=hit["output"], reasoning=hit.get("reasoning", ""),
                tool_calls=hit.get("tool_calls") or [], usage=Usage(**hit["usage"]), finish_reason=hit.get("finish_reason"),
                latency_s=round(time.perf_counter() - started, 4), cache_hit=True,
            )
            return ai_message(record.output, record.tool_calls), record
        reply, record = call_model(model, messages, effort=effort, stream=self.stream)
        if store:
            self.cache.store(key, record.model, effort, response_of(record))
        return reply, record

    def keep(self, model: BaseChatModel | Runnable, messages: list[BaseMessage], record: ModelCall) -> None:
        """Store an answer once it was found valid (a hit is already stored)."""
        if self.cache is not None and not record.cache_hit:
            self.cache.store(self.key(model, record.messages, record.effort), record.model, record.effort,
                             response_of(record))

    def structured(self, use_cache: bool) -> dict[str, Any]:
        """The ``call`` and ``accept`` arguments of :func:`chainproof.agents.structured.invoke_structured`: each
        attempt may be answered by the cache; only the valid answer is stored."""

        def call(model: BaseChatModel | Runnable, messages: list[BaseMessage], *, effort: str):
            return self.call(model, messages, effort=effort, use_cache=use_cache, store=False)

        def accept(model: BaseChatModel | Runnable, messages: list[BaseMessage], record: ModelCall) -> None:
            if use_cache:
                self.keep(model, messages, record)

        return {"call": call, "accept": accept}
