"""A LangChain chat model over an ordered list of OpenAI-compatible endpoints, made resilient.

:class:`ResilientChatModel` is what ``ConfiguredModels`` returns for ``provider="openai"``. Each
endpoint has its own ``ChatOpenAI(max_retries=0, timeout=profile.timeout_s)`` (the openai
client's own retries are off so attempts do not multiply); every call goes through
:func:`chainproof.agents.resilience.call_resilient` (retries, Retry-After, failover, circuit breakers,
RPM/TPM limits, deadline). The attempt records travel with the answer in
``AIMessage.response_metadata["http_attempts"]`` (list of :class:`AttemptRecord` dicts), where
:func:`chainproof.agents.calls.call_model` picks them up for the audit trail.

Streaming is retried until the first chunk arrives; a stream that breaks after chunks were
passed on cannot be replayed and ends in :class:`~chainproof.agents.resilience.ModelCallFailed` naming the
endpoint and the cause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from chainproof.agents.calls import with_effort_instruction
from chainproof.agents.config import RetrySettings
from chainproof.agents.ratelimit import estimate_tokens
from chainproof.agents.resilience import (
    AttemptRecord,
    Endpoint,
    MalformedResponse,
    ModelCallFailed,
    call_resilient,
    classify,
    describe_error,
)


def _finished(chunk: ChatGenerationChunk) -> bool:
    info = {**(chunk.generation_info or {}), **chunk.message.response_metadata}
    return info.get("finish_reason") is not None


def _total_tokens(message: Any) -> int | None:
    usage = getattr(message, "usage_metadata", None)
    return int(usage["total_tokens"]) if usage and usage.get("total_tokens") is not None else None


class ResilientChatModel(BaseChatModel):
    """Chat model over ``endpoints`` (in order of preference) with ``retry`` policy.

    ``max_tokens`` is the effort profile's output cap, used for the TPM estimate.
    ``clock``/``sleep`` (seconds) are injectable for tests. ``model_name`` is the first
    endpoint's model (the audit shows the answering model from the response).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    endpoints: list[Any]  # list[Endpoint]: plain dataclasses, not validated by pydantic
    retry: RetrySettings = Field(default_factory=RetrySettings)
    max_tokens: int | None = None
    model_name: str = "openai"
    effort_instruction: str | None = None
    clock: Callable[[], float] = Field(default=time.monotonic, exclude=True)
    sleep: Callable[[float], None] = Field(default=time.sleep, exclude=True)

    @property
    def _llm_type(self) -> str:
        return "chainproof-resilient-openai"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "endpoints": [e.name for e in self.endpoints]}

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any):
        """Bind tools in OpenAI's format (passed to every endpoint's ``ChatOpenAI``). ``tool_choice``
        is sent as OpenAI's API takes it, spelled as ``ChatOpenAI.bind_tools`` spells it: a tool's
        name becomes ``{"type": "function", "function": {"name": ...}}``, ``"any"`` and ``True``
        become ``"required"``; ``"auto"``, ``"none"``, ``"required"`` and dicts pass unchanged."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        names = {t["function"]["name"] for t in formatted}
        if tool_choice is True or tool_choice == "any":
            tool_choice = "required"
        elif isinstance(tool_choice, str) and tool_choice in names and tool_choice not in ("auto", "none", "required"):
            tool_choice = {"type": "function", "function": {"name": tool_choice}}
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def _emulated(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> list[BaseMessage]:
        """``messages`` with ``effort_instruction`` added to the system message of a free-text call
        (no tools, no ``response_format``): the reasoning-effort emulation of :mod:`chainproof.agents.config`."""
        if not self.effort_instruction or kwargs.get("tools") or kwargs.get("response_format"):
            return messages
        return with_effort_instruction(messages, self.effort_instruction)

    def _call(self, messages: list[BaseMessage], attempt: Callable[[Endpoint], Any]) -> tuple[Any, list[AttemptRecord]]:
        return call_resilient(
            self.endpoints, attempt, policy=self.retry, tokens=estimate_tokens(messages, self.max_tokens),
            tokens_used=lambda r: _total_tokens(r.generations[0].message) if isinstance(r, ChatResult) else None,
            clock=self.clock, sleep=self.sleep,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        messages = self._emulated(messages, kwargs)

        def attempt(endpoint: Endpoint) -> ChatResult:
            result = endpoint.client._generate(messages, stop=stop, **kwargs)
            if not result.generations:
                raise MalformedResponse(f"endpoint {endpoint.name} returned no choices")
            return result

        result, records = self._call(messages, attempt)
        message = result.generations[0].message
        message.response_metadata["http_attempts"] = [r.model_dump() for r in records]
        message.response_metadata["endpoint"] = records[-1].endpoint
        return result

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        messages = self._emulated(messages, kwargs)

        def attempt(endpoint: Endpoint) -> tuple[Endpoint, ChatGenerationChunk, Iterator[ChatGenerationChunk]]:
            chunks = endpoint.client._stream(messages, stop=stop, **kwargs)
            first = next(chunks, None)
            if first is None:
                raise MalformedResponse(f"endpoint {endpoint.name} sent a stream without any chunk")
            return endpoint, first, chunks

        (endpoint, first, rest), records = self._call(messages, attempt)
        first.message.response_metadata["http_attempts"] = [r.model_dump() for r in records]
        first.message.response_metadata["endpoint"] = endpoint.name
        yield first
        count, finished = 1, _finished(first)
        try:
            for chunk in rest:
                count += 1
                finished = finished or _finished(chunk)
                if run_manager and isinstance(chunk.message.content, str):
                    run_manager.on_llm_new_token(chunk.message.content, chunk=chunk)
                yield chunk
        except Exception as exc:
            if classify(exc) is None:
                raise
            endpoint.breaker.record_failure()
            raise ModelCallFailed(
                f"stream from endpoint {endpoint.name!r} ({endpoint.url}) broke after {count} chunk(s): "
                f"{type(exc).__name__}: {describe_error(exc)}; the partial answer was already passed on, so it is "
                "not retried", records, classify(exc)) from exc
        if not finished:
            endpoint.breaker.record_failure()
            raise ModelCallFailed(
                f"stream from endpoint {endpoint.name!r} ({endpoint.url}) ended after {count} chunk(s) without a "
                "finish reason (truncated)", records, "malformed_response")
