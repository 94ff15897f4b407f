"""A run's live events, read from the audit store: one typed event per audit record a live view
shows, with the record's ``seq`` as its id. The web app's SSE stream (``chainproof/web/_sse.py``)
and the terminal's ``chainproof watch`` consume the same events from here, so both show the same
thing in the same order, and a reader that resumes after seq N gets exactly the events after it.

Event types (``type``; the other fields are the event's JSON ``data``):

* ``started``: graph, department, started_by, effort_override;
* ``step_started``: step_no, node, kind, title, effort (the ``step_started`` event the step
  recorder writes when a node begins, ``graphs/recorder.py``);
* ``step_finished``: step_no, node, kind, title, status, effort, model, tokens {input,
  cached_input, output, reasoning} (tokens), cost_usd (USD; None = unknown), seconds;
* ``review``: step_no, decision (continue / replan / terminate), reason;
* ``paused``: why (approval, step_budget, cost_budget), detail (the budget stop) and ``requests``:
  each open approval request (request_id, question, subject, reasons, proposed, proposed_hash);
* ``resumed``: the detail recorded (who decided which request, or the new budget);
* ``completed`` (report_path…) and ``failed`` (error…): the detail recorded;
* ``budget_alert``: the alert recorded.

Model and tool calls are inside their step and decisions show as ``resumed``: no event of their
own. Modelled on LangGraph's typed stream parts (``langgraph/types.py``) as a pydantic
discriminated union on ``type``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

#: the largest sequence number a store holds (a signed 64-bit integer, SQLite's and PostgreSQL's
#: BIGINT): a Last-Event-ID or --after beyond it is bad input, not a query
MAX_SEQ = 2**63 - 1

LIVE_TABLES = ("steps", "reviews", "events", "approvals")
"""The chained tables whose records become events (``approvals``: requests shown by ``paused``)."""
OTHER_TABLES = ("model_calls", "tool_calls")
"""The chained tables whose records are inside their step (read only for their seqs)."""
_DETAIL = {"run_resumed": "resumed", "run_completed": "completed", "run_failed": "failed", "budget_alert": "budget_alert"}


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)
    seq: int = Field(description="the audit record's seq (the SSE id)")

    def data(self) -> dict[str, Any]:
        """The event's JSON data (every field but ``seq`` and ``type``)."""
        return self.model_dump(mode="json", exclude={"seq", "type"})


class Started(_Event):
    type: Literal["started"] = "started"
    graph: str | None = None
    department: str | None = None
    started_by: str | None = None
    effort_override: str | None = None


class StepStarted(_Event):
    type: Literal["step_started"] = "step_started"
    step_no: int
    node: str
    kind: str | None = None
    title: str | None = None
    effort: str | None = None


class Tokens(BaseModel):
    input: int = 0
    cached_input: int = 0
    output: int = 0
    reasoning: int = 0


class StepFinished(_Event):
    type: Literal["step_finished"] = "step_finished"
    step_no: int
    node: str
    kind: str
    title: str
    status: str
    effort: str | None
    model: str | None
    tokens: Tokens
    cost_usd: float | None = Field(description="USD; None = unknown (a model without a price)")
    seconds: float


class Review(_Event):
    type: Literal["review"] = "review"
    step_no: int
    decision: str
    reason: str


class RequestShown(BaseModel):
    request_id: str | None
    question: str | None = None
    subject: Any = None
    reasons: Any = None
    proposed: Any = None
    proposed_hash: str | None = None


class Paused(_Event):
    type: Literal["paused"] = "paused"
    why: Literal["approval", "step_budget", "cost_budget"]
    detail: Any = None
    requests: list[RequestShown] = Field(default_factory=list)


class _Detail(_Event):
    """An event whose data is the detail recorded, as recorded (extra fields kept)."""

    model_config = ConfigDict(frozen=True, extra="allow")


class Resumed(_Detail):
    type: Literal["resumed"] = "resumed"


class Completed(_Detail):
    type: Literal["completed"] = "completed"


class Failed(_Detail):
    type: Literal["failed"] = "failed"


class BudgetAlertEvent(_Detail):
    type: Literal["budget_alert"] = "budget_alert"


_DETAIL_TYPES: dict[str, type[_Detail]] = {"resumed": Resumed, "completed": Completed, "failed": Failed,
                                           "budget_alert": BudgetAlertEvent}

LiveEvent = Annotated[Union[Started, StepStarted, StepFinished, Review, Paused, Resumed, Completed, Failed,
                            BudgetAlertEvent], Field(discriminator="type")]
"""One live event (pydantic discriminated union on ``type``)."""


def _paused(seq: int, detail: dict[str, Any], requests: dict[str, Any]) -> Paused:
    if "budget_stop" in detail:
        return Paused(seq=seq, why="step_budget", detail=detail["budget_stop"])
    if "cost_budget_stop" in detail:
        return Paused(seq=seq, why="cost_budget", detail=detail["cost_budget_stop"])
    shown = []
    for bound in detail.get("requests", []):
        row = requests.get(bound.get("request_id"))
        payload = row.payload if row is not None and isinstance(row.payload, dict) else {}
        shown.append(RequestShown(request_id=bound.get("request_id"), question=payload.get("question"),
                                  subject=payload.get("subject"), reasons=payload.get("reasons"),
                                  proposed=payload.get("proposed"),
                                  proposed_hash=row.proposed_hash if row is not None else None))
    return Paused(seq=seq, why="approval", requests=shown)


