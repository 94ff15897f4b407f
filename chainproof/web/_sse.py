"""Live progress of a run as Server-Sent Events, read from the audit store.

Each event's ``id`` is the ``seq`` of the audit record it comes from, so a client that reconnects
with ``Last-Event-ID: N`` (browsers' ``EventSource`` send it by themselves) gets exactly the events
of records after ``seq`` N — from the store, for as long as the record exists — and nothing
twice. Streams do not expire: they stay open (FastAPI sends a keep-alive comment every 15 s) until
the run completes, which is the last event sent; a failed run may be resumed, so its stream stays
open too. Unlike LangGraph Platform's streams (which end after a fixed time and drop what was
sent while a client was away), nothing is held in memory per client beyond the last seq sent.

Event types (``event:``) and their JSON ``data``:

* ``started``: graph, inputs, department, started_by;
* ``step_finished``: step_no, node, kind, title, status, effort, model, tokens {input,
  cached_input, output, reasoning}, cost_usd (USD; null = unknown), seconds;
* ``review``: step_no, decision (continue / replan / terminate), reason;
* ``paused``: why (approval, step_budget, cost_budget) and ``requests``: each open approval
  request (request_id, question, subject, reasons, proposed, proposed_hash);
* ``resumed``: the detail recorded (who decided which request, or the new budget);
* ``completed`` (report_path) and ``failed`` (error);
* ``budget_alert``: the alert recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi.sse import ServerSentEvent

from chainproof.checkpoints.audit_read import AuditReader

TABLES = ("steps", "reviews", "events", "approvals")
POLL_S = 0.1
"""How often the store is asked for new records, in seconds (one indexed query per table)."""
_LIFECYCLE = {"run_started": "started", "run_resumed": "resumed", "run_completed": "completed",
              "run_failed": "failed", "budget_alert": "budget_alert"}


def _paused(detail: dict[str, Any], requests: dict[str, Any]) -> dict[str, Any]:
    if "budget_stop" in detail:
        return {"why": "step_budget", "detail": detail["budget_stop"], "requests": []}
    if "cost_budget_stop" in detail:
        return {"why": "cost_budget", "detail": detail["cost_budget_stop"], "requests": []}
    shown = []
    for bound in detail.get("requests", []):
        row = requests.get(bound.get("request_id"))
        payload = row.payload if row is not None else {}
        shown.append({"request_id": bound.get("request_id"), "question": payload.get("question"),
                      "subject": payload.get("subject"), "reasons": payload.get("reasons"),
                      "proposed": payload.get("proposed"),
                      "proposed_hash": row.proposed_hash if row is not None else None})
    return {"why": "approval", "requests": shown}


def to_event(record: Any, requests: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The event of one audit record (``(type, data)``), or None for records no live view shows
    (model and tool calls are inside their step; decisions show as ``resumed``)."""
    table = record.__tablename__
    if table == "steps":
        return "step_finished", {
            "step_no": record.step_no, "node": record.node, "kind": record.kind, "title": record.title,
            "status": record.status, "effort": record.effort, "model": record.model,
            "tokens": {"input": record.input_tokens, "cached_input": record.cached_input_tokens,
                       "output": record.output_tokens, "reasoning": record.reasoning_tokens},
            "cost_usd": record.cost_usd, "seconds": round(record.duration_s, 3)}
    if table == "reviews":
        return "review", {"step_no": record.step_no, "decision": record.decision, "reason": record.reason}
    if table == "events":
        if record.kind == "run_paused":
            return "paused", _paused(record.detail or {}, requests)
        kind = _LIFECYCLE.get(record.kind)
        if kind == "started":
            detail = record.detail or {}
            return kind, {k: detail.get(k) for k in ("graph", "department", "started_by", "effort_override")}
        if kind is not None:
            return kind, dict(record.detail or {})
    return None


async def stream(reader: AuditReader, run_id: str, after_seq: int, is_connected: Any) -> AsyncIterator[ServerSentEvent]:
    """The run's events after ``after_seq`` (see the module docstring), until it completes or the
    client goes away (``is_connected``: an async callable returning False then)."""
    seq = after_seq
    requests: dict[str, Any] = {}
    if after_seq > 0:  # a reconnect: requests raised before it are needed to show a later "paused"
        requests = {r.request_id: r for r in await anyio.to_thread.run_sync(reader.records_of, run_id, "approvals")
                    if r.action == "requested" and r.seq <= after_seq}
    while True:
        found = await anyio.to_thread.run_sync(reader.records_after, run_id, seq, TABLES)
        for record in found:
            if record.__tablename__ == "approvals" and record.action == "requested":
                requests[record.request_id] = record
            event = to_event(record, requests)
            seq = record.seq
            if event is not None:
                yield ServerSentEvent(event=event[0], id=str(record.seq), data=event[1])
                if event[0] == "completed":
                    return
        if not found and await anyio.to_thread.run_sync(reader.run_status, run_id) == "completed":
            return  # everything up to the completion was sent (a reconnect after it gets nothing)
        if not await is_connected():
            return
        await anyio.sleep(POLL_S)


__all__ = ["POLL_S", "TABLES", "stream", "to_event"]
