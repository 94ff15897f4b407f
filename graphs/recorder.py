"""Audit one super-step: collect its model and tool calls, then append them and the step row.

Used by every orchestrator node::

    with StepRecorder(runtime, state, node="act", kind="tool", title="...") as rec:
        rec.tool_call(...)
        rec.output = {...}

On entry a ``step_started`` event (step_no, node, kind, title, effort) is appended, so live views
see a step begin (``chainproof/_live.py``); a node that pauses and runs again on resume starts
again. On exit (also on an exception, with ``status='error'``) the records are appended to the run's
hash chain in one transaction, together with the reasoning-cache entries the step's model calls
put (held meanwhile by :func:`chainproof.checkpoints.reasoning_cache.deferred_puts`; one commit per
super-step), and a progress event is passed to ``progress``, the run's progress sink when it has one
(``{"step", "node", "title", "effort", "model", "tokens", "elapsed_s", "status"}``; see
:attr:`chainproof.graphs._engine.context.ChainContext.progress`).

Costs: each model call is priced with the run's pricing table (:func:`chainproof.agents.pricing.cost_usd`;
``cost_usd`` None = unknown, a model without a price, never a silent 0); a cache hit costs 0 and
is recorded with ``cache_hit=True`` and the tokens it saved. The step row's token columns and
``cost_usd`` sum the calls the step actually made (cache hits excluded: they used no tokens);
``cost_usd`` is None when any call is unknown, 0.0 for a step without model calls. Without a
pricing table (``pricing=None``: runs recorded before prices existed, replayed) nothing is priced.

Model-access attempts (:class:`chainproof.agents.resilience.AttemptRecord`, one per HTTP request) need no
table of their own: the step row's ``output["model_attempts"]`` lists every attempt of the
step's model calls (also of a call that gave up), and each failed attempt is an ``events`` row
of kind ``model_retry`` (retried) or ``model_failed`` (the call gave up), each switch of
endpoint one of kind ``failover``; their ``detail`` is the attempt record plus ``step_no`` and
``node``.

Crash safety (:mod:`chainproof.checkpoints.journal`): the ``step_started`` event claims the
step's attempt number before the node calls a model or a tool; a repeated attempt (the process stopped
during an earlier execution, or between its append and LangGraph's checkpoint) records
``output.attempt`` on its step row and a ``step_reexecuted`` event (``step_no``, ``node``,
``attempt``, the earlier attempts and whether each was recorded, the model requests sent again), so
a re-sent model request is never unaudited. Each attempt is claimed once and appends its records
once. A pause is not a repetition: the node runs again on resume as the same attempt. :meth:`StepRecorder.invoke_once` runs a ``side_effects=True`` tool
call at most once across executions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from langgraph.errors import GraphInterrupt

from chainproof import _killpoints
from chainproof.agents.calls import ModelCall, Usage
from chainproof.agents.pricing import Price, cost_usd, sum_costs
from chainproof.agents.resilience import ModelCallFailed
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import EventRecord, ModelCallRecord, Step, ToolCallRecord
from chainproof.checkpoints.journal import call_key, has_side_effects
from chainproof.checkpoints.reasoning_cache import PendingPut, deferred_puts

if TYPE_CHECKING:  # typing only: the context imports this module
    from chainproof.graphs._engine.context import Ledger


@dataclass
class StepRecorder:
    """Collects what one node execution did; see the module docstring."""

    audit: Ledger
    run_id: str
    step_no: int
    node: str
    kind: str
    title: str
    effort: str | None = None
    effort_reason: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    extra_records: list[Any] = field(default_factory=list)
    pricing: dict[str, Price] | None = None
    progress: Callable[[Mapping[str, Any]], None] | None = None
    _calls: list[ModelCall] = field(default_factory=list)
    _rows: list[Any] = field(default_factory=list)
    _started: float = 0.0
    _started_at: datetime | None = None
    _held_block: Any = None
    _held: list[PendingPut] = field(default_factory=list)
    attempt: int = 1
    _earlier: list[dict[str, Any]] = field(default_factory=list)
    _effects: dict[str, list[str]] = field(default_factory=dict)
    _occurrences: dict[str, int] = field(default_factory=dict)

    def __enter__(self) -> StepRecorder:
        journal = getattr(self.audit, "journal", None)
        detail = {"step_no": self.step_no, "node": self.node, "kind": self.kind, "title": self.title[:300],
                  "effort": self.effort}
        started = EventRecord(kind="step_started", detail=detail)
        if journal is None:
            self.audit.append(self.run_id, started)
        else:  # the event is the attempt's claim (numbered in its append's transaction)
            claim = journal.claim(self.run_id, self.step_no, self.node, started)
            self.audit.append(self.run_id, started, prepare=claim.prepare)
            self.attempt, self._earlier = claim.attempt, claim.earlier
        self._started = time.perf_counter()
        self._started_at = datetime.now(UTC)
        self._held_block = deferred_puts()
        self._held = self._held_block.__enter__()
        return self

    def invoke_once(self, tool: Any, name: str, args: Any,
                    call: Callable[[], tuple[Any, str | None]]) -> tuple[Any, str | None]:
        """``call()`` (a tool call: ``(encoded result, refusal)``), journaled at most once across
        executions of this step when ``tool`` has ``side_effects=True`` (see
        :meth:`chainproof.checkpoints.journal.Journal.run_once`); other tools just run
        (at-least-once, like any step after a crash). The step row's ``output.side_effects`` lists
        the calls whose recorded result was reused or whose outcome is unknown."""
        journal = getattr(self.audit, "journal", None)
        if journal is None or not has_side_effects(tool):
            return call()
        first = call_key(name, args, 0)
        n = self._occurrences.get(first, 0)
        self._occurrences[first] = n + 1
        result, refusal, how = journal.run_once(self.run_id, self.step_no, self.node, call_key(name, args, n), name, call)
        if how != "ran":
            self._effects.setdefault(how, []).append(name)
        return result, refusal

    @property
    def usage(self) -> Usage:
        """Tokens the step used (its model calls, cache hits excluded)."""
        total = Usage()
        for call in self._calls:
            if not call.cache_hit:
                total = total + call.usage
        return total

    def cost_of(self, call: ModelCall) -> float | None:
        """USD of one call: 0 for a cache hit, priced otherwise, None when not priced."""
        if self.pricing is None:
            return None
        return 0.0 if call.cache_hit else cost_usd(call.model, call.usage, self.pricing)

    def model_calls(self, calls: list[ModelCall]) -> None:
        _killpoints.reach("model.after")
        for call in calls:
            self._calls.append(call)
            u = call.usage
            self._rows.append(
                ModelCallRecord(
                    step_no=self.step_no,
                    node=self.node,
                    model=call.model,
                    effort=call.effort,
                    prompt_hash=sha256_hex(call.messages),
                    messages=call.messages,
                    output=call.output,
                    reasoning=call.reasoning,
                    tool_calls=call.tool_calls,
                    input_tokens=u.input_tokens,
                    cached_input_tokens=u.cached_input_tokens,
                    output_tokens=u.output_tokens,
                    reasoning_tokens=u.reasoning_tokens,
                    latency_s=call.latency_s,
                    finish_reason=call.finish_reason,
                    attempt=call.attempts,
                    cost_usd=self.cost_of(call),
                    cache_hit=True if call.cache_hit else None,
                )
            )

    def tool_call(self, tool: str, args: dict[str, Any], result: dict[str, Any] | None, error: str | None, latency_s: float) -> None:
        self._rows.append(
            ToolCallRecord(
                step_no=self.step_no, node=self.node, tool=tool, args=args, result=result, error=error,
                latency_s=round(latency_s, 4),
            )
        )

    def _attempt_events(self, exc: BaseException | None) -> list[EventRecord]:
        calls = [c.http_attempts for c in self._calls]
        if isinstance(exc, ModelCallFailed):
            calls.append([a.model_dump() for a in exc.attempts])
        if any(calls):
            self.output = {**self.output, "model_attempts": [a for attempts in calls for a in attempts]}
        events = []
        for i, attempts in enumerate(calls):
            gave_up = isinstance(exc, ModelCallFailed) and i == len(calls) - 1
            for j, a in enumerate(attempts):
                where = {"step_no": self.step_no, "node": self.node}
                if a.get("failover_from"):
                    events.append(EventRecord(kind="failover", detail={**where, **a}))
                if a.get("error_class"):
                    last = j == len(attempts) - 1
                    events.append(EventRecord(kind="model_failed" if gave_up and last else "model_retry",
                                              detail={**where, **a}))
        return events

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._finish(exc_type, exc)
        finally:  # cache entries the append did not take are written on their own
            self._held_block.__exit__(None, None, None)

    def _append(self, *records: Any) -> None:
        held = self._held
        try:
            self.audit.append(self.run_id, *records, riders=tuple(held))
        except BaseException:
            for put in held:  # rolled back with the append
                put.written = False
            raise
        held[:] = [put for put in held if not put.written]

    def _repeat_records(self) -> list[EventRecord]:
        """The ``step_reexecuted`` event of a repeated attempt (none for a first execution)."""
        if self.attempt == 1:
            return []
        self.output = {**self.output, "attempt": self.attempt}
        sent = sum(not c.cache_hit for c in self._calls)
        return [EventRecord(kind="step_reexecuted", detail={
            "step_no": self.step_no, "node": self.node, "attempt": self.attempt, "earlier": self._earlier,
            "model_requests": sent, **({"side_effects": self._effects} if self._effects else {})})]

    def _finish(self, exc_type: Any, exc: BaseException | None) -> None:
        elapsed = time.perf_counter() - self._started
        if exc_type is not None and issubclass(exc_type, GraphInterrupt):
            return  # a pause, not a step: the node runs again on resume (the same attempt: see the journal)
        status = "ok" if exc is None else "error"
        if exc is not None:
            self.output = {**self.output, "error": f"{type(exc).__name__}: {exc}"}
        events = self._attempt_events(exc)
        if self._effects:
            self.output = {**self.output, "side_effects": self._effects}
        events = [*self._repeat_records(), *events]
        u = self.usage
        models = sorted({c.model for c in self._calls})
        step = Step(
            step_no=self.step_no, node=self.node, kind=self.kind, title=self.title[:300], status=status,
            effort=self.effort, effort_reason=self.effort_reason, model=", ".join(models) or None,
            inputs=self.inputs, output=self.output, input_tokens=u.input_tokens,
            cached_input_tokens=u.cached_input_tokens, output_tokens=u.output_tokens,
            reasoning_tokens=u.reasoning_tokens, started_at=self._started_at,
            cost_usd=None if self.pricing is None else sum_costs([self.cost_of(c) for c in self._calls]),
            duration_s=round(elapsed, 4),
        )
        self._append(*self._rows, *self.extra_records, *events, step)
        if self.progress is None:
            return
        self.progress({
            "step": self.step_no, "node": self.node, "title": self.title, "effort": self.effort,
            "model": step.model, "tokens": u.total_tokens, "reasoning_tokens": u.reasoning_tokens,
            "cost_usd": step.cost_usd, "cache_hits": sum(c.cache_hit for c in self._calls),
            "elapsed_s": round(elapsed, 2), "status": status,
        })
