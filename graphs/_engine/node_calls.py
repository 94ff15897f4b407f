"""The model and tool calls inside a node of an instrumented graph (``chainproof.instrument``):
recorded through a LangChain callback handler, and given the node's effort (or, in a replay, the
recorded answer) through one hook on LangChain's chat models.

* **Recording** (:class:`NodeCallsHandler`, a ``BaseCallbackHandler``): the node wrapper passes
  it in the node's ``config["callbacks"]``; LangChain hands a node's config to every runnable the
  node invokes (``var_child_runnable_config``), so every chat-model call inside the node — however
  deep, ``with_structured_output`` and ``bind_tools`` included — reaches ``on_chat_model_start`` /
  ``on_llm_end``, and every LangChain tool ``on_tool_start`` / ``on_tool_end``. This is how
  LangSmith's tracer sees a node's calls.
* **Effort and replay** (:func:`install`): callbacks observe and cannot change a request, so the
  node's effort is applied where LangChain builds it: ``BaseChatModel._generate_with_cache``
  (what ``invoke``/``batch``/``generate`` call, after the callbacks' start and before the
  provider's ``_generate``) is wrapped once per process. Inside a node scope (:data:`_SCOPE`, a
  context variable the node wrapper sets) the wrapper adds the effort profile's invocation
  parameters — ``max_tokens`` and ``temperature``, or ``reasoning_effort`` for a model whose
  ``reasoning_effort`` field is set (reasoning models reject ``temperature``) — unless the call
  already sets them; in a replay it returns the recorded answer (checked against the recorded
  prompt hash and effort) and the provider is never called. Outside a scope it does nothing else
  than call through. The same way OpenInference's and OpenTelemetry's LangChain instrumentors
  hook LangChain (they wrap ``BaseCallbackManager.__init__``).

Not covered: a model's ``.stream()`` (recorded, but neither given the effort nor served in a
replay: LangChain streams without ``_generate_with_cache``), completion (non-chat) LLMs, and
calls made on threads the node starts without copying its context.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult

from chainproof.agents.calls import ModelCall, record_of, wire_messages
from chainproof.agents.config import EffortProfile

Served = Callable[[list[BaseMessage], str], AIMessage]
"""A replay's recorded answer to a prompt at an effort (raises ``ReplayDivergence`` on a mismatch)."""


@dataclass(frozen=True)
class NodeScope:
    """What the chat-model hook applies inside one node run: ``effort`` and its ``profile``, and
    ``served`` (replay: the recorded answers; None: call the model)."""

    effort: str
    profile: EffortProfile
    served: Served | None = None

    def params_for(self, model: BaseChatModel) -> dict[str, Any]:
        """The invocation parameters the effort sets on ``model``'s request."""
        if getattr(model, "reasoning_effort", None) is not None and self.profile.reasoning_effort is not None:
            return {"max_tokens": self.profile.max_tokens, "reasoning_effort": self.profile.reasoning_effort}
        return {"max_tokens": self.profile.max_tokens, "temperature": self.profile.temperature}


_SCOPE: ContextVar[NodeScope | None] = ContextVar("chainproof_node_scope", default=None)
_INSTALLED = threading.Lock()


def scoped(scope: NodeScope) -> Any:
    """Enter ``scope`` for the current context; returns the token for :func:`unscoped`."""
    install()
    return _SCOPE.set(scope)


def unscoped(token: Any) -> None:
    _SCOPE.reset(token)


