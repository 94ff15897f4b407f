"""The audit store's tables (SQLAlchemy 2 typed ORM). Changes go through Alembic migrations
(``checkpoints/migrations``); never edit a released migration.

Every table but ``runs`` is a *chained* record: within one run, records of all tables form one
sequence ``seq = 1, 2, …`` and each stores ``prev_hash`` (the previous record's
``record_hash``, ``GENESIS`` for the first) and its own ``record_hash`` (SHA-256 of its canonical
content, see :func:`chainproof.checkpoints.audit_hashing.record_hash`). Rows are only ever inserted, by
:meth:`chainproof.checkpoints.audit.AuditStore.append`.

The hashed content is every column of a row, so a new column on a chained table would change the
content of rows written before it (they would fail ``verify``): record new facts in a new table.

Class attributes read by the writer and by replay:

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

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, validates

GENESIS = "0" * 64


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class Run(Base):
    """One run of a graph (= one LangGraph thread; ``run_id`` is the ``thread_id``)."""

    __tablename__ = "runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    graph: Mapped[str] = mapped_column(String(100))
    goal: Mapped[str] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]]
    company: Mapped[str | None] = mapped_column(String(64), index=True)
    department: Mapped[str | None] = mapped_column(String(100), index=True)
    started_by: Mapped[str | None] = mapped_column(String(200), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    zdr: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Zero-data-retention run: prompt and model text is stored as hashes and short redacted excerpts."""
    parent_run_id: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    """For a fork (``chainproof fork``): the run it was forked from; None otherwise."""
    forked_at_step: Mapped[int | None] = mapped_column(Integer, default=None)
    """For a fork: the parent's step the fork starts after (its first own step is the next one)."""


class Chained:
    """Columns shared by every hash-chained record."""

    if TYPE_CHECKING:  # set by each mapped subclass; declared here for the type checker only
        __tablename__: str

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))

    __zdr_fields__: tuple[str, ...] = ()
    __replay_ignore__: frozenset[str] = frozenset({"id", "run_id", "seq", "created_at", "prev_hash", "record_hash"})
    __optional_columns__: frozenset[str] = frozenset()

    @declared_attr
    def run_id(cls) -> Mapped[str]:
        return mapped_column(String(64), ForeignKey("runs.run_id"))

    @declared_attr.directive
    def __table_args__(cls) -> tuple:
        name = cls.__tablename__
        return (
            UniqueConstraint("run_id", "seq", name=f"uq_{name}_run_seq"),
            Index(f"ix_{name}_created_at", "created_at"),
        )


class Step(Chained, Base):
    """One node execution (one LangGraph super-step of the chain)."""

    __tablename__ = "steps"

    step_no: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))  # ok | error
    effort: Mapped[str | None] = mapped_column(String(16))
    effort_reason: Mapped[str | None] = mapped_column(String(300))
    model: Mapped[str | None] = mapped_column(String(200))
    inputs: Mapped[dict[str, Any]]
    output: Mapped[dict[str, Any]]
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime]
    duration_s: Mapped[float] = mapped_column(Float)

    __zdr_fields__ = ("inputs", "output")
    __replay_ignore__ = Chained.__replay_ignore__ | {"started_at", "duration_s"}


class ModelCallRecord(Chained, Base):
    """One request to a chat model (one attempt), or one answer served by the reasoning cache.

    Tokens follow :class:`chainproof.agents.calls.Usage` (``cached_input_tokens`` ⊆ ``input_tokens``,
    ``reasoning_tokens`` ⊆ ``output_tokens``). ``cost_usd``: USD priced from the pricing table at
    the time of the call; NULL means *unknown* (a model without a price), never 0. ``cache_hit``
    (revision 0003): True when the reasoning cache answered; the token columns then hold the tokens
    the hit *saved* (those of the original call), ``cost_usd`` is 0 and no model was called.
    NULL on every other row.
    """

    __tablename__ = "model_calls"

    step_no: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200), index=True)
    effort: Mapped[str] = mapped_column(String(16))
    prompt_hash: Mapped[str] = mapped_column(String(64))
    messages: Mapped[list[Any]]
    output: Mapped[str] = mapped_column(Text)
    reasoning: Mapped[str] = mapped_column(Text)
    tool_calls: Mapped[list[Any]]
    input_tokens: Mapped[int] = mapped_column(Integer)
    cached_input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    reasoning_tokens: Mapped[int] = mapped_column(Integer)
    latency_s: Mapped[float] = mapped_column(Float)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    cache_hit: Mapped[bool | None] = mapped_column(Boolean, nullable=True)

    __zdr_fields__ = ("messages", "output", "reasoning", "tool_calls")
    __replay_ignore__ = Chained.__replay_ignore__ | {"latency_s"}
    __optional_columns__ = frozenset({"cache_hit"})


