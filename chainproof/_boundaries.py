"""Where the engine applies the value contract (:mod:`chainproof.values`) to tool calls.

A tool receives its arguments decoded (the types that went in) and its result is encoded (and so
checked) immediately after it returns, before anything is written.

**A refused result** (a value outside the contract, e.g. a ``Fraction``) must not lose the tool's
side effects nor run the tool twice. The design:

1. ``act`` records the tool call with ``result=None`` and ``error="UnsupportedValue: <tool>: value
   at result.items[2].when has type Fraction, ..."`` (the ``tool_calls`` row names the tool, the key
   path and the type) and completes normally, with the refusal as its outcome
   (``pending["refused"]``). Its checkpoint is written, so the tool never runs again for this step.
2. ``observe`` halts the run before interpreting anything with a typed stop: a LangGraph
   ``interrupt()`` whose payload is :func:`refusal_stop` (``kind="value_refused"``). The runner
   records it as ``run_failed`` (the run is listed as failed) and raises the refusal as
   :class:`~chainproof.errors.UnsupportedValue` (exit 1), naming ``chainproof resume RUN_ID``.
3. ``chainproof resume RUN_ID`` answers the stop; ``observe`` then records the refusal as the plan
   step's finding (no model call; no data is kept) and the chain goes on. A later step that needs
   that finding's data fails with the usual "not kept" error.

A replay serves the recorded refusal (:func:`chainproof.values.replayed_refusal`) and answers the
stop wherever the recorded run was resumed past it, so it reproduces the same records.
This follows LangGraph's pattern for human-in-the-loop stops (``interrupt`` + ``Command(resume)``)
and DBOS's rule that a completed step's outcome, success or error, is recorded once and not re-run.
"""

from __future__ import annotations

from typing import Any

from chainproof.errors import UnsupportedValue
from chainproof.values import decode_value, encode_value, replayed_refusal

REFUSAL_KIND = "value_refused"
"""``kind`` of the interrupt payload that stops a run after a refused tool result."""

_PREFIX = "UnsupportedValue: "


def invoke_tool(tool: Any, name: str, args: dict[str, Any]) -> tuple[Any, str | None]:
    """Run ``tool.invoke`` with ``args`` (tagged JSON) decoded and return ``(encoded result,
    None)``, or ``(None, error text)`` when the result is outside the value contract. Exceptions
    the tool raises propagate unchanged."""
    decoded = decode_value(args, where=f"tool {name} arguments")
    try:
        return encode_value(tool.invoke(decoded), where=f"tool {name}", root="result"), None
    except UnsupportedValue as exc:
        return None, f"{_PREFIX}{exc}"


def recorded_refusal(error: str | None) -> UnsupportedValue | None:
    """The refusal to raise again in a replay when a recorded tool call's ``error`` is one."""
    if error and error.startswith(_PREFIX):
        return replayed_refusal(error[len(_PREFIX):])
    return None


def refusal_stop(run_id: str, step_no: int, plan_step: str, tool: str | None, error: str) -> dict[str, Any]:
    """The interrupt payload of the stop after a refused tool result (``step_no``: the step the
    refusal's finding will be recorded under)."""
    return {"kind": REFUSAL_KIND, "run_id": run_id, "step_no": step_no, "plan_step": plan_step, "tool": tool,
            "error": error}


def refusal_error(run_id: str, stop: dict[str, Any]) -> UnsupportedValue:
    """The error a run stopped by a refusal ends with (``RunError``, exit 1)."""
    exc = replayed_refusal(stop["error"][len(_PREFIX):] if stop["error"].startswith(_PREFIX) else stop["error"])
    exc.add_note(f"run {run_id} stopped after tool {stop.get('tool')} returned this value; the tool call is "
                 f"recorded and will not run again. Fix the tool for later runs; `chainproof resume {run_id}` "
                 "continues this one with the refusal as the step's finding")
    return exc
