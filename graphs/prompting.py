"""Keeping prompts small: compact JSON renderings of tool results for the model to read."""

from __future__ import annotations

import json
from typing import Any


def _shrink(value: Any, max_list: int, digits: int) -> Any:
    if isinstance(value, float):
        # keep whole units of large amounts (30274.0 stays 30274, not 30270: the model quotes it)
        return round(value, 2) if abs(value) >= 10 ** (digits - 1) else float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: _shrink(v, max_list, digits) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        items = [_shrink(v, max_list, digits) for v in value[:max_list]]
        if len(value) > max_list:
            items.append(f"... {len(value) - max_list} more")
        return items
    return value


def compact_json(data: Any, max_chars: int = 2400, max_list: int = 6, digits: int = 4) -> str:
    """``data`` as one-line JSON with floats rounded to ``digits`` significant digits (amounts of
    ``digits`` or more integer digits keep their whole units, to two decimals), lists cut
    to ``max_list`` items and ``None`` fields dropped; cut to ``max_chars`` characters (about
    ``max_chars / 4`` tokens) with a marker if still longer."""
    text = json.dumps(_shrink(data, max_list, digits), separators=(",", ":"), ensure_ascii=False, default=str)
    if len(text) > max_chars:
        text = text[: max_chars - 20] + " …[truncated]"
    return text
