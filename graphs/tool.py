"""The ``@tool`` decorator: a typed Python function as a tool a plan step can call.

It is LangChain's ``StructuredTool.from_function`` (so any LangChain ``BaseTool`` works in
``ChainSpec.tools()`` too) plus Chainproof's two tags (LangChain tool ``tags``, so a ``BaseTool``
can carry them too):

* ``sensitive=True`` (tag ``"sensitive"``): an approval policy condition ``sensitive_tool_used``
  fires at the final decision when a run used the tool.
* ``requires_approval=True`` (tag ``"requires_approval"``): every call an agent step's model asks
  for pauses *before the tool runs*, until a person approves, rejects (the model is shown the
  reason) or edits the arguments (checked against the tool's schema again); see
  ``graphs/_engine/nodes/tool_approval.py``. As LangChain's ``HumanInTheLoopMiddleware``
  (``interrupt_on={tool: True}``) and PydanticAI's ``ApprovalRequiredToolset``. A ``kind="tool"``
  plan step's call is the graph author's, fixed in the plan, and does not pause.
* ``side_effects=True`` (tag ``"side_effects"``): the tool acts on the world (sends, books,
  writes). Each call is journaled before it runs and its result after
  (:mod:`chainproof.checkpoints.journal`), so when a step executes again after a crash the
  recorded result is returned instead of calling the tool a second time (DBOS's rule for a
  finished step); a call that started and never recorded its outcome is not run again but
  refused with ``ToolOutcomeUnknown`` for a person to check. Tools without it are at-least-once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, overload

from langchain_core.tools import BaseTool, StructuredTool

from chainproof.checkpoints.journal import SIDE_EFFECTS_TAG

SENSITIVE_TAG = "sensitive"
APPROVAL_TAG = "requires_approval"


@overload
def tool(fn: Callable[..., Any], /) -> BaseTool: ...


@overload
def tool(*, name: str | None = None, description: str | None = None,
         sensitive: bool = False, requires_approval: bool = False,
         side_effects: bool = False, return_direct: bool = False) -> Callable[[Callable[..., Any]], BaseTool]: ...


def tool(fn: Callable[..., Any] | None = None, /, *, name: str | None = None, description: str | None = None,
         sensitive: bool = False, requires_approval: bool = False,
         side_effects: bool = False, return_direct: bool = False
         ) -> BaseTool | Callable[[Callable[..., Any]], BaseTool]:
    """Turn a typed function into a tool: ``@tool`` or ``@tool(name=..., sensitive=True,
    requires_approval=True, side_effects=True)`` (the tags: see the module docstring).
    ``return_direct`` is LangChain's flag: in an agent step, a call of the tool that runs ends the
    step with its result as the answer (no model call reads it; ``graphs/agent.py``).

    The arguments' schema comes from the type hints (pydantic validates every call); the
    description from ``description`` or the docstring, its whitespace folded to one line (required:
    a model reads it, and every tool's schema is prompt tokens in every call that binds it); the name
    from ``name`` or the function's name. The function returns a JSON-ready ``dict`` (or any value
    of Chainproof's value contract). Raises ``ValueError`` when there is no description.
    """

    def make(func: Callable[..., Any]) -> BaseTool:
        text = description or " ".join(inspect.cleandoc(func.__doc__ or "").split())  # one line: prompt tokens
        if not text:
            raise ValueError(f"tool {name or func.__name__!r}: give a docstring or description= (the model reads it)")
        tags = [t for t, on in ((SENSITIVE_TAG, sensitive), (APPROVAL_TAG, requires_approval),
                                (SIDE_EFFECTS_TAG, side_effects)) if on]
        return StructuredTool.from_function(func, name=name or func.__name__, description=text, tags=tags or None,
                                            return_direct=return_direct)

    return make(fn) if fn is not None else make