def to_event(record: Any, requests: dict[str, Any]) -> Any:
    """The :data:`LiveEvent` of one audit record, or None for records no live view shows.
    ``requests``: the run's approval requests seen so far (request_id -> its ``requested``
    record), needed to show a ``paused`` event's requests."""
    table, seq = record.__tablename__, record.seq
    if table == "steps":
        return StepFinished(seq=seq, step_no=record.step_no, node=record.node, kind=record.kind, title=record.title,
                            status=record.status, effort=record.effort, model=record.model,
                            tokens=Tokens(input=record.input_tokens, cached_input=record.cached_input_tokens,
                                          output=record.output_tokens, reasoning=record.reasoning_tokens),
                            cost_usd=record.cost_usd, seconds=round(record.duration_s, 3))
    if table == "reviews":
        return Review(seq=seq, step_no=record.step_no, decision=record.decision, reason=record.reason)
    if table != "events":
        return None
    detail = record.detail if isinstance(record.detail, dict) else {}
    if record.kind == "run_paused":
        return _paused(seq, detail, requests)
    if record.kind == "run_started":
        return Started.model_validate({"seq": seq, **{k: detail.get(k) for k in
                                                       ("graph", "department", "started_by", "effort_override")}})
    if record.kind == "step_started":
        return StepStarted.model_validate({"seq": seq, **{k: detail.get(k) for k in
                                                           ("step_no", "node", "kind", "title", "effort")}})
    kind = _DETAIL.get(record.kind)
    if kind is None:
        return None
    cls = _DETAIL_TYPES[kind]
    return cls.model_validate({**{k: v for k, v in detail.items() if k not in ("seq", "type")}, "seq": seq})


class LiveReader:
    """Reads a run's events after a seq from an :class:`~chainproof.checkpoints.audit_read.AuditReader`,
    one batch at a time (:meth:`batch`), keeping the approval requests seen so far. The caller
    decides how to wait between batches (the SSE stream sleeps asynchronously, :func:`follow`
    blocks)."""

    def __init__(self, reader: Any, run_id: str, after_seq: int = 0):
        self.reader, self.run_id, self.seq = reader, run_id, after_seq
        self.requests: dict[str, Any] = {}
        if after_seq > 0:  # resuming: requests raised before it are needed to show a later "paused"
            self.requests = {r.request_id: r for r in reader.records_of(run_id, "approvals")
                             if r.action == "requested" and r.seq <= after_seq}
        self.completed = False

    def _contiguous(self, records: list[Any]) -> list[Any]:
        """``records`` up to the first seq not yet visible: the tables are queried one after the
        other, so a record committed between two queries may be missing while a later one is
        there; never passing a gap means it is read by the next batch, not skipped."""
        if not records:
            return records
        others = self.reader.seqs_after(self.run_id, self.seq, OTHER_TABLES)
        upto = _no_gap(sorted({r.seq for r in records} | set(others)), self.seq)
        return [r for r in records if r.seq <= upto]

    def batch(self) -> list[Any]:
        """The events of records written after the last one read (possibly none). After a
        ``completed`` event nothing more is returned and :attr:`completed` is True."""
        if self.completed:
            return []
        out = []
        records = self.reader.records_after(self.run_id, self.seq, LIVE_TABLES)
        if not records and self.reader.run_status(self.run_id) == "completed":
            # the run may have completed between the two queries: its last records are there now
            records = self.reader.records_after(self.run_id, self.seq, LIVE_TABLES)
            self.completed = not records
        records = self._contiguous(records)
        for record in records:
            if record.__tablename__ == "approvals" and record.action == "requested":
                self.requests[record.request_id] = record
            self.seq = record.seq
            event = to_event(record, self.requests)
            if event is not None:
                out.append(event)
                if event.type == "completed":
                    self.completed = True
                    break
        return out


def _no_gap(seqs: list[int], after: int) -> int:
    """The highest seq reached from ``after`` without a gap (a run's seqs are 1, 2, … across tables)."""
    for s in seqs:
        if s != after + 1:
            break
        after = s
    return after


def follow(reader: Any, run_id: str, after_seq: int = 0, *, poll_s: float = 0.2,
           until: Callable[[Any], bool] | None = None) -> Iterator[Any]:
    """Every event of ``run_id`` after ``after_seq``, blocking for new ones (polling the store
    every ``poll_s`` seconds) until the run completes or ``until(event)`` is true for an event
    yielded (e.g. stop at ``paused``)."""
    live = LiveReader(reader, run_id, after_seq)
    while True:
        found = live.batch()
        for event in found:
            yield event
            if until is not None and until(event):
                return
        if live.completed:
            return
        if not found:
            time.sleep(poll_s)


__all__ = ["LIVE_TABLES", "MAX_SEQ", "BudgetAlertEvent", "Completed", "Failed", "LiveEvent", "LiveReader", "Paused", "Resumed",
           "Review", "Started", "StepFinished", "StepStarted", "follow", "to_event"]