class ToolCallRecord(Chained, Base):
    """One tool invocation with its arguments and its result or error."""

    __tablename__ = "tool_calls"

    step_no: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(100), index=True)
    args: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    latency_s: Mapped[float] = mapped_column(Float)

    __replay_ignore__ = Chained.__replay_ignore__ | {"latency_s"}


class ApprovalRecord(Chained, Base):
    """A human-approval request (``action='requested'``) or a decision on one."""

    __tablename__ = "approvals"

    step_no: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))  # requested | approve | reject | edit
    approver: Mapped[str | None] = mapped_column(String(200), index=True)
    comment: Mapped[str | None] = mapped_column(Text)
    proposed_hash: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]

    __zdr_fields__ = ("payload", "comment")
    # the request id and the payload's timestamps are new on every execution; the proposal is
    # compared through proposed_hash
    __replay_ignore__ = Chained.__replay_ignore__ | {"request_id", "payload"}


REVIEW_DECISIONS = ("continue", "replan", "terminate")


class ReviewRecord(Chained, Base):
    """A goal review: every N steps the model judges whether the chain still serves its goal.

    ``decision`` is one of ``REVIEW_DECISIONS``; ``drift_assessment`` says how far the work has
    drifted from the goal; ``inputs`` is what the review saw (JSON); tokens are those of the
    review's model calls (``reasoning_tokens`` ⊆ ``output_tokens``).
    """

    __tablename__ = "reviews"

    step_no: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    drift_assessment: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]]
    effort: Mapped[str | None] = mapped_column(String(16))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)

    __zdr_fields__ = ("reason", "drift_assessment", "inputs")

    @validates("decision")
    def _check_decision(self, _key: str, value: str) -> str:
        if value not in REVIEW_DECISIONS:
            raise ValueError(f"decision: expected one of {', '.join(REVIEW_DECISIONS)}, got {value!r}")
        return value


class EventRecord(Chained, Base):
    """Run lifecycle (``run_started``, ``run_paused``, ``run_resumed``, ``run_completed``,
    ``run_failed``) and model-access events (``model_retry``, ``model_failed``, ``failover``:
    ``detail`` is an :class:`chainproof.agents.resilience.AttemptRecord` plus ``step_no`` and ``node``)."""

    __tablename__ = "events"

    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]


class ReasoningCacheEntry(Base):
    """One cached model answer (not an audit record: not chained, expires, may be cleared).

    ``key``: SHA-256 (hex) of the canonical JSON of model, effort, wire messages, tools and
    sampling parameters (:func:`chainproof.agents.reasoning_cache.cache_key`); ``response``: the
    :class:`chainproof.agents.calls.ModelCall` fields needed to answer again (output, reasoning, tool calls,
    usage, finish reason); ``expires_at``: UTC, after which the entry is a miss; ``hits``: how
    often it answered.
    """

    __tablename__ = "reasoning_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    effort: Mapped[str] = mapped_column(String(16))
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)


CHAINED_TABLES: tuple[type[Chained], ...] = (
    Step, ModelCallRecord, ToolCallRecord, ApprovalRecord, ReviewRecord, EventRecord,
)
STEP_TABLES: tuple[type[Step], type[ModelCallRecord], type[ToolCallRecord], type[ApprovalRecord], type[ReviewRecord]] = (
    Step, ModelCallRecord, ToolCallRecord, ApprovalRecord, ReviewRecord,
)
"""The chained tables whose records belong to a step (``step_no``): all but ``EventRecord``."""
