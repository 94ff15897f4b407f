"""One model call, measured: what was sent, what came back, tokens and latency.

Every model call a node makes goes through :func:`call_model`, which returns a
:class:`ModelCall` that the orchestrator writes to the audit store. Token counts follow
LangChain's ``usage_metadata`` (itself OpenAI's ``usage``): ``reasoning_tokens`` and
``cached_input_tokens`` are *parts of* ``output_tokens`` and ``input_tokens``, never added on top.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage, convert_to_openai_messages
from langchain_core.messages.utils import message_chunk_to_message
from langchain_core.runnables import Runnable, RunnableBinding
from pydantic import BaseModel, Field


class Usage(BaseModel):
    """Token usage of one call (tokens). ``reasoning_tokens`` ⊆ ``output_tokens``;
    ``cached_input_tokens`` ⊆ ``input_tokens``."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{k: getattr(self, k) + getattr(other, k) for k in Usage.model_fields})

    @classmethod
    def from_message(cls, message: AIMessage) -> Usage:
        """Read ``message.usage_metadata`` (absent → all zeros)."""
        meta = message.usage_metadata
        if meta is None:
            return cls()
        in_details = meta.get("input_token_details") or {}
        out_details = meta.get("output_token_details") or {}
        return cls(
            input_tokens=int(meta.get("input_tokens") or 0),
            cached_input_tokens=int(in_details.get("cache_read") or 0),
            output_tokens=int(meta.get("output_tokens") or 0),
            reasoning_tokens=int(out_details.get("reasoning") or 0),
        )


class ModelCall(BaseModel):
    """A completed model call as the audit store records it.

    ``messages`` are OpenAI-format chat messages (``{"role", "content"[, "tool_calls"]}``, LangChain's
    ``convert_to_openai_messages``: what an OpenAI-compatible endpoint receives); ``latency_s`` is wall-clock
    seconds; ``reasoning`` is the model's reasoning text where the provider returns one
    (``reasoning_content`` or ``reasoning`` content blocks), else ``""``. ``attempts`` is the
    structured-output attempt number (1-based, see :mod:`chainproof.agents.structured`);
    ``tool_calls`` are LangChain ``ToolCall`` dicts (``type="tool_call"``) followed by any
    ``InvalidToolCall`` dicts (``type="invalid_tool_call"``: arguments that were not JSON);
    :func:`ai_message` turns them back into one message. ``http_attempts`` holds one :class:`~chainproof.agents.resilience.AttemptRecord` dict per HTTP request
    the call made (retries and failovers included; empty for in-process models). ``cache_hit``:
    the reasoning cache answered (:mod:`chainproof.agents.reasoning_cache`): no model was called, ``usage``
    holds the tokens the hit saved (those of the original call) and ``latency_s`` the lookup time.
    """

    model: str
    effort: str
    messages: list[dict[str, Any]]
    output: str
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    finish_reason: str | None = None
    attempts: int = 1
    http_attempts: list[dict[str, Any]] = Field(default_factory=list)
    cache_hit: bool = False


def ai_message(content: str, tool_calls: Sequence[dict[str, Any]], **kwargs: Any) -> AIMessage:
    """The ``AIMessage`` of a recorded answer: ``tool_calls`` as :class:`ModelCall` keeps them
    (valid calls, then ``type="invalid_tool_call"`` ones) split back into ``tool_calls`` and
    ``invalid_tool_calls``; ``kwargs`` go to ``AIMessage`` (usage, metadata)."""
    valid = [tc for tc in tool_calls if tc.get("type", "tool_call") != "invalid_tool_call"]
    invalid = [tc for tc in tool_calls if tc.get("type") == "invalid_tool_call"]
    return AIMessage(content=content, tool_calls=valid, invalid_tool_calls=invalid, **kwargs)


def _text_and_reasoning(message: AIMessage) -> tuple[str, str]:
    reasoning = str(message.additional_kwargs.get("reasoning_content") or "")
    content = message.content
    if isinstance(content, str):
        return content, reasoning
    texts, thoughts = [], [reasoning] if reasoning else []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") in ("reasoning", "thinking"):
            summary = block.get("summary") or []
            thoughts.append(
                block.get("reasoning")
                or block.get("thinking")
                or "\n".join(s.get("text", "") for s in summary if isinstance(s, dict))
            )
    return "".join(texts), "\n".join(t for t in thoughts if t)


