"""The audit store's tables in SQLAlchemy Core: the one definition of its columns.

Read-only paths (``runs``, ``show``, ``verify``, ``pending``, ``costs``; the queries of
:mod:`chainproof.checkpoints.audit_read`) use these tables alone, so they never import
``sqlalchemy.orm`` (about 0.1 s of start-up, measured by ``bench/cli.py``). The ORM classes the
writer builds records with (:mod:`chainproof.checkpoints.audit_schema`) are mapped onto the same
``Table`` objects (SQLAlchemy's "declarative with imperative table"). Changes go through Alembic
migrations (``checkpoints/migrations``); never edit a released migration.

Every table but ``runs`` (and the ``reasoning_cache``) is a *chained* record: within one run,
records of all chained tables form one sequence ``seq = 1, 2, …``; each stores ``prev_hash``
(the previous record's ``record_hash``, :data:`GENESIS` for the first) and its own
``record_hash`` (:func:`chainproof.checkpoints.audit_hashing.record_hash`).

Per chained table (by table name):

* :data:`ZDR_FIELDS`: columns holding prompt or model text; in zero-data-retention runs every
  string in them longer than ``ZDR_EXCERPT_CHARS`` is stored as a stub (redacted excerpt + SHA-256).
* :data:`REPLAY_IGNORE`: columns that legitimately differ when a run is replayed (timings, ids,
  timestamps), so replay does not compare them.
* :data:`OPTIONAL_COLUMNS`: columns added by a later migration. They are part of a row's hashed
  content only when set (not NULL), so rows written before the column existed keep their hash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

GENESIS = "0" * 64
"""The ``prev_hash`` of a run's first chained record."""


def utcnow() -> datetime:
    """Now, timezone-aware UTC (the default of every ``created_at``)."""
    return datetime.now(UTC)


metadata: MetaData = MetaData()

_TS = DateTime(timezone=True)

