"""The audit store: one writer that appends hash-chained records, and the queries auditors run.

SQLite (default, WAL mode) or any SQLAlchemy URL (PostgreSQL: ``postgresql+psycopg://…``).
The schema is created and upgraded by Alembic on open (``migrate=True``), or only checked to be
current (``migrate="check"``, for read-only commands; see ``checkpoints/audit_db.py``). Nothing
here updates or deletes a row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.orm import Session, sessionmaker

from chainproof import _killpoints
from chainproof.checkpoints.audit_db import (
    HEAD_REVISION,
    MEMORY_URL,
    check_schema,
    make_engine,
    schema_revision,
    upgrade_schema,
)
from chainproof.checkpoints.audit_hashing import Redactor, run_header_hash, zdr_stub
from chainproof.checkpoints.audit_read import RECORD_TYPES, AuditReader, Spend, decision_statement, month_bounds
from chainproof.checkpoints.audit_schema import ApprovalRecord, Base, Chained, EventRecord, Run, utcnow
from chainproof.checkpoints.audit_tables import check_lengths, runs
from chainproof.checkpoints.audit_writer import ChainWriter, Rider
from chainproof.checkpoints.journal import Journal
from chainproof.errors import AlreadyDecided, AuditError

_STRIPES = 256
"""Per-run append locks of a PostgreSQL store (see :meth:`AuditStore._append_lock`)."""


class AuditStore(AuditReader):
    """Open (and migrate) the audit database at ``url``; append records, and query them
    (the queries of :class:`~chainproof.checkpoints.audit_read.AuditReader`, which return
    read-only :class:`~chainproof.checkpoints.audit_read.Record` rows).

    ``redactor`` holds the secret patterns (default: the built-in ones); every string written
    goes through it. Thread-safe: appends are serialised per store on SQLite, per run on PostgreSQL
    (:meth:`_append_lock`), and across processes by the database (SQLite ``BEGIN IMMEDIATE``;
    PostgreSQL ``pg_advisory_xact_lock`` on the run id, then a store-wide one for the Merkle log).
    """

    def __init__(self, url: str, *, migrate: bool | Literal["check"] = True, redactor: Redactor | None = None,
                 require_signature: bool = True, pool_size: int | None = None, trust: Any = None):
        super().__init__(url, migrate=migrate, require_signature=require_signature,
                         pool_size=pool_size, trust=trust)  # "check": SchemaOutdated (exit 2) naming `chainproof db upgrade`
        self.redactor = redactor or Redactor()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.Lock()
        # PostgreSQL serialises appends itself (the run's and the log's advisory locks), so this
        # process only keeps one run's appends in order (its journal tail follows them): a lock per
        # run (striped), not one for the store. Measured on a worker advancing 10 runs at once, the
        # store-wide lock was waited on ~47 ms per append, 40 % of the advancing threads' time.
        self._run_locks = [threading.Lock() for _ in range(_STRIPES)] if self.engine.dialect.name == "postgresql" else None
        self._writer = ChainWriter(self.engine, self.redactor)
        self.journal = Journal(self.engine, self.redactor, self._lock)  # step attempts, side-effect calls (crash safety)
        self.head_publisher: Callable[[Engine], dict[str, Any]] | None = None

    def publish_head(self) -> dict[str, Any] | None:
        """Sign the Merkle log's tree head and publish it to the head sinks through
        ``head_publisher`` (set from the settings' ``log`` section by ``Chainproof``); None when
        there is none (a scratch or bare store). Raises ``LogInconsistent`` (nothing signed) when
        the log no longer extends a head a sink already holds."""
        return self.head_publisher(self.engine) if self.head_publisher is not None else None

    @classmethod
    def scratch(cls, redactor: Redactor | None = None) -> AuditStore:
        """A throwaway in-memory store (SQLite ``:memory:``, tables created from the models, no
        migrations): replay records into one so the original run is never written."""
        store = cls(MEMORY_URL, migrate=False, redactor=redactor)
        Base.metadata.create_all(store.engine)
        return store

    def session(self) -> Session:
        return self._sessions()

    # ------------------------------------------------------------------ writes
    def start_run(
        self,
        run_id: str,
        *,
        graph: str,
        goal: str,
        inputs: dict[str, Any],
        company: str | None = None,
        department: str | None = None,
        started_by: str | None = None,
        zdr: bool = False,
        effort_override: str | None = None,
        budget: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        parent_run_id: str | None = None,
        forked_at_step: int | None = None,
    ) -> None:
        """Insert the run header and its ``run_started`` event, whose ``detail`` holds the header's
        hash (``run_header_hash``, so ``verify`` covers the header), the run's
        ``effort_override``, step and cost ``budget`` and the other ``settings`` a replay needs to
        run the same way (pricing table, routing settings, reasoning cache on/off), merged in. The
        header and the event are written in one transaction: a process killed while starting a run
        leaves both or neither (never a header without ``run_started``).

        ``zdr``: zero-data-retention run (the goal and every ``__zdr_fields__`` column of its records
        are stored as stubs, see :func:`chainproof.checkpoints.audit_hashing.zdr_stub`). ``parent_run_id`` and
        ``forked_at_step``: for a fork (``chainproof fork``), the run it was forked from and the
        parent's step it continues after (both in the header hash). Raises ``AuditError`` if the
        run exists."""
        run = Run(
            run_id=run_id,
            graph=graph,
            goal=self.redactor(zdr_stub(goal, self.redactor) if zdr else goal),
            inputs=self.redactor(inputs),
            company=self.redactor(company) if company else company,
            department=self.redactor(department) if department else department,
            started_by=self.redactor(started_by) if started_by else started_by,
            created_at=utcnow(),
            zdr=zdr,
            parent_run_id=parent_run_id,
            forked_at_step=forked_at_step,
        )
        header = {c.key: getattr(run, c.key) for c in runs.columns}
        check_lengths(runs, header)
        event = EventRecord(kind="run_started", detail={
            "graph": graph, "started_by": started_by, "zdr": zdr, "effort_override": effort_override,
            "budget": budget, **(settings or {}), "run_header_hash": run_header_hash(run),
        })

        def insert_header(conn: Connection) -> None:
            if conn.execute(runs.select().where(runs.c.run_id == run_id)).first() is not None:
                raise AuditError(f"run {run_id} already exists in the audit store")
            conn.execute(insert(runs).values(header))

        self._append(run_id, (event,), before=insert_header)

    def append(self, run_id: str, *records: Chained, riders: Sequence[Rider] = (),
               prepare: Callable[[Connection, int], None] | None = None) -> list[Chained]:
        """Append ``records`` (unsaved ORM objects of chained tables) to ``run_id``'s chain in one
        transaction: assigns ``seq``, ``prev_hash``, ``created_at`` and ``record_hash``. ``riders``
        on this store's engine (reasoning-cache entries of the step) are written in the same
        transaction (see :class:`chainproof.checkpoints.audit_writer.ChainWriter`).

        String and JSON fields are redacted of secrets before hashing; in a zero-data-retention run
        the record's ``__zdr_fields__`` are replaced by stubs first (hash of the raw text plus a
        redacted excerpt). This is the only code that writes chained rows. ``prepare(conn, head_seq)``:
        see :meth:`chainproof.checkpoints.audit_writer.ChainWriter.append`. Raises ``AuditError`` for
        an unknown run."""
        return self._append(run_id, records, riders=riders, prepare=prepare)

    def append_decision(self, run_id: str, decision: ApprovalRecord, *records: Chained) -> list[Chained]:
        """Append a decision row on an approval request (and ``records``) only if the request has
        no decision yet; otherwise raise :class:`AlreadyDecided` and write nothing.

        The check runs inside the append transaction, under the lock that serialises appends to
        the run (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``pg_advisory_xact_lock``), so of two
        processes deciding the same request at once exactly one succeeds."""
        if decision.action == "requested":
            raise AuditError("append_decision: a decision's action cannot be 'requested'")

        def guard(conn: Connection) -> None:
            existing = conn.execute(decision_statement(decision.request_id)).first()
            if existing is not None:
                raise AlreadyDecided(RECORD_TYPES["approvals"](dict(existing._mapping)))

        return self._append(run_id, (decision, *records), guard)

    def _append_lock(self, run_id: str) -> threading.Lock:
        """What serialises this process's appends to ``run_id``: on PostgreSQL a lock of the run's
        (one of ``_STRIPES``, by the run id's hash), so appends to other runs proceed at once;
        otherwise the store's (SQLite takes one writer at a time; an in-memory store has one connection)."""
        if self._run_locks is None:
            return self._lock
        return self._run_locks[hash(run_id) % _STRIPES]

    def _append(self, run_id: str, records: tuple[Chained, ...], guard: Any = None,
                riders: Sequence[Rider] = (), before: Any = None, prepare: Any = None) -> list[Chained]:
        with self._append_lock(run_id):
            _killpoints.reach("audit.before")
            written = self._writer.append(run_id, records, guard, riders, before, prepare)
            self.journal.observe(run_id, written)  # the crash journal follows the chain's head
            _killpoints.reach("audit.after")
            return written


__all__ = ["HEAD_REVISION", "AlreadyDecided", "AuditError", "AuditReader", "AuditStore", "MEMORY_URL", "Spend",
           "check_schema", "make_engine", "month_bounds", "schema_revision", "upgrade_schema"]
