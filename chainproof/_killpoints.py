"""Test-only crash points: ``CHAINPROOF_TEST_KILL_AT=NAME:N`` makes the process SIGKILL itself the
N-th time it reaches the point ``NAME`` (1-based), exactly as ``kill -9`` from outside would.

The kill test (``tests/test_crash_kills.py``) uses it to stop a run at exact places: around an
audit append, a checkpoint write, a side-effect tool call, and between a pause checkpoint and its
``run_paused`` event. Inert in production: without the variable :func:`reach` is one environment
lookup and returns. The points (:data:`POINTS`) are listed so a typo in a test fails loudly."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

ENV = "CHAINPROOF_TEST_KILL_AT"
POINTS = frozenset({
    "audit.before",        # an audit append is about to commit
    "audit.after",         # an audit append committed
    "checkpoint.before",   # a checkpoint (LangGraph put) is about to be written
    "checkpoint.after",    # a checkpoint was written
    "tool.before",         # a side-effect tool call is journaled as started and about to run
    "tool.after",          # a side-effect tool ran; its result is not journaled yet
    "pause.window",        # the pause checkpoint is written; its run_paused event is not
    "model.after",         # a model answered; nothing of the step is recorded yet
})
_counts: dict[str, int] = {}
_lock = threading.Lock()


def reach(point: str) -> None:
    """Count one pass through ``point``; SIGKILL this process when ``CHAINPROOF_TEST_KILL_AT``
    names it and the count matches. Raises ``ValueError`` for a point name this module does not
    list (in the variable or at the call)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name not in POINTS or point not in POINTS:
        raise ValueError(f"{ENV}: unknown kill point {name if name not in POINTS else point!r}; "
                         f"expected one of {sorted(POINTS)}")
    if name != point:
        return
    with _lock:
        _counts[point] = _counts.get(point, 0) + 1
        hit = _counts[point] == int(nth or 1)
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)


def watch_saver(saver: Any) -> Any:
    """With ``CHAINPROOF_TEST_KILL_AT`` set, wrap ``saver.put`` (a LangGraph checkpointer's write
    of a checkpoint) with the ``checkpoint.before`` / ``checkpoint.after`` points; otherwise
    return ``saver`` untouched."""
    if not os.environ.get(ENV):
        return saver
    put = saver.put

    def watched(*args: Any, **kwargs: Any) -> Any:
        reach("checkpoint.before")
        saved = put(*args, **kwargs)
        reach("checkpoint.after")
        return saved

    saver.put = watched
    return saver


__all__ = ["ENV", "POINTS", "reach", "watch_saver"]