runs = Table(
    "runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("graph", String(100), nullable=False),
    Column("goal", Text, nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("company", String(64), index=True),
    Column("department", String(100), index=True),
    Column("started_by", String(200), index=True),
    Column("created_at", _TS, nullable=False, default=utcnow, index=True),
    # zero-data-retention run: prompt and model text is stored as hashes and short redacted excerpts
    Column("zdr", Boolean, nullable=False, default=False, server_default=false()),
    # for a fork (`chainproof fork`): the run it was forked from, and the parent's step it starts after
    Column("parent_run_id", String(64), index=True, default=None),
    Column("forked_at_step", Integer, default=None),
)
"""One run of a graph (= one LangGraph thread; ``run_id`` is the ``thread_id``)."""


def _chained(name: str, *columns: Column, by_time: bool = False) -> Table:
    """A chained table: ``columns``, then the link columns every chained record has. ``by_time``:
    index ``created_at`` (only for a table queried by time: an index costs bytes on every append)."""
    return Table(
        name, metadata, *columns,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("seq", Integer, nullable=False),
        Column("created_at", _TS, nullable=False, default=utcnow),
        Column("prev_hash", String(64), nullable=False),
        Column("record_hash", String(64), nullable=False),
        Column("run_id", String(64), ForeignKey("runs.run_id"), nullable=False),
        UniqueConstraint("run_id", "seq", name=f"uq_{name}_run_seq"),
        *([Index(f"ix_{name}_created_at", "created_at")] if by_time else []),
    )


def _tokens(*names: str, default: bool) -> list[Column]:
    return [Column(n, Integer, nullable=False, default=0 if default else None) for n in names]


steps = _chained(
    "steps",
    Column("step_no", Integer, nullable=False),
    Column("node", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("title", String(300), nullable=False),
    Column("status", String(16), nullable=False),  # ok | error
    Column("effort", String(16)),
    Column("effort_reason", String(300)),
    Column("model", String(200)),
    Column("inputs", JSON, nullable=False),
    Column("output", JSON, nullable=False),
    *_tokens("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", default=True),
    Column("cost_usd", Float),
    Column("started_at", _TS, nullable=False),
    Column("duration_s", Float, nullable=False),
)
"""One node execution (one LangGraph super-step of the chain)."""

model_calls = _chained(
    "model_calls",
    Column("step_no", Integer, nullable=False),
    Column("node", String(64), nullable=False),
    Column("model", String(200), nullable=False, index=True),
    Column("effort", String(16), nullable=False),
    Column("prompt_hash", String(64), nullable=False),
    Column("messages", JSON, nullable=False),
    Column("output", Text, nullable=False),
    Column("reasoning", Text, nullable=False),
    Column("tool_calls", JSON, nullable=False),
    *_tokens("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", default=False),
    Column("latency_s", Float, nullable=False),
    Column("finish_reason", String(32)),
    Column("attempt", Integer, nullable=False),
    Column("cost_usd", Float),
    Column("cache_hit", Boolean, nullable=True),
    by_time=True,  # a department's spend by month (audit_read.AuditReader.department_spend)
)
"""One request to a chat model, or one answer served by the reasoning cache (see
:class:`chainproof.checkpoints.audit_schema.ModelCallRecord`)."""

tool_calls = _chained(
    "tool_calls",
    Column("step_no", Integer, nullable=False),
    Column("node", String(64), nullable=False),
    Column("tool", String(100), nullable=False, index=True),
    Column("args", JSON, nullable=False),
    Column("result", JSON),
    Column("error", Text),
    Column("latency_s", Float, nullable=False),
)
"""One tool invocation with its arguments and its result or error."""

approvals = _chained(
    "approvals",
    Column("step_no", Integer, nullable=False),
    Column("request_id", String(64), nullable=False, index=True),
    Column("action", String(16), nullable=False),  # requested | approve | reject | edit
    Column("approver", String(200), index=True),
    Column("comment", Text),
    Column("proposed_hash", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    # a signed decision: {"key_id", "signature", "signed": {the signed fields}} (revision 0007;
    # checkpoints/_approver_keys.py); None for requests and unsigned decisions
    Column("signature", JSON),
)
"""A human-approval request (``action='requested'``) or a decision on one."""

reviews = _chained(
    "reviews",
    Column("step_no", Integer, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("drift_assessment", Text),
    Column("inputs", JSON, nullable=False),
    Column("effort", String(16)),
    *_tokens("input_tokens", "output_tokens", "reasoning_tokens", default=True),
)
"""A goal review (see :class:`chainproof.checkpoints.audit_schema.ReviewRecord`)."""

events = _chained(
    "events",
    Column("kind", String(32), nullable=False),
    Column("detail", JSON, nullable=False),
)
"""Run lifecycle (``run_*``) and model-access events."""

reasoning_cache = Table(
    "reasoning_cache", metadata,
    Column("key", String(64), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("effort", String(16), nullable=False),
    Column("response", JSON, nullable=False),
    Column("created_at", _TS, nullable=False, default=utcnow),
    Column("expires_at", _TS, nullable=False, index=True),
    Column("hits", Integer, nullable=False, default=0),
)
"""Cached model answers (not an audit record: not chained, expires, may be cleared)."""

LEAF_TABLE_CODES: dict[str, int] = {"steps": 1, "model_calls": 2, "tool_calls": 3, "approvals": 4, "reviews": 5,
                                     "events": 6}
"""``merkle_leaves.record_table``: the code of each chained table (stored in every leaf row; never renumber)."""

merkle_leaves = Table(
    "merkle_leaves", metadata,
    Column("idx", Integer, primary_key=True, autoincrement=False),  # leaf index, 0, 1, 2, … in append order
    Column("record_table", SmallInteger, nullable=False),  # LEAF_TABLE_CODES
    Column("record_id", Integer, nullable=False),  # the record's id in that table (no foreign key)
)
"""The Merkle log over every chained record of every run, in append order (one row per leaf,
written in the record's transaction; :mod:`chainproof.checkpoints.merkle_log`). Not a chained
table. A row names the record it covers, not its leaf hash: the leaf hash is a function of the
record (:func:`chainproof.checkpoints.merkle_log.record_leaf`), computed when the log is read, so a
leaf costs about 10 bytes on SQLite (``idx`` is the rowid). The head sinks keep the leaf hashes
outside the database."""

_OPTIONS = {"started_by": "--as", "approver": "--as", "department": "--department", "request_id": "--request",
            "company": "the graph's subject"}


def _limits(table: Table) -> tuple[tuple[str, int], ...]:
    return tuple((c.key, c.type.length) for c in table.columns if isinstance(c.type, String) and c.type.length)


def check_lengths(table: Table, values: Any) -> None:
    """Refuse a text longer than its column holds: ``String(n)`` means ``n`` characters on every
    backend (SQLite would store more, PostgreSQL refuses it with its own error). ``values``: a
    mapping of column key -> value. Raises :class:`~chainproof.errors.FieldTooLong` naming the
    field, its command-line option when it has one, the limit and the length."""
    from chainproof.errors import FieldTooLong

    for key, length in _LIMITS[table.name]:
        value = values.get(key)
        if isinstance(value, str) and len(value) > length:
            label = f"{_OPTIONS[key]} ({key})" if key in _OPTIONS else f"{table.name}.{key}"
            raise FieldTooLong(f"{label}: at most {length} characters, got {len(value):,}; nothing was recorded")


accounts = Table(
    "accounts", metadata,
    Column("account_id", String(32), primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("roles", JSON, nullable=False),  # app roles (analyst, approver, auditor, admin) and policy roles
    Column("department", String(100)),
    Column("password_hash", String(200), nullable=False),  # argon2id, PHC string
    Column("disabled", Boolean, nullable=False, default=False, server_default=false()),
    Column("created_at", _TS, nullable=False, default=utcnow),
    Column("countersignature", String(88)),  # the operator's Ed25519 countersignature, base64 (checkpoints/grants.py)
    Column("operator_key_id", String(16)),
)
"""A person who signs in to the web app or the CLI (``chainproof users``; not chained)."""

credentials = Table(
    "credentials", metadata,
    Column("credential_id", String(32), primary_key=True),
    Column("account_id", String(32), ForeignKey("accounts.account_id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # session | api
    Column("label", String(200)),
    Column("secret_hash", String(64), nullable=False),  # SHA-256 of the random secret; the secret is never stored
    Column("csrf_hash", String(64)),  # sessions: SHA-256 of the CSRF token
    Column("created_at", _TS, nullable=False, default=utcnow),
    Column("expires_at", _TS),
    Column("revoked_at", _TS),
    Column("countersignature", String(88)),  # the operator's Ed25519 countersignature, base64 (checkpoints/grants.py)
    Column("operator_key_id", String(16)),
)
"""A browser session or an API token of an account: hashed at rest, revocable."""

auth_events = Table(
    "auth_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("created_at", _TS, nullable=False, default=utcnow),
    Column("kind", String(32), nullable=False),
    Column("username", String(100)),
    Column("actor", String(100)),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
    Index("ix_auth_events_username_created_at", "username", "created_at"),
)
"""Sign-ins, failures, tokens and account changes: one hash chain over the store (``seq`` 1, 2, …)."""

approver_keys = Table(
    "approver_keys", metadata,
    Column("key_id", String(64), primary_key=True),  # SHA-256 of the raw Ed25519 public key, hex
    Column("approver", String(100), nullable=False, index=True),
    Column("public_key", String(64), nullable=False),  # raw 32-byte Ed25519 public key, base64
    Column("roles", JSON, nullable=False),  # policy roles the approver holds (``role:ROLE`` entries)
    Column("added_at", _TS, nullable=False, default=utcnow),
    Column("added_by", String(200), nullable=False),
    Column("removed_at", _TS),
    Column("removed_by", String(200)),
    Column("countersignature", String(88)),  # the operator's Ed25519 countersignature, base64 (checkpoints/grants.py)
    Column("operator_key_id", String(16)),
)
"""An approver's registered Ed25519 public key (``chainproof approvers add``; revision 0007).
Removing a key sets ``removed_at``: rows are never deleted, so older signatures still verify."""

approval_policies = Table(
    "approval_policies", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("graph", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("policy", JSON, nullable=False),  # an ApprovalPolicy as JSON
    Column("policy_hash", String(64), nullable=False),  # SHA-256 of the policy's canonical JSON
    Column("created_at", _TS, nullable=False, default=utcnow),
    Column("created_by", String(200), nullable=False),
    Column("countersignature", String(88)),  # the operator's Ed25519 countersignature, base64 (checkpoints/grants.py)
    Column("operator_key_id", String(16)),
    UniqueConstraint("graph", "version", name="uq_approval_policies_graph_version"),
)
"""Versioned approval policies per graph, changed only by an admin (``chainproof policy``;
revision 0007). The newest version of a graph is in force; runs bind to the version at their start."""

effect_journal = Table(
    "effect_journal", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),  # no foreign key: operational, not an audit record
    Column("step_no", Integer, nullable=False),
    Column("node", String(64), nullable=False),
    Column("call_key", String(64), nullable=False),
    Column("tool", String(100), nullable=False),
    Column("state", String(8), nullable=False),  # started | done
    Column("result", JSON),
    Column("error", Text),
    Column("started_at", _TS, nullable=False, default=utcnow),
    Column("finished_at", _TS),
    UniqueConstraint("run_id", "step_no", "node", "call_key", name="uq_effect_journal_key"),
)
"""Calls of ``side_effects=True`` tools: journaled as ``started`` before the tool runs and
``done`` with its (redacted) result or error after, so a re-executed step never runs one twice."""

worker_heartbeats = Table(
    "worker_heartbeats", metadata,
    Column("executor_id", String(200), primary_key=True),  # the worker's DBOS executor id
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", _TS, nullable=False),
    Column("last_seen", _TS, nullable=False),  # the database's clock, so hosts' clocks need not agree
    Column("recovered_at", _TS),  # when another worker took over its workflows
    Column("recovered_by", String(200)),
)
"""``chainproof worker`` processes and when each last showed it was alive
(:mod:`chainproof._heartbeats`); not chained."""

CHAINED: tuple[Table, ...] = (steps, model_calls, tool_calls, approvals, reviews, events)
"""The chained tables, in the order a run's records are read."""

_LIMITS = {table.name: _limits(table) for table in (runs, *CHAINED)}

_LINK_IGNORED = frozenset({"id", "run_id", "seq", "created_at", "prev_hash", "record_hash"})
ZDR_FIELDS: dict[str, tuple[str, ...]] = {
    "steps": ("inputs", "output"), "model_calls": ("messages", "output", "reasoning", "tool_calls"),
    "tool_calls": (), "approvals": ("payload", "comment"), "reviews": ("reason", "drift_assessment", "inputs"),
    "events": (),
}
REPLAY_IGNORE: dict[str, frozenset[str]] = {
    "steps": _LINK_IGNORED | {"started_at", "duration_s"}, "model_calls": _LINK_IGNORED | {"latency_s"},
    "tool_calls": _LINK_IGNORED | {"latency_s"},
    # the request id and the payload's timestamps are new on every execution; the proposal is
    # compared through proposed_hash
    "approvals": _LINK_IGNORED | {"request_id", "payload", "signature"}, "reviews": _LINK_IGNORED, "events": _LINK_IGNORED,
}
OPTIONAL_COLUMNS: dict[str, frozenset[str]] = {name: frozenset() for name in ZDR_FIELDS} | {
    "model_calls": frozenset({"cache_hit"}), "approvals": frozenset({"signature"})}

from chainproof.checkpoints.retention_tables import purged_leaves, purged_runs, store_settings  # noqa: E402

__all__ = ["CHAINED", "GENESIS", "LEAF_TABLE_CODES", "OPTIONAL_COLUMNS", "REPLAY_IGNORE", "ZDR_FIELDS", "accounts",
          "approval_policies", "approvals", "approver_keys", "auth_events", "check_lengths", "credentials",
          "effect_journal", "events", "merkle_leaves", "metadata", "model_calls", "purged_leaves", "purged_runs",
          "reasoning_cache", "reviews", "runs", "steps", "store_settings", "tool_calls", "utcnow", "worker_heartbeats"]
