"""The ``@tool`` decorator: a typed Python function as a tool a plan step can call.

It is LangChain's ``StructuredTool.from_function`` (so any LangChain ``BaseTool`` works in
``ChainSpec.tools()`` too) plus Chainproof's one extra: ``sensitive=True`` marks the tool so that
an approval policy condition ``sensitive_tool_used`` fires when a run used it (PydanticAI's
``ApprovalRequiredToolset`` plays the same role).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

from langchain_core.tools import BaseTool, StructuredTool

SENSITIVE_TAG = "sensitive"


@overload
def tool(fn: Callable[..., Any], /) -> BaseTool: ...


@overload
def tool(*, name: str | None = None, description: str | None = None,
         sensitive: bool = False) -> Callable[[Callable[..., Any]], BaseTool]: ...


def tool(fn: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None,
         sensitive: bool = False) -> BaseTool | Callable[[Callable[..., Any]], BaseTool]:
    """Turn a typed function into a tool: ``@tool`` or ``@tool(name=..., sensitive=True)``.

    The arguments' schema comes from the type hints (pydantic validates every call); the
    description from ``description`` or the docstring (required: a model may read it); the name
    from ``name`` or the function's name. The function returns a JSON-ready ``dict`` (or any value
    of Chainproof's value contract). Raises ``ValueError`` when there is no description.
    """

    def make(func: Callable[..., Any]) -> BaseTool:
        text = description or (func.__doc__ or "").strip()
        if not text:
            raise ValueError(f"tool {name or func.__name__!r}: give a docstring or description= (the model reads it)")
        return StructuredTool.from_function(func, name=name or func.__name__, description=text,
                                            tags=[SENSITIVE_TAG] if sensitive else None)

    return make(fn) if fn is not None else make
