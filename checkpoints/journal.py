"""The crash journal: which executions of a super-step began, and which side-effect tool calls ran.

LangGraph checkpoints a thread after each super-step, and the audit store appends a step's
records when its node ends (one transaction, :class:`chainproof.graphs.recorder.StepRecorder`). A
process killed between the two, or while the node runs, leaves a checkpoint from before the step,
so a resume executes the node again. That is DBOS's contract for a step, too: a step whose output
was not recorded runs again (at-least-once), a step whose output was recorded is not
(``dbos/_core.py``: the recorded output of ``function_id`` is returned). This module makes both
cases visible and keeps side effects to one execution:

* Attempts are numbered by the ``step_started`` event that opens every node execution (appended
  *before* the node calls a model or a tool, :class:`chainproof.graphs.recorder.StepRecorder`): the
  k-th ``step_started`` of (step number, node) since the run's last ``run_paused`` event is attempt
  k (a pause is not a repetition: the paused node runs again on resume as the same attempt). An
  execution with attempt > 1 is a repeated attempt: its ``step_started`` event and its step row
  say so (``attempt``), with a ``step_reexecuted`` event naming the earlier attempts and whether
  each was recorded (has a step row), so every model request sent again after a crash is in the
  audit as part of a repeated attempt. :meth:`Journal.claim` numbers an attempt inside the
  event's append transaction, under the run's append lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
  ``pg_advisory_xact_lock``): of two processes starting the same node, the second sees the first's
  event and takes the next number, so a step's records are appended at most once per attempt.
  The numbering costs no query per node: the journal follows the records this process appends
  (:meth:`Journal.observe`) and reads the run's events again only when the chain's head is not the
  one it last saw (a new process, or another process appended to the run).
* :meth:`Journal.run_once` runs a ``side_effects=True`` tool call: journaled ``started`` (committed)
  before the tool runs and ``done``/``failed`` with its redacted result after. A re-executed step
  gets the recorded result back instead of a second execution (as DBOS returns a finished step's
  recorded output). A call journaled ``started`` but never finished has an unknown outcome (the
  tool may or may not have acted): it is not run again; the call returns a refusal
  (``ToolOutcomeUnknown: ...``), which stops a plan step's run for a person (``chainproof resume``
  goes on with the refusal as the finding) and is shown to an agent's model as an error.

The effect journal is not chained: the audit chain holds what the journal decided (the step rows and
the ``step_reexecuted`` events).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, select, update

from chainproof import _killpoints
from chainproof.checkpoints.audit_hashing import Redactor, sha256_hex
from chainproof.checkpoints.audit_tables import effect_journal, events, steps, utcnow

SIDE_EFFECTS_TAG = "side_effects"
"""The LangChain tool tag of a tool whose calls act on the world (``@tool(side_effects=True)``)."""

UNKNOWN_OUTCOME = "ToolOutcomeUnknown: "
"""Prefix of the refusal a side-effect call gets when an earlier execution started it and never
recorded how it ended."""


class RecordedToolFailure(Exception):
    """A side-effect call that raised in an earlier execution: the recorded error, raised again
    instead of calling the tool a second time."""


def has_side_effects(tool: Any) -> bool:
    """Whether ``tool`` (a LangChain tool) carries the ``side_effects`` tag."""
    return SIDE_EFFECTS_TAG in (getattr(tool, "tags", None) or [])


_ENDS = frozenset({"run_completed", "run_failed"})


@dataclass
class _Tail:
    """What the journal knows of a run's chain: the head's ``seq`` and the attempts of each
    (step number, node) since the last ``run_paused`` event."""

    seq: int
    attempts: dict[tuple[int, str], list[dict[str, Any]]] = field(default_factory=dict)

    def follow(self, table: str, rec: Any) -> bool:
        """Take one appended record into account; True when it ends the run."""
        if table == "events":
            if rec.kind == "step_started":
                key = (rec.detail["step_no"], rec.detail["node"])
                found = self.attempts.setdefault(key, [])
                found.append({"attempt": len(found) + 1, "recorded": False})
            elif rec.kind == "run_paused":
                self.attempts.clear()
            return rec.kind in _ENDS
        if table == "steps":
            attempt = (rec.output or {}).get("attempt", 1) if isinstance(rec.output, dict) else 1
            for a in self.attempts.get((rec.step_no, rec.node), []):
                if a["attempt"] == attempt:
                    a["recorded"] = True
        return False

    @classmethod
    def read(cls, conn: Connection, run_id: str, head_seq: int) -> _Tail:
        """The tail of ``run_id`` from the store: its events since the last ``run_paused`` and the
        step rows after it (run before the claim, in the append's transaction)."""
        e, s = events.c, steps.c
        paused = conn.execute(select(func.max(e.seq)).where(e.run_id == run_id, e.kind == "run_paused")).scalar()
        after = paused or 0
        tail = cls(seq=head_seq)
        rows: list[tuple[int, str, Any]] = [(seq, "events", _Event(kind, detail)) for seq, kind, detail in conn.execute(
            select(e.seq, e.kind, e.detail).where(e.run_id == run_id, e.seq > after, e.kind == "step_started"))]
        rows += [(seq, "steps", _StepRow(step_no, node, output)) for seq, step_no, node, output in conn.execute(
            select(s.seq, s.step_no, s.node, s.output).where(s.run_id == run_id, s.seq > after))]
        for _, table, rec in sorted(rows, key=lambda r: r[0]):
            tail.follow(table, rec)
        return tail


@dataclass
class _Event:
    kind: str
    detail: dict[str, Any]


@dataclass
class _StepRow:
    step_no: int
    node: str
    output: Any


@dataclass
class _Claim:
    """See :meth:`Journal.claim`."""

    tails: dict[str, _Tail]
    run_id: str
    step_no: int
    node: str
    event: Any
    attempt: int = 1
    earlier: list[dict[str, Any]] = field(default_factory=list)

    def prepare(self, conn: Connection, head_seq: int) -> None:
        tail = self.tails.get(self.run_id)
        if tail is None or tail.seq != head_seq:
            tail = self.tails[self.run_id] = _Tail.read(conn, self.run_id, head_seq)
        self.earlier = [dict(a) for a in tail.attempts.get((self.step_no, self.node), [])]
        self.attempt = len(self.earlier) + 1
        if self.earlier:
            self.event.detail = {**self.event.detail, "attempt": self.attempt}


class Journal:
    """The journal tables of the audit database behind ``engine``; strings written go through
    ``redactor`` (see the module docstring). ``lock``: the audit store's, held around each journal
    transaction (parallel branches of a run share the store; an in-memory SQLite store, a replay's,
    has one connection)."""

    def __init__(self, engine: Engine, redactor: Redactor, lock: Any = None):
        self.engine = engine
        self.redactor = redactor
        self._lock = lock if lock is not None else threading.Lock()
        self._tails: dict[str, _Tail] = {}

    # ------------------------------------------------------------ attempts
    def claim(self, run_id: str, step_no: int, node: str, event: Any) -> _Claim:
        """The claim of the next attempt of (``run_id``, ``step_no``, ``node``), made by the append of
        ``event`` (the node's ``step_started`` record) with ``prepare=claim.prepare``: in the
        append's transaction it numbers the attempt (``claim.attempt``; ``event.detail["attempt"]``
        when > 1) and lists the earlier ones (``claim.earlier``, ``{"attempt", "recorded"}``). See
        the module docstring."""
        return _Claim(self._tails, run_id, step_no, node, event)

    def observe(self, run_id: str, records: Sequence[Any]) -> None:
        """Follow ``records``, just appended to ``run_id``'s chain by this process (the store calls
        it after every append, under its append lock for the run)."""
        tail = self._tails.get(run_id)
        if not records:
            return
        if tail is None or tail.seq != records[0].seq - 1:  # not the head this journal last saw: read again when needed
            self._tails.pop(run_id, None)
            return
        for rec in records:
            if tail.follow(rec.__tablename__, rec):
                self._tails.pop(run_id, None)  # the run ended
                return
        tail.seq = records[-1].seq

    def attempts(self, run_id: str) -> dict[tuple[int, str], list[dict[str, Any]]]:
        """(step number, node) -> its attempts since the run's last pause (``{"attempt", "recorded"}``),
        of steps executed more than once."""
        with self._lock, self.engine.connect() as conn:
            tail = _Tail.read(conn, run_id, 0)
        return {key: found for key, found in tail.attempts.items() if len(found) > 1}

    # ------------------------------------------------------------ side effects
    def run_once(self, run_id: str, step_no: int, node: str, call_key: str, tool: str,
                 call: Callable[[], tuple[Any, str | None]]) -> tuple[Any, str | None, str]:
        """Run one side-effect tool call at most once: ``(result, refusal, how)`` where ``how`` is
        ``ran``, ``reused`` (the recorded result of an earlier execution) or ``unknown`` (started
        earlier, never finished: not run again; ``refusal`` starts with :data:`UNKNOWN_OUTCOME`).
        ``call()`` returns ``(encoded result, refusal or None)`` and may raise: the exception is
        journaled (``failed``) and re-raised; a later execution raises
        :class:`RecordedToolFailure` with its text."""
        e = effect_journal.c
        where = and_(e.run_id == run_id, e.step_no == step_no, e.node == node, e.call_key == call_key)
        with self._lock, self.engine.connect() as conn:
            found = conn.execute(select(e.state, e.result, e.error, e.started_at).where(where)).first()
        if found is not None:
            state, result, error, started = found
            if state == "done":
                return result, error, "reused"
            if state == "failed":
                raise RecordedToolFailure(error)
            return None, (f"{UNKNOWN_OUTCOME}tool {tool} was started at {started:%Y-%m-%d %H:%M:%S} UTC by an "
                          "execution that stopped before recording its outcome; it is not run a second time "
                          "(check what it did)"), "unknown"
        with self._lock, self.engine.begin() as conn:
            conn.execute(insert(effect_journal).values(run_id=run_id, step_no=step_no, node=node, call_key=call_key,
                                                       tool=tool, state="started", started_at=utcnow()))
        _killpoints.reach("tool.before")
        try:
            result, refusal = call()
        except Exception as exc:
            self._finish(where, "failed", None, f"{type(exc).__name__}: {exc}")
            raise
        _killpoints.reach("tool.after")
        self._finish(where, "done", result, refusal)
        return result, refusal, "ran"

    def _finish(self, where: Any, state: str, result: Any, error: str | None) -> None:
        with self._lock, self.engine.begin() as conn:
            conn.execute(update(effect_journal).where(where).values(
                state=state, result=self.redactor(result), error=self.redactor(error) if error else error,
                finished_at=utcnow()))


def call_key(tool: str, args: Any, occurrence: int) -> str:
    """The journal key of the ``occurrence``-th call (0-based) of ``tool`` with ``args`` in a step:
    the same in every execution of the step that asks for the same call."""
    return sha256_hex({"tool": tool, "args": args, "n": occurrence})


__all__ = ["SIDE_EFFECTS_TAG", "UNKNOWN_OUTCOME", "Journal", "RecordedToolFailure", "call_key",
           "has_side_effects"]
