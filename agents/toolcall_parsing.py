"""Lenient recovery of tool calls and JSON objects from free model text.

Small local models rarely follow their chat template's tool-call syntax exactly. Qwen2.5's
template asks for ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, but the 0.5B and
1.5B models answer with a fenced ```` ```json {...} ``` ```` block instead (measured
2026-11-29), so llama.cpp's own parser finds no call. This module accepts, in order of precedence
(the first kind that yields a call wins):

1. ``<tool_call> ... </tool_call>`` blocks (the closing tag may be missing at the end);
2. fenced blocks, ```` ```json ```` or a bare ```` ``` ````;
3. bare JSON objects anywhere in the text.

A call is a JSON object (or a JSON list of them, or ``{"tool_calls": [...]}``) shaped as
``{"name": str, "arguments" | "parameters" | "args": dict | JSON string}`` or OpenAI's
``{"type": "function", "function": {"name": ..., "arguments": ...}}``. Missing arguments mean
``{}``. Only names in ``allowed`` are returned, so a JSON answer that merely has a ``"name"``
key is not mistaken for a call. Also tolerated: trailing commas and Python-literal dicts
(single quotes, ``True``/``None``).

Nothing here raises on bad input: malformed candidates are skipped.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, TypedDict

__all__ = ["ParsedToolCall", "extract_json_object", "parse_tool_calls", "split_tool_calls"]

_ARG_KEYS = ("arguments", "parameters", "args")
_TAG_RE = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.S | re.I)
# A fence: ``` + optional language tag on the opening line, body, closing ``` (or end of text).
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[ \t]*\n?(.*?)(?:```|\Z)", re.S)
_TRAILING_COMMA_RE = re.compile(r",(\s*[}\]])")


class ParsedToolCall(TypedDict):
    """One recovered call: the tool name and its arguments (a dict, never a string)."""

    name: str
    args: dict[str, Any]


def parse_tool_calls(text: str | None, allowed: Iterable[str] | None = None) -> list[ParsedToolCall]:
    """Tool calls found in ``text`` (see the module docstring for accepted shapes).

    Args:
        text: model output; ``None`` or ``""`` gives ``[]``.
        allowed: tool names that may be called; ``None`` accepts any name.
    Returns:
        Calls in order of appearance; ``[]`` when none is found.
    """
    return split_tool_calls(text, allowed)[0]


def split_tool_calls(
    text: str | None, allowed: Iterable[str] | None = None
) -> tuple[list[ParsedToolCall], str]:
    """Like :func:`parse_tool_calls`, also returning the text with the call markup removed.

    Returns:
        ``(calls, remaining_text)``; ``remaining_text`` is stripped, and equals the stripped
        input when no call is found.
    """
    if not text:
        return [], (text or "").strip()
    names = None if allowed is None else set(allowed)

    # 1. <tool_call> blocks, 2. fences: each block may hold one or more call objects.
    for pattern, group in ((_TAG_RE, 1), (_FENCE_RE, 2)):
        calls: list[ParsedToolCall] = []
        spans: list[tuple[int, int]] = []
        for match in pattern.finditer(text):
            found = [c for _, _, value in _json_values(match.group(group)) for c in _calls_in(value, names)]
            if found:
                calls.extend(found)
                spans.append(match.span())
        if calls:
            return calls, _cut(text, spans)

    # 3. bare JSON anywhere.
    calls, spans = [], []
    for start, end, value in _json_values(text):
        found = _calls_in(value, names)
        if found:
            calls.extend(found)
            spans.append((start, end))
    return calls, _cut(text, spans)


def extract_json_object(text: str | None) -> dict[str, Any] | None:
    """The first JSON object in ``text``, for structured outputs.

    Skips leading prose and code fences; tolerates trailing commas and Python-literal dicts.
    A balanced ``{...}`` that still does not parse is skipped as a whole (its inner objects are
    not returned); an unbalanced one (e.g. output cut at ``max_tokens``) yields ``None`` unless
    a later object parses.

    Returns:
        The object as a dict, or ``None`` when there is none.
    """
    for _, _, value in _json_values(text or "", objects_only=True):
        return value
    return None


# --------------------------------------------------------------------------------------------
# internals


def _calls_in(value: Any, names: set[str] | None) -> list[ParsedToolCall]:
    """Calls represented by one decoded JSON value (object, list of objects, or wrapper)."""
    if isinstance(value, list):
        return [c for item in value for c in _calls_in(item, names)]
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("tool_calls"), list) and "name" not in value:
        return _calls_in(value["tool_calls"], names)
    fn = value.get("function")
    if isinstance(fn, dict) and "name" in fn:
        value = fn  # OpenAI shape {"type": "function", "function": {...}}
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        return []
    name = name.strip()
    if names is not None and name not in names:
        return []
    raw: Any = {}
    for key in _ARG_KEYS:
        if key in value:
            raw = value[key]
            break
    args = arguments_dict(raw)
    if args is None:
        return []
    return [ParsedToolCall(name=name, args=args)]


def arguments_dict(raw: Any) -> dict[str, Any] | None:
    """Tool-call arguments as a dict: a dict as is, ``None``/blank as ``{}``, a JSON string decoded
    leniently (then the first JSON object found in it); ``None`` when nothing fits."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        if not raw.strip():
            return {}
        decoded = _loads(raw.strip())
        return decoded if isinstance(decoded, dict) else extract_json_object(raw)
    return None


