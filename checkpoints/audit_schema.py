"""The audit store's records as SQLAlchemy 2 typed ORM classes, mapped onto the Core tables of
:mod:`chainproof.checkpoints.audit_tables` (the one definition of the columns; "declarative with
imperative table"). The writer builds records with these classes; queries return
:class:`chainproof.checkpoints.audit_read.Record` rows instead, without importing the ORM. Changes
go through Alembic migrations (``checkpoints/migrations``); never edit a released migration.

Every table but ``runs`` is a *chained* record: within one run, records of all tables form one
sequence ``seq = 1, 2, …`` and each stores ``prev_hash`` (the previous record's
``record_hash``, ``GENESIS`` for the first) and its own ``record_hash`` (SHA-256 of its canonical
content, see :func:`chainproof.checkpoints.audit_hashing.record_hash`). Rows are only ever inserted, by
:meth:`chainproof.checkpoints.audit.AuditStore.append`.

The hashed content is every column of a row, so a new column on a chained table would change the
content of rows written before it (they would fail ``verify``): record new facts in a new table.

Class attributes read by the writer and by replay (per table in :mod:`~chainproof.checkpoints.audit_tables`):

* ``__zdr_fields__``: columns holding prompt or model text; in zero-data-retention runs every
  string in them longer than ``ZDR_EXCERPT_CHARS`` is stored as a stub (redacted excerpt + SHA-256).
* ``__replay_ignore__``: columns that legitimately differ when a run is replayed (timings, ids,
  timestamps), so replay does not compare them.
* ``__optional_columns__``: columns added by a later migration. They are part of a row's hashed
  content only when set (not NULL), so rows written before the column existed keep their hash and
  still verify; new rows set them only when they carry information (e.g. ``cache_hit=True``).

The ``reasoning_cache`` table is not an audit record: it is not chained, rows expire and
``chainproof cache clear`` deletes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase, Mapped, validates

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints.audit_tables import GENESIS, utcnow

REVIEW_DECISIONS = ("continue", "replan", "terminate", "rescope", "end_step")


class Base(DeclarativeBase):
    metadata = t.metadata


class Run(Base):
    """One run of a graph (= one LangGraph thread; ``run_id`` is the ``thread_id``)."""

    __table__ = t.runs

    run_id: Mapped[str]
    graph: Mapped[str]
    goal: Mapped[str]
    inputs: Mapped[dict[str, Any]]
    company: Mapped[str | None]
    department: Mapped[str | None]
    started_by: Mapped[str | None]
    created_at: Mapped[datetime]
    zdr: Mapped[bool]
    """Zero-data-retention run: prompt and model text is stored as hashes and short redacted excerpts."""
    parent_run_id: Mapped[str | None]
    """For a fork (``chainproof fork``): the run it was forked from; None otherwise."""
    forked_at_step: Mapped[int | None]
    """For a fork: the parent's step the fork starts after (its first own step is the next one)."""


class Chained:
    """Columns shared by every hash-chained record, and the table's attributes (see the module
    docstring) read from :mod:`~chainproof.checkpoints.audit_tables`."""

    if TYPE_CHECKING:  # set by each mapped subclass; declared here for the type checker only
        __tablename__: str
        __table__: ClassVar[Table]

    id: Mapped[int]
    seq: Mapped[int]
    created_at: Mapped[datetime]
    prev_hash: Mapped[str]
    record_hash: Mapped[str]
    run_id: Mapped[str]

    __zdr_fields__: tuple[str, ...] = ()
    __replay_ignore__: frozenset[str] = frozenset()
    __optional_columns__: frozenset[str] = frozenset()

    def __init_subclass__(cls, **kw: Any) -> None:
        name = cls.__dict__["__table__"].name
        cls.__zdr_fields__, cls.__replay_ignore__ = t.ZDR_FIELDS[name], t.REPLAY_IGNORE[name]
        cls.__optional_columns__ = t.OPTIONAL_COLUMNS[name]
        super().__init_subclass__(**kw)
        cls.__tablename__ = name  # after mapping: declarative takes the name from __table__


class Step(Chained, Base):
    """One node execution (one LangGraph super-step of the chain)."""

    __table__ = t.steps

    step_no: Mapped[int]
    node: Mapped[str]
    kind: Mapped[str]
    title: Mapped[str]
    status: Mapped[str]  # ok | error
    effort: Mapped[str | None]
    effort_reason: Mapped[str | None]
    model: Mapped[str | None]
    inputs: Mapped[dict[str, Any]]
    output: Mapped[dict[str, Any]]
    input_tokens: Mapped[int]
    cached_input_tokens: Mapped[int]
    output_tokens: Mapped[int]
    reasoning_tokens: Mapped[int]
    cost_usd: Mapped[float | None]
    started_at: Mapped[datetime]
    duration_s: Mapped[float]


