"""A scripted chat model: deterministic answers for tests, benchmarks and demos.

Like LangChain's ``FakeMessagesListChatModel`` but it keeps ``usage_metadata``, supports
``bind_tools``/``bind`` (recording what was bound), can answer from a function of the prompt,
and fails loudly when its script runs out instead of cycling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr

from chainproof.errors import ScriptExhausted

Reply = AIMessage | str | Callable[[list[BaseMessage]], AIMessage | str]


def _usage(message: AIMessage, prompt: Sequence[BaseMessage]) -> AIMessage:
    if message.usage_metadata is not None:
        return message
    # Rough count (4 characters per token, OpenAI's rule of thumb) so totals are never zero.
    n_in = max(1, sum(len(str(m.content)) for m in prompt) // 4)
    n_out = max(1, len(str(message.content)) // 4)
    return message.model_copy(
        update={"usage_metadata": {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}}
    )


class ScriptedChatModel(BaseChatModel):
    """Answers with ``replies`` in order.

    Each reply is an ``AIMessage`` (its ``usage_metadata`` is kept; when absent a 4-chars-per-token
    estimate is filled in), a string, or a callable ``(messages) -> AIMessage | str`` that sees the
    prompt. ``calls`` records every prompt received (a list of message lists) and ``bound`` the
    keyword arguments bound with ``bind``/``bind_tools`` at each call. Script tool calls with
    :meth:`tool_calls_reply` (or any ``AIMessage`` with ``tool_calls``).

    Raises:
        ScriptExhausted: on a call past the last reply, unless ``repeat_last`` is set.
    """

    replies: list[Any]
    repeat_last: bool = False
    model_name: str = "scripted"
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _index: int = PrivateAttr(default=0)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _bound: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "chainproof-scripted"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        return self._calls

    @property
    def bound(self) -> list[dict[str, Any]]:
        return self._bound

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any):
        """Record the tools (as OpenAI tool dicts) and return a bound runnable."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    @staticmethod
    def tool_calls_reply(*calls: tuple[str, dict[str, Any]], text: str = "") -> AIMessage:
        """A reply that asks for tool calls, each ``(tool name, arguments)``, with optional text
        (what a model writes beside its calls). The calls get ids ``call_<reply>_<j>`` (the
        0-based number of the reply served and of the call) when the reply is served, as a model
        gives one id per call."""
        return AIMessage(content=text, tool_calls=[{"name": name, "args": args, "id": None, "type": "tool_call"}
                                                   for name, args in calls])

    def _next_reply(self, messages: list[BaseMessage]) -> AIMessage:
        with self._lock:
            if self._index >= len(self.replies):
                if not (self.repeat_last and self.replies):
                    raise ScriptExhausted(
                        f"ScriptedChatModel has {len(self.replies)} replies and was called a "
                        f"{self._index + 1}th time; prompt started with: {str(messages[0].content)[:120]!r}"
                    )
                reply = self.replies[-1]
            else:
                reply = self.replies[self._index]
            served = self._index
            self._index += 1
            self._calls.append(list(messages))
        if callable(reply) and not isinstance(reply, BaseMessage):
            reply = reply(list(messages))
        message = AIMessage(content=reply) if isinstance(reply, str) else reply
        if any(tc.get("id") is None for tc in message.tool_calls):
            message = message.model_copy(update={"tool_calls": [
                {**tc, "id": tc.get("id") or f"call_{served}_{j}"} for j, tc in enumerate(message.tool_calls)]})
        message = _usage(message, messages)
        meta = {"model_name": self.model_name, "finish_reason": "stop", **message.response_metadata}
        return message.model_copy(update={"response_metadata": meta})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            self._bound.append(dict(kwargs))
        return ChatResult(generations=[ChatGeneration(message=self._next_reply(messages))])