def install() -> None:
    """Wrap ``BaseChatModel._generate_with_cache`` and ``_agenerate_with_cache`` once per process
    (idempotent; see the module docstring)."""
    with _INSTALLED:
        if getattr(BaseChatModel._generate_with_cache, "__chainproof__", False):
            return
        sync, asynchronous = BaseChatModel._generate_with_cache, BaseChatModel._agenerate_with_cache

        @functools.wraps(sync)
        def generate(self: BaseChatModel, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                     **kwargs: Any) -> ChatResult:
            scope = _SCOPE.get()
            if scope is None:
                return sync(self, messages, stop, run_manager, **kwargs)
            if scope.served is not None:
                return ChatResult(generations=[ChatGeneration(message=scope.served(messages, scope.effort))])
            return sync(self, messages, stop, run_manager, **{**scope.params_for(self), **kwargs})

        @functools.wraps(asynchronous)
        async def agenerate(self: BaseChatModel, messages: list[BaseMessage], stop: Any = None,
                            run_manager: Any = None, **kwargs: Any) -> ChatResult:
            scope = _SCOPE.get()
            if scope is None:
                return await asynchronous(self, messages, stop, run_manager, **kwargs)
            if scope.served is not None:
                return ChatResult(generations=[ChatGeneration(message=scope.served(messages, scope.effort))])
            return await asynchronous(self, messages, stop, run_manager, **{**scope.params_for(self), **kwargs})

        setattr(generate, "__chainproof__", True)  # noqa: B010 - marks the wrapper (install is idempotent)
        BaseChatModel._generate_with_cache = generate  # type: ignore[method-assign]
        BaseChatModel._agenerate_with_cache = agenerate  # type: ignore[method-assign]


@dataclass
class ToolCall:
    """A LangChain tool call inside a node: ``args`` (the tool's input), ``result`` (JSON text,
    a ``ToolMessage``'s content, or ``str`` of the output), ``error``, ``latency_s`` seconds."""

    tool: str
    args: dict[str, Any]
    result: Any = None
    error: str | None = None
    latency_s: float = 0.0


class NodeCallsHandler(BaseCallbackHandler):
    """Collects one node run's chat-model calls (:class:`ModelCall`, in the order they finished)
    and LangChain tool calls (:class:`ToolCall`) from LangChain's callbacks. ``effort``: what
    the calls are recorded with. Thread-safe (a node may batch). Failed model calls are counted
    in ``failed`` (the node's exception is recorded on its step row)."""

    raise_error = True  # a recording failure must not pass silently

    def __init__(self, effort: str):
        self.effort = effort
        self.calls: list[ModelCall] = []
        self.tools: list[ToolCall] = []
        self.failed = 0
        self._open: dict[UUID, tuple[list[dict[str, Any]], float, str]] = {}
        self._tools_open: dict[UUID, tuple[ToolCall, float]] = {}
        self._lock = threading.Lock()

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID,
                            invocation_params: dict[str, Any] | None = None, **kwargs: Any) -> None:
        params = invocation_params or {}
        name = str(params.get("model_name") or params.get("model") or (serialized or {}).get("name") or "unknown")
        with self._lock:
            self._open[run_id] = (wire_messages(messages[0]), time.perf_counter(), name)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            opened = self._open.pop(run_id, None)
        if opened is None:  # a completion LLM (on_llm_start): not recorded
            return
        wire, started, name = opened
        generation = response.generations[0][0]
        if not isinstance(generation, ChatGeneration) or not isinstance(generation.message, AIMessage):
            return
        call = record_of(generation.message, wire, effort=self.effort, latency_s=time.perf_counter() - started,
                         model=name)
        with self._lock:
            self.calls.append(call)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            if self._open.pop(run_id, None) is not None:
                self.failed += 1

    def on_tool_start(self, serialized: dict[str, Any], input_str: str, *, run_id: UUID,
                      inputs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        name = str((serialized or {}).get("name") or kwargs.get("name") or "tool")
        with self._lock:
            self._tools_open[run_id] = (ToolCall(name, dict(inputs) if inputs is not None else {"input": input_str}),
                                        time.perf_counter())

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._close_tool(run_id, output.content if isinstance(output, ToolMessage) else output, None)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close_tool(run_id, None, f"{type(error).__name__}: {error}")

    def _close_tool(self, run_id: UUID, result: Any, error: str | None) -> None:
        with self._lock:
            opened = self._tools_open.pop(run_id, None)
            if opened is None:
                return
            call, started = opened
            call.result, call.error = result, error
            call.latency_s = round(time.perf_counter() - started, 4)
            self.tools.append(call)


__all__ = ["NodeCallsHandler", "NodeScope", "ToolCall", "install", "scoped", "unscoped"]
