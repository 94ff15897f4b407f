"""Live progress of a run as Server-Sent Events, read from the audit store.

The events are those of :mod:`chainproof._live` (the same the terminal's ``chainproof watch``
shows): ``event:`` is the event's type (started, step_started, step_finished, review, paused,
resumed, completed, failed, budget_alert), ``data:`` its JSON fields, and ``id:`` the ``seq`` of
the audit record it comes from, so a client that reconnects with ``Last-Event-ID: N`` (browsers'
``EventSource`` send it by themselves) gets exactly the events of records after ``seq`` N — from
the store, for as long as the record exists — and nothing twice. Streams do not expire: they stay
open (FastAPI sends a keep-alive comment every 15 s) until the run completes, which is the last
event sent; a failed run may be resumed, so its stream stays open too. Unlike LangGraph
Platform's streams (which end after a fixed time and drop what was sent while a client was away),
nothing is held in memory per client beyond the last seq sent and the run's approval requests.

A stream ends when its reader may no longer see the run: every :data:`AUTH_RECHECK_S` seconds the
request's credentials are checked again (``allowed``), so a revoked token or session, a disabled
account or a role taken away stops the stream within that time (a browser's ``EventSource`` then
reconnects and gets 401 or 404).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from fastapi.sse import ServerSentEvent

from chainproof._live import LIVE_TABLES, LiveReader, to_event
from chainproof.checkpoints.audit_read import AuditReader

TABLES = LIVE_TABLES
POLL_S = 0.1
"""How often the store is asked for new records, in seconds (one indexed query per table)."""
AUTH_RECHECK_S = 2.0
"""How often a stream's credentials are checked again, in seconds (one query; a revoked token
stops the stream within this time)."""


async def stream(reader: AuditReader, run_id: str, after_seq: int, is_connected: Any,
                 allowed: Callable[[], bool] = lambda: True) -> AsyncIterator[ServerSentEvent]:
    """The run's events after ``after_seq`` (see the module docstring), until it completes, the
    client goes away (``is_connected``: an async callable returning False then) or ``allowed``
    (called in a worker thread every :data:`AUTH_RECHECK_S` s) returns False."""
    live = await anyio.to_thread.run_sync(LiveReader, reader, run_id, after_seq)
    checked = time.monotonic()
    while True:
        if time.monotonic() - checked >= AUTH_RECHECK_S:
            if not await anyio.to_thread.run_sync(allowed):
                return
            checked = time.monotonic()
        found = await anyio.to_thread.run_sync(live.batch)
        for event in found:
            yield ServerSentEvent(event=event.type, id=str(event.seq), data=event.data())
        if live.completed or not await is_connected():
            return
        if not found:
            await anyio.sleep(POLL_S)


__all__ = ["AUTH_RECHECK_S", "POLL_S", "TABLES", "stream", "to_event"]
