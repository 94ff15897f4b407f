"""The embedded chat model: a LangChain ``BaseChatModel`` over an in-process ``llama_cpp.Llama``.

No API key, no network, no server process. The default weights are Qwen2.5-Coder-1.5B-Instruct
Q4_K_M (see :mod:`chainproof.agents.local_weights`); any GGUF with a chat template works.

Why an adapter of our own (measured 2026-11-29): ``llama_cpp.server`` + ``ChatOpenAI`` and
``langchain_community.ChatLlamaCpp`` both fail to finish a LangGraph tool loop with this model (no
``tool_calls`` for ``tool_choice="auto"``, HTTP 500 on ``content: null``). Here:

* tools are rendered by the GGUF's own chat template (Qwen2.5 has a ``# Tools`` section);
* ``tool_choice`` naming one tool (or ``"any"``/``"required"`` with a single tool, which is how
  ``with_structured_output`` binds) is forced by a grammar from the tool's parameters schema (as
  llama-cpp-python's own forced ``tool_choice``): the arguments always parse and match it. The
  prompt names the tool in one system line (its description and argument names) instead of the
  template's tools block, which is for choosing a tool and writing ``<tool_call>`` tags (172 prompt
  tokens for filing-qa's calculator, 54 as one line);
* ``"any"``/``"required"`` with several tools (OpenAI's ``tool_choice="required"``: one call, the
  model picks the tool) constrains the reply by a JSON schema, one ``anyOf`` branch
  ``{"name": const, "arguments": that tool's parameters}`` per tool
  (:func:`chainproof.agents.llama_messages.required_call_format`), and returns it as a tool call;
* ``tool_choice="auto"`` or ``None`` generates freely and recovers calls from the text with
  :mod:`chainproof.agents.toolcall_parsing` (Qwen writes fenced JSON instead of ``<tool_call>`` tags);
* ``response_format={"type": "json_object", "schema": {...}}`` (via ``.bind``) becomes a
  llama.cpp grammar, so the reply is valid JSON for the schema.

Speed of the 1.5B model, 2 cores, ``n_ctx=4096``, greedy, 297-token prompt + 150 output tokens,
measured 2026-11-29 with llama-cpp-python 0.3.36: on an AVX-512 EPYC, load 0.9-2.7 s, prompt
86-92 tok/s, generation 27-31 tok/s, 8.3-9.0 s wall, RSS 1.90 GB after load and 1.96 GB peak; on an
AVX2-only EPYC prompt ~50 tok/s and generation ~17 tok/s.

Loading and thread safety live in :mod:`chainproof.agents.llama_runtime` (one shared ``Llama``
per model file, calls serialised); the wire conversions in :mod:`chainproof.agents.llama_messages`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, field_validator

from chainproof.agents.calls import with_effort_instruction
from chainproof.agents.config import EFFORT_INSTRUCTIONS, HIGH_EFFORT_EXTRA_TOKENS, Effort
from chainproof.agents.llama_messages import (
    RequestPlan,
    constrain,
    forced_call_note,
    llama_usage,
    normalise_tool_choice,
    split_think,
    to_llama_messages,
    to_message,
    with_keyed_schema,
    with_system_note,
)
from chainproof.agents.llama_runtime import call_lock, load_llama, usable_cpus
from chainproof.agents.local_weights import local_model_path

__all__ = ["LocalLlamaChat"]

log = logging.getLogger(__name__)

# Sampling knobs forwarded to ``Llama.create_chat_completion`` when given as call/bind kwargs.
_PASSTHROUGH = ("top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty", "logit_bias")
# kwargs LangChain itself adds, consumed or ignored here.
_IGNORED = ("ls_structured_output_format", "stream_usage")


# --------------------------------------------------------------------------------------------
# the chat model


class LocalLlamaChat(BaseChatModel):
    """LangChain chat model running a GGUF model in-process with llama-cpp-python.

    Fields (defaults and their source):
        model_path: GGUF file. ``None`` → the bundled Qwen2.5-Coder-1.5B, assembled on first use by
            :func:`chainproof.agents.local_weights.local_model_path` into ``$CHAINPROOF_HOME/models``.
        model_name: label reported as ``response_metadata["model_name"]``; default: the file name.
        n_ctx: context window in tokens (prompt + output); 4096 (Qwen2.5 trains on 32k, 4096 keeps
            the KV cache small: ~1.9 GB RSS in total measured for this model).
        n_threads: CPU threads for generation and prompt processing; default: the CPUs this
            process may run on (``os.sched_getaffinity``, else ``os.cpu_count()``; 1 degrades more gracefully when busy).
        n_batch: prompt-processing batch, tokens; 512 (llama-cpp-python's default).
        temperature: 0.0 = greedy (reproducible; but see ``cache_prompt``).
        max_tokens: output cap per call, tokens; 512.
        seed: sampling seed (only matters when ``temperature > 0``); ``None`` = llama.cpp default.
        reasoning_effort: ``"low" | "medium" | "high" | None``, emulated (see below).
        high_effort_extra_tokens: output tokens added to ``max_tokens`` at ``"high"``; 256.
        cache_prompt: reuse the longest matching prefix of the previous prompt from llama.cpp's
            KV cache (llama-server's ``cache_prompt``, default true there too). Agent loops resend
            a growing history, so this skips most prompt processing. Caveat: llama.cpp's float
            results depend on how tokens were batched, so a greedy reply can differ at near-ties
            depending on which prompt ran before. ``False`` resets the context before every call:
            the same prompt always gives the same reply, at the cost of re-reading it.
        forced_call_prompt: how a call forced by ``tool_choice`` names its tool: ``"line"`` (one
            system line with the tool's description and argument names, the reply constrained by
            a grammar from its parameters schema) or ``"template"`` (the chat template's tools block with the
            forced tool, llama-cpp-python's own forced ``tool_choice``). Default ``"line"``: 118
            prompt tokens fewer for filing-qa's calculator; ``bench/filing_qa.py`` compares both.
        verbose: llama.cpp's own logging to stderr; off.
        llama: an already-built ``Llama`` (or any object with ``create_chat_completion(**kw)``
            returning llama-cpp-python's response dicts); tests inject fakes here. When set,
            ``model_path``/``n_ctx``/``n_threads`` are not used for loading.

    A ``response_format`` schema's instruction is shown as its keys (``with_keyed_schema``). ``reasoning_effort``
    emulation (Qwen2.5-Coder has no reasoning mode; every effort level is in :mod:`chainproof.agents.config`),
    only on free-text calls (no tools, no ``response_format``), is added to the first system message:

    * ``low``: "answer directly", no reasoning;
    * ``medium``: answer concisely, reasoning at most a few sentences;
    * ``high``: "think step by step inside <think>...</think>, then answer", and
      ``max_tokens + high_effort_extra_tokens``. A closed ``<think>`` block is moved out of
      ``content`` into ``additional_kwargs["reasoning_content"]``; usage has no separate
      reasoning-token count (the reasoning is ordinary output tokens). Measured with the 1.5B
      model: it usually ignores the tags and writes numbered steps before the answer, so
      ``content`` then holds reasoning and answer together.
    * ``None``: no addendum.

    Per-call overrides (``.bind(...)`` or ``invoke(..., **kw)``): ``temperature``,
    ``max_tokens``, ``seed``, ``reasoning_effort``, ``response_format``, ``tools``,
    ``tool_choice``, ``stop`` and the sampling knobs ``top_p, top_k, min_p, repeat_penalty,
    presence_penalty, frequency_penalty, logit_bias``.

    Output: ``AIMessage`` with ``tool_calls`` (ids ``call_<12 hex>`` unless llama.cpp gave one),
    ``invalid_tool_calls`` for forced calls whose arguments do not decode,
    ``usage_metadata = {input_tokens, output_tokens, total_tokens}`` (llama.cpp's counts: the
    templated prompt's tokens, generated tokens excluding the end-of-turn token) and
    ``response_metadata = {model_name, finish_reason}`` where ``finish_reason`` is
    ``"stop" | "length" | "tool_calls"``.

    Raises (at first call, when loading):
        LocalModelUnavailable: llama-cpp-python missing, or weights missing/corrupt.
        ValueError: a forced ``tool_choice`` naming a tool that is not bound; a prompt longer
            than ``n_ctx`` (llama.cpp's message).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str | None = None
    model_name: str | None = None
    n_ctx: int = Field(default=4096, gt=0)
    n_threads: int | None = Field(default_factory=usable_cpus)
    n_batch: int = Field(default=512, gt=0)
    temperature: float = Field(default=0.0, ge=0.0)
    max_tokens: int = Field(default=512, gt=0)
    seed: int | None = None
    reasoning_effort: Effort | None = None
    high_effort_extra_tokens: int = Field(default=HIGH_EFFORT_EXTRA_TOKENS, ge=0)
    # llama.cpp's own default (common/sampling.h, llama-server): damps the 1.5B model's loops.
    repeat_penalty: float = Field(default=1.1, ge=0.0)
    cache_prompt: bool = True
    forced_call_prompt: Literal["line", "template"] = "line"
    verbose: bool = False
    llama: Any = Field(default=None, exclude=True, repr=False)

    @field_validator("model_path", mode="before")
    @classmethod
    def _path_to_str(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    # ---- LangChain plumbing -----------------------------------------------------------------

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self._label(),
            "n_ctx": self.n_ctx,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "reasoning_effort": self.reasoning_effort,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "llama-cpp"
        params["ls_model_name"] = self._label()
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (converted with ``convert_to_openai_tool``).

        Args:
            tools: LangChain tools, functions, pydantic/TypedDict classes or OpenAI tool dicts.
            tool_choice: ``None``/``"auto"`` → the model may call tools (parsed from text);
                ``"none"`` → tools are not shown to the model; a tool name, ``{"type":
                "function", "function": {"name": ...}}`` or ``{"name": ...}`` → that tool is
                called, arguments forced by a grammar; ``"any"``/``"required"``/``True`` →
                one call is forced: of the tool when exactly one is bound, else of the tool the
                model picks among them (a JSON-schema grammar over names and arguments).
        Raises:
            ValueError: a forced name that is not among ``tools``; at call time, a forced call
                among several tools together with a ``response_format`` (both constrain the reply).
        """
        formatted = [convert_to_openai_tool(t) for t in tools]
        names = [t["function"]["name"] for t in formatted]
        choice = normalise_tool_choice(tool_choice, names)
        return self.bind(tools=formatted, tool_choice=choice, **kwargs)

    # ---- generation -------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request, plan = self._build_request(messages, stop, kwargs)
        llama = self._get_llama()
        with call_lock(llama):
            self._maybe_reset(llama)
            response = llama.create_chat_completion(**request)
        message = to_message(response, plan, self._label())
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"model_name": self._label(), "token_usage": dict(message.usage_metadata or {})},
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Stream text token by token; usage and metadata ride on the last chunk.

        Calls with tools or ``response_format`` need the complete text (to parse the calls or
        because the grammar constrains it), so they generate in one go and yield one chunk
        (with ``tool_call_chunks``); totals equal :meth:`invoke`'s by construction.

        Plain text streams. llama-cpp-python's stream carries no usage, so it is rebuilt
        exactly: a ``max_tokens=1`` pre-call reports the prompt's token count and leaves the
        prompt in the KV cache (the streamed call reuses it, so the prompt is evaluated once);
        after the stream, ``Llama.n_tokens`` (tokens now in the context) minus the prompt gives
        the generated tokens (+1 when stopped by ``length``: the last token is sampled but not
        fed back). Known limit: a caller-supplied ``stop`` string can make this one token short.
        """
        request, plan = self._build_request(messages, stop, kwargs)
        if plan.tools or request.get("response_format") is not None:
            result = self._generate(messages, stop, run_manager, **kwargs)
            msg = result.generations[0].message
            assert isinstance(msg, AIMessage)
            whole = AIMessageChunk(
                content=msg.content,
                additional_kwargs=msg.additional_kwargs,
                response_metadata=msg.response_metadata,
                usage_metadata=msg.usage_metadata,
                tool_call_chunks=[
                    tool_call_chunk(name=tc["name"], args=json.dumps(tc["args"]), id=tc["id"], index=i)
                    for i, tc in enumerate(msg.tool_calls)
                ],
                chunk_position="last",
            )
            if run_manager and isinstance(msg.content, str) and msg.content:
                run_manager.on_llm_new_token(msg.content, chunk=ChatGenerationChunk(message=whole))
            yield ChatGenerationChunk(message=whole)
            return

        llama = self._get_llama()
        with call_lock(llama):
            self._maybe_reset(llama)
            prompt_tokens: int | None = None
            if hasattr(llama, "n_tokens"):
                probe = llama.create_chat_completion(**{**request, "max_tokens": 1, "stream": False})
                prompt_tokens = int((probe.get("usage") or {}).get("prompt_tokens", 0))
            finish_reason: str | None = None
            reported: dict[str, Any] | None = None
            text_parts: list[str] = []
            for raw in llama.create_chat_completion(**{**request, "stream": True}):
                if raw.get("usage"):
                    reported = raw["usage"]
                choice = (raw.get("choices") or [{}])[0]
                finish_reason = choice.get("finish_reason") or finish_reason
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    text_parts.append(piece)
                    if plan.effort != "high":  # high: <think> must be split off at the end
                        chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                        if run_manager:
                            run_manager.on_llm_new_token(piece, chunk=chunk)
                        yield chunk
            if reported is None and prompt_tokens is not None:
                generated = int(llama.n_tokens) - prompt_tokens + (1 if finish_reason == "length" else 0)
                reported = {"prompt_tokens": prompt_tokens, "completion_tokens": max(generated, 0)}
        text = "".join(text_parts)
        extra: dict[str, Any] = {}
        content = ""
        if plan.effort == "high":
            content, reasoning = split_think(text)
            if reasoning:
                extra["reasoning_content"] = reasoning
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=content,
                additional_kwargs=extra,
                usage_metadata=llama_usage(reported),
                response_metadata={"model_name": self._label(), "finish_reason": finish_reason},
                chunk_position="last",
            )
        )

    # ---- helpers ----------------------------------------------------------------------------

    def _label(self) -> str:
        if self.model_name:
            return self.model_name
        if self.model_path:
            return Path(self.model_path).name
        if self.llama is not None and getattr(self.llama, "model_path", None):
            return Path(str(self.llama.model_path)).name
        return "local-llama"

    def _maybe_reset(self, llama: Any) -> None:
        if not self.cache_prompt and hasattr(llama, "reset"):
            llama.reset()

    def _get_llama(self) -> Any:
        if self.llama is not None:
            return self.llama
        path = self.model_path or str(local_model_path())
        kwargs: dict[str, Any] = {"n_batch": self.n_batch, "verbose": self.verbose}
        if self.n_threads:
            kwargs["n_threads"] = kwargs["n_threads_batch"] = self.n_threads
        return load_llama(path, self.n_ctx, **kwargs)

    def _build_request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], RequestPlan]:
        kw = dict(kwargs)
        for key in _IGNORED:
            kw.pop(key, None)
        tools = kw.pop("tools", None) or None
        tool_choice = kw.pop("tool_choice", None)
        asked = response_format = kw.pop("response_format", None)
        effort = kw.pop("reasoning_effort", self.reasoning_effort)
        max_tokens = int(kw.pop("max_tokens", None) or self.max_tokens)
        temperature = kw.pop("temperature", self.temperature)
        seed = kw.pop("seed", self.seed)
        stop = kw.pop("stop", None) or stop
        passthrough = {"repeat_penalty": self.repeat_penalty, **{k: kw.pop(k) for k in _PASSTHROUGH if k in kw}}
        if kw:
            log.warning("LocalLlamaChat: ignoring unsupported arguments %s", sorted(kw))

        tools, forced, required, response_format = constrain(tools, tool_choice, response_format)
        if effort is not None and effort not in EFFORT_INSTRUCTIONS:
            raise ValueError(f"reasoning_effort must be low, medium, high or None, got {effort!r}")
        free_text = not tools and response_format is None
        effort = effort if free_text else None
        if effort == "high":
            max_tokens += self.high_effort_extra_tokens

        if effort is not None:
            messages = with_effort_instruction(messages, EFFORT_INSTRUCTIONS[effort])
        llama_messages = with_keyed_schema(to_llama_messages(messages), asked)  # the grammar holds it to the schema
        by_template = forced is not None and self.forced_call_prompt == "template"
        if forced is not None and tools and not by_template:  # one line names the tool, not the tools block
            llama_messages = with_system_note(llama_messages, forced_call_note(tools[0]))

        request: dict[str, Any] = {
            "messages": llama_messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
            **passthrough,
        }
        if seed is not None:
            request["seed"] = seed
        if stop:
            request["stop"] = list(stop)
        if tools and (forced is None or by_template):
            request["tools"] = tools
        if by_template:  # llama-cpp-python builds the same grammar from the tool's parameters
            request["tool_choice"], response_format = forced, None
        if response_format is not None:
            request["response_format"] = response_format
        bound = frozenset(t["function"]["name"] for t in tools) if tools else frozenset()
        return request, RequestPlan(tools=bound, forced=forced is not None, effort=effort, required=required)
