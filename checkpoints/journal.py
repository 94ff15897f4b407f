"""The crash journal: which executions of a super-step began, and which side-effect tool calls ran.

LangGraph checkpoints a thread after each super-step, and the audit store appends a step's
records when its node ends (one transaction, :class:`chainproof.graphs.recorder.StepRecorder`). A
process killed between the two, or while the node runs, leaves a checkpoint from before the step,
so a resume executes the node again. That is DBOS's contract for a step, too: a step whose output
was not recorded runs again (at-least-once), a step whose output was recorded is not
(``dbos/_core.py``: the recorded output of ``function_id`` is returned). This module makes both
cases visible and keeps side effects to one execution:

* :meth:`Journal.begin_attempt` numbers every execution of (run, step number, node) *before* the
  node calls a model or a tool (``step_attempts``, unique per attempt). An execution with attempt
  > 1 is a repeated attempt: its step row says so (``output.attempt``) with a ``step_reexecuted``
  event naming the earlier attempts and whether they were recorded, so every model request sent
  again after a crash is in the audit as part of a repeated attempt. A pause (``interrupt``) gives
  its attempt number back (:meth:`Journal.release_attempt`): resuming a pause is not a repetition.
* :meth:`Journal.recorded` is a rider of the step's append: it marks the attempt recorded in the
  same transaction and refuses (:class:`AlreadyRecorded`, the append rolls back) when it already
  was, so a step's records are appended at most once per (run, step, node, attempt).
* :meth:`Journal.run_once` runs a ``side_effects=True`` tool call: journaled ``started`` (committed)
  before the tool runs and ``done``/``failed`` with its redacted result after. A re-executed step
  gets the recorded result back instead of a second execution (as DBOS returns a finished step's
  recorded output). A call journaled ``started`` but never finished has an unknown outcome (the
  tool may or may not have acted): it is not run again; the call returns a refusal
  (``ToolOutcomeUnknown: ...``), which stops a plan step's run for a person (``chainproof resume``
  goes on with the refusal as the finding) and is shown to an agent's model as an error.

Neither table is chained: the audit chain holds what the journal decided (the step rows and the
``step_reexecuted`` events).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from chainproof import _killpoints
from chainproof.checkpoints.audit_hashing import Redactor, sha256_hex
from chainproof.checkpoints.audit_tables import effect_journal, step_attempts, utcnow

SIDE_EFFECTS_TAG = "side_effects"
"""The LangChain tool tag of a tool whose calls act on the world (``@tool(side_effects=True)``)."""

UNKNOWN_OUTCOME = "ToolOutcomeUnknown: "
"""Prefix of the refusal a side-effect call gets when an earlier execution started it and never
recorded how it ended."""


class AlreadyRecorded(Exception):
    """The attempt's records are already in the audit store (the append wrote nothing)."""


class RecordedToolFailure(Exception):
    """A side-effect call that raised in an earlier execution: the recorded error, raised again
    instead of calling the tool a second time."""


def has_side_effects(tool: Any) -> bool:
    """Whether ``tool`` (a LangChain tool) carries the ``side_effects`` tag."""
    return SIDE_EFFECTS_TAG in (getattr(tool, "tags", None) or [])


def _key(run_id: str, step_no: int, node: str) -> Any:
    c = step_attempts.c
    return and_(c.run_id == run_id, c.step_no == step_no, c.node == node)


@dataclass
class _Claim:
    """The rider that claims the next attempt number of (run, step, node) in the transaction of
    the step's ``step_started`` event (one commit, not two, before a node calls a model or tool);
    after :meth:`write`, ``attempt`` and ``earlier`` (``{"attempt", "recorded"}``) hold the claim."""

    engine: Engine
    run_id: str
    step_no: int
    node: str
    attempt: int = 0
    earlier: list[dict[str, Any]] = field(default_factory=list)

    def write(self, conn: Connection) -> None:
        c = step_attempts.c
        self.earlier = [{"attempt": a, "recorded": r is not None} for a, r in conn.execute(
            select(c.attempt, c.recorded_at).where(_key(self.run_id, self.step_no, self.node)).order_by(c.attempt))]
        self.attempt = (self.earlier[-1]["attempt"] if self.earlier else 0) + 1
        conn.execute(insert(step_attempts).values(run_id=self.run_id, step_no=self.step_no, node=self.node,
                                                  attempt=self.attempt, started_at=utcnow()))