class ModelCallRecord(Chained, Base):
    """One request to a chat model (one attempt), or one answer served by the reasoning cache.

    Tokens follow :class:`chainproof.agents.calls.Usage` (``cached_input_tokens`` ⊆ ``input_tokens``,
    ``reasoning_tokens`` ⊆ ``output_tokens``). ``cost_usd``: USD priced from the pricing table at
    the time of the call; NULL means *unknown* (a model without a price), never 0. ``cache_hit``
    (revision 0003): True when the reasoning cache answered; the token columns then hold the tokens
    the hit *saved* (those of the original call), ``cost_usd`` is 0 and no model was called.
    NULL on every other row.
    """

    __table__ = t.model_calls

    step_no: Mapped[int]
    node: Mapped[str]
    model: Mapped[str]
    effort: Mapped[str]
    prompt_hash: Mapped[str]
    messages: Mapped[list[Any]]
    output: Mapped[str]
    reasoning: Mapped[str]
    tool_calls: Mapped[list[Any]]
    input_tokens: Mapped[int]
    cached_input_tokens: Mapped[int]
    output_tokens: Mapped[int]
    reasoning_tokens: Mapped[int]
    latency_s: Mapped[float]
    finish_reason: Mapped[str | None]
    attempt: Mapped[int]
    cost_usd: Mapped[float | None]
    cache_hit: Mapped[bool | None]


class ToolCallRecord(Chained, Base):
    """One tool invocation with its arguments and its result or error."""

    __table__ = t.tool_calls

    step_no: Mapped[int]
    node: Mapped[str]
    tool: Mapped[str]
    args: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None]
    latency_s: Mapped[float]


class ApprovalRecord(Chained, Base):
    """A human-approval request (``action='requested'``) or a decision on one."""

    __table__ = t.approvals

    step_no: Mapped[int]
    request_id: Mapped[str]
    action: Mapped[str]  # requested | approve | reject | edit
    approver: Mapped[str | None]
    comment: Mapped[str | None]
    proposed_hash: Mapped[str]
    payload: Mapped[dict[str, Any]]
    signature: Mapped[dict[str, Any] | None]  # a signed decision's key id, signature and signed fields


class ReviewRecord(Chained, Base):
    """A goal review: every N steps the model judges whether the chain still serves its goal.

    ``decision`` is one of ``REVIEW_DECISIONS`` (``rescope`` and ``end_step`` are decisions on an
    agent step in progress, ``graphs/agent.py``); ``drift_assessment`` says how far the work has
    drifted from the goal; ``inputs`` is what the review saw (JSON); tokens are those of the
    review's model calls (``reasoning_tokens`` ⊆ ``output_tokens``).
    """

    __table__ = t.reviews

    step_no: Mapped[int]
    decision: Mapped[str]
    reason: Mapped[str]
    drift_assessment: Mapped[str | None]
    inputs: Mapped[dict[str, Any]]
    effort: Mapped[str | None]
    input_tokens: Mapped[int]
    output_tokens: Mapped[int]
    reasoning_tokens: Mapped[int]

    @validates("decision")
    def _check_decision(self, _key: str, value: str) -> str:
        if value not in REVIEW_DECISIONS:
            raise ValueError(f"decision: expected one of {', '.join(REVIEW_DECISIONS)}, got {value!r}")
        return value


class EventRecord(Chained, Base):
    """Run lifecycle (``run_started``, ``run_paused``, ``run_resumed``, ``run_completed``,
    ``run_failed``) and model-access events (``model_retry``, ``model_failed``, ``failover``:
    ``detail`` is an :class:`chainproof.agents.resilience.AttemptRecord` plus ``step_no`` and ``node``)."""

    __table__ = t.events

    kind: Mapped[str]
    detail: Mapped[dict[str, Any]]


class ReasoningCacheEntry(Base):
    """One cached model answer (not an audit record: not chained, expires, may be cleared).

    ``key``: SHA-256 (hex) of the canonical JSON of model, effort, wire messages, tools and
    sampling parameters (:func:`chainproof.agents.reasoning_cache.cache_key`); ``response``: the
    :class:`chainproof.agents.calls.ModelCall` fields needed to answer again (output, reasoning, tool calls,
    usage, finish reason); ``expires_at``: UTC, after which the entry is a miss; ``hits``: how
    often it answered.
    """

    __table__ = t.reasoning_cache

    key: Mapped[str]
    model: Mapped[str]
    effort: Mapped[str]
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    hits: Mapped[int]


CHAINED_TABLES: tuple[type[Chained], ...] = (
    Step, ModelCallRecord, ToolCallRecord, ApprovalRecord, ReviewRecord, EventRecord,
)
STEP_TABLES: tuple[type[Step], type[ModelCallRecord], type[ToolCallRecord], type[ApprovalRecord], type[ReviewRecord]] = (
    Step, ModelCallRecord, ToolCallRecord, ApprovalRecord, ReviewRecord,
)
"""The chained tables whose records belong to a step (``step_no``): all but ``EventRecord``."""

__all__ = ["CHAINED_TABLES", "GENESIS", "REVIEW_DECISIONS", "STEP_TABLES", "ApprovalRecord", "Base", "Chained",
           "EventRecord", "ModelCallRecord", "ReasoningCacheEntry", "ReviewRecord", "Run", "Step", "ToolCallRecord",
           "utcnow"]
