"""Conversions between LangChain and llama-cpp-python's OpenAI-style dicts for the embedded model.

Requests: :func:`to_llama_messages` shapes messages for GGUF Jinja chat templates,
:func:`normalise_tool_choice` maps LangChain/OpenAI ``tool_choice`` spellings and
:func:`required_call_format` is the JSON schema that forces one call among several tools. Responses:
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
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.json_schema import dereference_refs

from chainproof.agents.structured import SCHEMA_INSTRUCTION, keyed_instruction, keys_line
from chainproof.agents.toolcall_parsing import arguments_dict, extract_json_object, split_tool_calls

__all__ = ["REQUIRED", "RequestPlan", "constrain", "forced_call_format", "forced_call_note", "is_openai_tool",
           "normalise_tool_choice", "required_call_format", "split_think", "to_llama_messages", "llama_usage", "to_message",
           "with_keyed_schema", "with_system_note"]

REQUIRED = "required"  # OpenAI's tool_choice value: the reply must call one of the tools, the model picks which

_THINK_RE = re.compile(r"^\s*<think>(.*?)</think>\s*", re.S | re.I)


class RequestPlan:
    """What the response parser needs to know about the request: the bound tool names, whether a
    call of one named tool was forced by a grammar (``forced``), whether one call among the bound
    tools was forced by :func:`required_call_format` (``required``), and the emulated effort
    (``None`` unless a free-text call)."""

    __slots__ = ("effort", "forced", "required", "tools")

    def __init__(self, tools: frozenset[str], forced: bool, effort: str | None, required: bool = False) -> None:
        self.tools = tools
        self.forced = forced
        self.required = required
        self.effort = effort


def to_message(response: dict[str, Any], plan: RequestPlan, model_name: str) -> AIMessage:
    """llama-cpp-python's chat-completion response dict → ``AIMessage``.

    A call forced by :func:`forced_call_format` is the reply's JSON object, the arguments of the one
    bound tool (``invalid_tool_calls`` when they do not decode to an object, e.g. cut at
    ``max_tokens``); a call forced by :func:`required_call_format` is the reply's JSON object
    ``{"name", "arguments"}`` (an ``invalid_tool_calls`` entry when it is not one call of a bound
    tool, e.g. cut at ``max_tokens``); for ``tool_choice="auto"`` the calls are recovered from the text with
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
    if not calls and not invalid and plan.required:
        calls, invalid = _required_call(text, plan.tools)
    elif not calls and not invalid and plan.forced and len(plan.tools) == 1:  # forced_call_format's reply
        name = next(iter(plan.tools))
        args = arguments_dict(text)
        if args is None:
            invalid = [invalid_tool_call(name=name, args=text, id=_new_call_id(),
                                         error="arguments are not a JSON object")]
        else:
            calls = [tool_call(name=name, args=args, id=_new_call_id())]
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
    """Map LangChain/OpenAI ``tool_choice`` spellings to ``None`` (auto), ``"none"``, a forced dict
    (one named tool) or :data:`REQUIRED` (one call among several tools).

    ``"any"`` (LangChain/LangGraph), ``"required"`` (OpenAI) and ``True`` force the only tool when
    one is bound, else give :data:`REQUIRED`.

    Raises:
        ValueError: a name that is not among ``names``; a value of another type.
    """
    if choice is None or choice == "auto" or choice is False:
        return None
    if choice == "none":
        return "none"
    if choice in ("any", REQUIRED) or choice is True:
        return _forced(names[0]) if len(names) == 1 else REQUIRED
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


def constrain(tools: Sequence[Any] | None, tool_choice: Any, response_format: dict[str, Any] | None
              ) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None, bool, dict[str, Any] | None]:
    """What a request's tools, ``tool_choice`` and ``response_format`` become for llama.cpp.

    Returns ``(tools, forced, required, response_format)``: the tools as OpenAI dicts (``None``
    when there are none or ``tool_choice="none"``; only the forced one when one is named: its
    grammar allows no other call); the ``tool_choice`` dict of a forced named call or ``None``
    (the request then carries no tools: the ``response_format`` is :func:`forced_call_format`,
    and the prompt names the tool in one line, :func:`forced_call_note`); whether one call among
    several tools is forced, then by :func:`required_call_format` as the ``response_format``; and
    the ``response_format`` sent (``{"type": "text"}`` means none).

    Raises:
        ValueError: a forced name that is not bound; a ``response_format`` other than
            ``json_object``; a forced call (of one or among several tools) together with a
            ``response_format``.
    """
    openai_tools = [t if is_openai_tool(t) else convert_to_openai_tool(t) for t in tools or []] or None
    if openai_tools:
        tool_choice = normalise_tool_choice(tool_choice, [t["function"]["name"] for t in openai_tools])
        if tool_choice == "none":
            openai_tools = None
    forced = tool_choice if isinstance(tool_choice, dict) and openai_tools else None
    if forced is not None:  # the grammar allows no other call: the prompt shows only the forced tool's schema
        openai_tools = [t for t in openai_tools or [] if t["function"]["name"] == forced["function"]["name"]]
    required = bool(openai_tools) and tool_choice == REQUIRED
    if response_format is not None and response_format.get("type") == "text":
        response_format = None
    if forced is not None and response_format is not None:
        raise ValueError("a forced tool_choice constrains the reply to the tool's arguments itself; give either it "
                         "or response_format, not both")
    if forced is not None:
        response_format = forced_call_format((openai_tools or [])[0])
    if required:
        if response_format is not None:
            raise ValueError("tool_choice 'required' with several tools constrains the reply by a JSON schema "
                             "itself; give either it or response_format, not both")
        response_format = required_call_format(openai_tools or [])
    if response_format is not None and response_format.get("type") != "json_object":
        raise ValueError(f"response_format type {response_format.get('type')!r} is not supported by llama.cpp; "
                         "use {'type': 'json_object', 'schema': {...}}")
    return openai_tools, forced, required, response_format


