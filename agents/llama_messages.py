"""Conversions between LangChain and llama-cpp-python's OpenAI-style dicts for the embedded model.

Requests: :func:`to_llama_messages` shapes messages for GGUF Jinja chat templates and
:func:`normalise_tool_choice` maps LangChain/OpenAI ``tool_choice`` spellings. Responses:
:func:`to_message` turns a chat-completion dict into an ``AIMessage`` (tool calls, ``<think>``
reasoning split off, usage). Module-level so graphs and tests can reuse them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    InvalidToolCall,
    ToolCall,
    UsageMetadata,
    convert_to_openai_messages,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call

from chainproof.agents.toolcall_parsing import arguments_dict, split_tool_calls

__all__ = ["RequestPlan", "is_openai_tool", "normalise_tool_choice", "split_think", "to_llama_messages", "llama_usage", "to_message"]

_THINK_RE = re.compile(r"^\s*<think>(.*?)</think>\s*", re.S | re.I)


class RequestPlan:
    """What the response parser needs to know about the request: the bound tool names, whether a
    call was forced by a grammar, and the emulated effort (``None`` unless a free-text call)."""

    __slots__ = ("effort", "forced", "tools")

    def __init__(self, tools: frozenset[str], forced: bool, effort: str | None) -> None:
        self.tools = tools
        self.forced = forced
        self.effort = effort


def to_message(response: dict[str, Any], plan: RequestPlan, model_name: str) -> AIMessage:
    """llama-cpp-python's chat-completion response dict → ``AIMessage``.

    Grammar-forced calls come back structured (``invalid_tool_calls`` when the arguments do not
    decode to an object); for ``tool_choice="auto"`` the calls are recovered from the text with
    :func:`chainproof.agents.toolcall_parsing.split_tool_calls`. At ``high`` effort a leading
    ``<think>`` block moves to ``additional_kwargs["reasoning_content"]``. ``usage_metadata`` has
    llama.cpp's token counts; ``response_metadata`` is ``{model_name, finish_reason}``.
    """
    choice = response["choices"][0]
    raw = choice.get("message") or {}
    text = raw.get("content") or ""
    finish_reason = choice.get("finish_reason")
    extra: dict[str, Any] = {}
    if plan.effort == "high":
        text, reasoning = split_think(text)
        if reasoning:
            extra["reasoning_content"] = reasoning

    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for tc in raw.get("tool_calls") or []:  # grammar-forced calls come back structured
        fn = tc.get("function") or {}
        name, arguments = fn.get("name") or "", fn.get("arguments")
        call_id = tc.get("id") or _new_call_id()
        args = arguments_dict(arguments)
        if args is None:
            invalid.append(
                invalid_tool_call(
                    name=name,
                    args=arguments if isinstance(arguments, str) else json.dumps(arguments),
                    id=call_id,
                    error="arguments are not a JSON object",
                )
            )
        else:
            calls.append(tool_call(name=name, args=args, id=call_id))
    if calls or invalid:
        text = ""
    elif plan.tools and not plan.forced:
        parsed, remaining = split_tool_calls(text, plan.tools)
        if parsed:
            calls = [tool_call(name=c["name"], args=c["args"], id=_new_call_id()) for c in parsed]
            text = remaining
    if calls:
        finish_reason = "tool_calls"
    return AIMessage(
        content=text,
        additional_kwargs=extra,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        usage_metadata=llama_usage(response.get("usage")),
        response_metadata={"model_name": model_name, "finish_reason": finish_reason},
    )


def to_llama_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages → OpenAI-style dicts shaped for GGUF Jinja chat templates.

    ``content`` is always a string (``None`` → ``""``; text blocks joined with newlines, other
    blocks dropped: the model is text-only), and assistant tool-call ``arguments`` are dicts
    (templates apply ``| tojson`` to them; a JSON string would be double-encoded).
    """
    out = convert_to_openai_messages(list(messages))
    for m in out:
        content = m.get("content")
        if content is None:
            m["content"] = ""
        elif isinstance(content, list):
            texts = []
            for block in content:
                if isinstance(block, str):
                    texts.append(block)
                elif isinstance(block, dict) and block.get("type") == "text":
                    texts.append(str(block.get("text", "")))
            m["content"] = "\n".join(texts)
        for tc in m.get("tool_calls") or []:
            fn = tc.get("function") or {}
            args = fn.get("arguments")
            if isinstance(args, str):
                decoded = arguments_dict(args)
                fn["arguments"] = decoded if decoded is not None else {"_raw": args}
    return out


def normalise_tool_choice(choice: Any, names: Sequence[str]) -> dict[str, Any] | str | None:
    """Map LangChain/OpenAI ``tool_choice`` spellings to ``None``, ``"none"`` or a forced dict."""
    if choice is None or choice == "auto" or choice is False:
        return None
    if choice == "none":
        return "none"
    if choice in ("any", "required") or choice is True:
        return _forced(names[0]) if len(names) == 1 else None
    name: str | None
    if isinstance(choice, str):
        name = choice
    elif isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
    else:
        raise ValueError(f"unsupported tool_choice {choice!r}")
    if name is None or name not in names:
        raise ValueError(f"tool_choice names {name!r}, which is not among the bound tools {list(names)}")
    return _forced(name)


def _forced(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def is_openai_tool(tool: Any) -> bool:
    return isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("function"), dict)


def split_think(text: str) -> tuple[str, str]:
    """``(answer, reasoning)``: a leading closed ``<think>...</think>`` block moves to reasoning."""
    match = _THINK_RE.match(text)
    if not match:
        return text, ""
    answer, reasoning = text[match.end():].strip(), match.group(1).strip()
    # The 1.5B model often puts its whole answer inside the tags: then the reasoning is the answer.
    return (answer, reasoning) if answer else (reasoning, "")


def llama_usage(usage: dict[str, Any] | None) -> UsageMetadata | None:
    """llama.cpp's ``usage`` (``prompt_tokens``, ``completion_tokens``) → ``UsageMetadata``; ``None`` if absent."""
    if not usage:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    return UsageMetadata(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)


def _new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]