@dataclass
class _Recorded:
    """The rider that marks attempt ``attempt`` recorded in the step's append transaction."""

    engine: Engine
    run_id: str
    step_no: int
    node: str
    attempt: int

    def write(self, conn: Connection) -> None:
        c = step_attempts.c
        done = conn.execute(update(step_attempts).where(
            _key(self.run_id, self.step_no, self.node), c.attempt == self.attempt, c.recorded_at.is_(None)
        ).values(recorded_at=utcnow()))
        if done.rowcount != 1:
            raise AlreadyRecorded(f"run {self.run_id} step {self.step_no} ({self.node}) attempt {self.attempt}")


class Journal:
    """The journal tables of the audit database behind ``engine``; strings written go through
    ``redactor`` (see the module docstring). ``lock``: the audit store's, held around each journal
    transaction (parallel branches of a run share the store; an in-memory SQLite store, a replay's,
    has one connection)."""

    def __init__(self, engine: Engine, redactor: Redactor, lock: Any = None):
        self.engine = engine
        self.redactor = redactor
        self._lock = lock if lock is not None else threading.Lock()

    # ------------------------------------------------------------ attempts
    def claim(self, run_id: str, step_no: int, node: str) -> _Claim:
        """A rider claiming the next attempt of (``run_id``, ``step_no``, ``node``) in an append's
        transaction (the recorder appends it with the ``step_started`` event). A racing claim of
        the same number fails that transaction on the unique key (``IntegrityError``): append again
        with a new claim."""
        return _Claim(self.engine, run_id, step_no, node)

    def begin_attempt(self, run_id: str, step_no: int, node: str) -> tuple[int, list[dict[str, Any]]]:
        """Claim the next attempt number of (``run_id``, ``step_no``, ``node``) (1 for the first
        execution) in a transaction of its own; returns it and the earlier attempts
        (``{"attempt", "recorded"}``)."""
        for _ in range(3):  # a racing claim of the same number loses on the unique key and retries
            claim = self.claim(run_id, step_no, node)
            try:
                with self._lock, self.engine.begin() as conn:
                    claim.write(conn)
                return claim.attempt, claim.earlier
            except IntegrityError:
                continue
        raise RuntimeError(f"run {run_id} step {step_no} ({node}): could not claim an attempt number")

    def release_attempt(self, run_id: str, step_no: int, node: str, attempt: int) -> None:
        """Give back an unrecorded attempt (the node paused: resuming it is not a repetition)."""
        c = step_attempts.c
        with self._lock, self.engine.begin() as conn:
            conn.execute(delete(step_attempts).where(_key(run_id, step_no, node), c.attempt == attempt,
                                                     c.recorded_at.is_(None)))

    def recorded(self, run_id: str, step_no: int, node: str, attempt: int) -> _Recorded:
        """The rider of a step's append (see :class:`_Recorded`)."""
        return _Recorded(self.engine, run_id, step_no, node, attempt)

    def attempts(self, run_id: str) -> dict[tuple[int, str], list[dict[str, Any]]]:
        """(step number, node) -> its attempts (``{"attempt", "recorded"}``), of steps executed
        more than once; ``show`` lists them."""
        c = step_attempts.c
        many = (select(c.step_no, c.node).where(c.run_id == run_id).group_by(c.step_no, c.node)
                .having(func.count() > 1).subquery())
        out: dict[tuple[int, str], list[dict[str, Any]]] = {}
        with self._lock, self.engine.connect() as conn:
            for step_no, node, attempt, at in conn.execute(
                    select(c.step_no, c.node, c.attempt, c.recorded_at)
                    .join(many, and_(c.step_no == many.c.step_no, c.node == many.c.node))
                    .where(c.run_id == run_id).order_by(c.step_no, c.node, c.attempt)):
                out.setdefault((step_no, node), []).append({"attempt": attempt, "recorded": at is not None})
        return out

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


__all__ = ["SIDE_EFFECTS_TAG", "UNKNOWN_OUTCOME", "AlreadyRecorded", "Journal", "RecordedToolFailure", "call_key",
           "has_side_effects"]