def _parameters(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool's parameters schema with ``$ref``s inlined (they would not resolve once nested)."""
    params = dereference_refs(tool["function"].get("parameters") or {"type": "object", "properties": {}})
    return {k: v for k, v in params.items() if k != "$defs"}


def forced_call_format(tool: dict[str, Any]) -> dict[str, Any]:
    """The ``response_format`` of a grammar-forced call of ``tool`` (an OpenAI tool dict): its
    parameters schema, which llama.cpp compiles to a grammar (the grammar llama-cpp-python's own
    forced ``tool_choice`` builds), so the reply is the call's arguments as a JSON object."""
    return {"type": "json_object", "schema": _parameters(tool)}


def forced_call_note(tool: dict[str, Any]) -> str:
    """The system line that tells the model whose arguments it writes in a grammar-forced call, in
    place of the chat template's tools block. The block (Qwen2.5: "# Tools", every schema, the
    ``<tool_call>`` format) is for choosing among tools and writing the tags, neither of which a
    forced call does; and the grammar (:func:`forced_call_format`) holds the reply to the schema,
    so the line gives the description and the argument names with their own descriptions and
    choices (:func:`chainproof.agents.structured.keys_line`), not the schema. For filing-qa's
    ``calculate``: 172 prompt tokens with the block, 78 with the schema in this line, 54 now
    (measured with the GGUF's tokenizer and template)."""
    fn = tool["function"]
    about = f" ({fn['description'].strip()})" if (fn.get("description") or "").strip() else ""
    keys = keys_line(_parameters(tool))
    return f"Reply with only the JSON arguments of the function {fn['name']}{about}" + (
        f", with the keys: {keys}." if keys else ": {}.")


def with_keyed_schema(messages: list[dict[str, Any]], response_format: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``messages`` (llama dicts) with the system message that is
    :func:`chainproof.agents.structured.schema_instruction` of ``response_format``'s very schema
    (which llama.cpp enforces as a grammar) shown as
    :func:`~chainproof.agents.structured.keyed_instruction`: the keys, not the schema. The audit
    records the messages as given (so a replay, on any model, asks the same), as it does for the
    effort instruction and :func:`forced_call_note` this adapter adds; the token counts recorded
    are llama.cpp's, of what the model read."""
    schema = (response_format or {}).get("schema")
    if not isinstance(schema, dict):
        return messages
    full = SCHEMA_INSTRUCTION + json.dumps(schema, separators=(",", ":"))
    return [{**m, "content": keyed_instruction(schema)} if m.get("role") == "system" and m.get("content") == full else m
            for m in messages]


def with_system_note(messages: list[dict[str, Any]], note: str) -> list[dict[str, Any]]:
    """``messages`` (llama dicts) with ``note`` ending the first system message, or as a new first
    system message when there is none."""
    if messages and messages[0].get("role") == "system":
        return [{**messages[0], "content": f"{messages[0].get('content') or ''}\n\n{note}".lstrip()}, *messages[1:]]
    return [{"role": "system", "content": note}, *messages]


def _forced(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name}}


def required_call_format(tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``response_format`` that makes llama.cpp write exactly one call of one of ``tools``.

    ``tools`` are OpenAI tool dicts. The reply is constrained, by the JSON schema llama.cpp compiles
    to a grammar (``llama_grammar.json_schema_to_gbnf``), to the object Qwen2.5's template asks for
    inside ``<tool_call>`` tags: ``{"name": <one tool's name>, "arguments": <that tool's parameters>}``,
    an ``anyOf`` with one branch per tool (``name`` a ``const``), so the arguments always match the
    schema of the tool named. ``$ref``s in a tool's parameters are inlined (they would not resolve
    once nested). Returns ``{"type": "json_object", "schema": {"anyOf": [...]}}``.
    """
    branches = []
    for tool in tools:
        fn = tool["function"]
        params = _parameters(tool)
        branches.append({"type": "object", "properties": {"name": {"const": fn["name"]}, "arguments": params},
                         "required": ["name", "arguments"], "additionalProperties": False})
    return {"type": "json_object", "schema": {"anyOf": branches}}


def _required_call(text: str, tools: frozenset[str]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """The call a :func:`required_call_format` reply holds, or why it holds none."""
    value = extract_json_object(text) or {}
    name = value.get("name")
    args = arguments_dict(value.get("arguments"))
    if isinstance(name, str) and name in tools and args is not None:
        return [tool_call(name=name, args=args, id=_new_call_id())], []
    error = f'expected one JSON object {{"name": one of {sorted(tools)}, "arguments": {{...}}}}'
    return [], [invalid_tool_call(name=name if isinstance(name, str) else None, args=text, id=_new_call_id(),
                                  error=error)]


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