def with_effort_instruction(messages: Sequence[BaseMessage], instruction: str) -> list[BaseMessage]:
    """``messages`` with ``instruction`` appended (after a blank line) to a leading text system
    message, or as a new first system message: the reasoning-effort emulation described in
    :mod:`chainproof.agents.config` (the caller decides that the call is free text). The input
    list is not changed."""
    if messages and isinstance(messages[0], SystemMessage) and isinstance(messages[0].content, str):
        first = messages[0]
        text = f"{first.content}\n\n{instruction}" if first.content else instruction
        return [SystemMessage(text), *messages[1:]]
    return [SystemMessage(instruction), *messages]


def wire_messages(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """The prompt as recorded and hashed: OpenAI-format chat messages (what an OpenAI-compatible
    endpoint receives). The audit's ``prompt_hash`` is ``sha256_hex`` of this list; replay compares
    prompts in this form."""
    return convert_to_openai_messages(messages)


def model_name_of(model: BaseChatModel | Runnable) -> str:
    """Best-effort model identifier (``model_name`` / ``model`` / class name) of a model or of the
    model inside a ``RunnableBinding`` (``.bind(...)``)."""
    bound = model.bound if isinstance(model, RunnableBinding) else model
    for attr in ("model_name", "model", "model_path"):
        value = getattr(bound, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(bound).__name__


def _streamed(model: BaseChatModel | Runnable, messages: list[BaseMessage]) -> AIMessage:
    """``model.stream(messages)`` joined into one message. Chunks add up with LangChain's own
    ``AIMessageChunk.__add__`` (usage_metadata summed field by field, tool-call chunks merged), so
    usage that arrives in the last chunk only (OpenAI's ``stream_options.include_usage``) or spread
    over chunks is counted once."""
    joined = None
    for chunk in model.stream(messages):
        joined = chunk if joined is None else joined + chunk
    if joined is None:
        raise ValueError("the model's stream ended without any chunk")
    if not isinstance(joined, AIMessageChunk):
        raise TypeError(f"model streamed {type(joined).__name__}, expected AIMessageChunk")
    message = message_chunk_to_message(joined)
    if not isinstance(message, AIMessage):
        raise TypeError(f"model stream joined into {type(message).__name__}, expected AIMessage")
    return message


def call_model(model: BaseChatModel | Runnable, messages: list[BaseMessage], *, effort: str,
               stream: bool = False) -> tuple[AIMessage, ModelCall]:
    """Invoke (or, with ``stream``, stream) ``model`` on ``messages`` and measure it.

    Returns the raw ``AIMessage`` (a streamed answer joined into one) and its :class:`ModelCall`
    record; the usage is the same either way. Exceptions from the model propagate unchanged
    (retries are the caller's policy).
    """
    started = time.perf_counter()
    reply = _streamed(model, messages) if stream else model.invoke(messages)
    latency = time.perf_counter() - started
    if not isinstance(reply, AIMessage):
        raise TypeError(f"model returned {type(reply).__name__}, expected AIMessage")
    return reply, record_of(reply, wire_messages(messages), effort=effort, latency_s=latency,
                            model=model_name_of(model))


def record_of(reply: AIMessage, wire: list[dict[str, Any]], *, effort: str, latency_s: float, model: str) -> ModelCall:
    """The :class:`ModelCall` of ``reply`` to the prompt ``wire`` (:func:`wire_messages` form):
    text and reasoning, tool calls (valid, then invalid), usage, finish reason and HTTP attempts
    from the reply; the model name from its ``response_metadata`` (else ``model``); ``latency_s``
    in seconds."""
    text, reasoning = _text_and_reasoning(reply)
    return ModelCall(
        model=str(reply.response_metadata.get("model_name") or model),
        effort=effort,
        messages=wire,
        output=text,
        reasoning=reasoning,
        tool_calls=[*(dict(tc) for tc in reply.tool_calls), *(dict(tc) for tc in reply.invalid_tool_calls)],
        usage=Usage.from_message(reply),
        latency_s=round(latency_s, 4),
        finish_reason=reply.response_metadata.get("finish_reason"),
        http_attempts=list(reply.response_metadata.get("http_attempts") or []),
    )