_MISSING = object()


def _loads(candidate: str) -> Any:
    """``json.loads`` with three repairs (raw control characters such as newlines inside strings,
    trailing commas, Python literals); ``_MISSING`` on failure."""
    for strict in (True, False):
        try:
            return json.loads(candidate, strict=strict)
        except ValueError:
            pass
    repaired = _TRAILING_COMMA_RE.sub(r"\1", candidate)
    if repaired != candidate:
        try:
            return json.loads(repaired)
        except ValueError:
            pass
    try:
        value = ast.literal_eval(repaired)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _MISSING
    return value if isinstance(value, (dict, list)) else _MISSING


def _json_values(text: str, *, objects_only: bool = False) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(start, end, value)`` for each top-level JSON object (and list) in ``text``.

    Scans for ``{`` (and ``[`` unless ``objects_only``), finds the matching close bracket while
    respecting quoted strings, and decodes the span. Parsed or balanced-but-invalid spans are
    skipped as a whole; an unbalanced opener is skipped by one character.
    """
    openers = "{" if objects_only else "{["
    i, n = 0, len(text)
    while i < n:
        if text[i] not in openers:
            i += 1
            continue
        end = _matching_close(text, i)
        if end is None:
            i += 1
            continue
        value = _loads(text[i:end])
        if value is not _MISSING and (not objects_only or isinstance(value, dict)):
            yield i, end, value
        i = end if value is not _MISSING or text[i] == "{" else i + 1


def _matching_close(text: str, start: int) -> int | None:
    """Index just past the bracket closing ``text[start]``, or ``None`` if unbalanced."""
    stack: list[str] = []
    pairs = {"{": "}", "[": "]"}
    quote: str | None = None
    escaped = False
    for j in range(start, len(text)):
        ch = text[j]
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
            continue
        if ch == '"' or (ch == "'" and _is_quote_start(text, j)):
            quote = ch
        elif ch in pairs:
            stack.append(pairs[ch])
        elif ch in "}]":
            if not stack or ch != stack.pop():
                return None
            if not stack:
                return j + 1
    return None


def _is_quote_start(text: str, j: int) -> bool:
    """A single quote opens a string only after ``{ [ , :`` (so "don't" in prose is ignored)."""
    k = j - 1
    while k >= 0 and text[k].isspace():
        k -= 1
    return k >= 0 and text[k] in "{[,:"


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text.strip()
    pieces, last = [], 0
    for start, end in sorted(spans):
        pieces.append(text[last:start])
        last = max(last, end)
    pieces.append(text[last:])
    return re.sub(r"\n{3,}", "\n\n", "".join(pieces)).strip()
