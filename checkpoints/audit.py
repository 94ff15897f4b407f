"""The audit store: one writer that appends hash-chained records, and the queries auditors run.

SQLite (default, WAL mode) or any SQLAlchemy URL (PostgreSQL: ``postgresql+psycopg://…``).
The schema is created and upgraded by Alembic on open (``migrate=True``), or only checked to be
current (``migrate="check"``, for read-only commands; see ``checkpoints/audit_db.py``). Nothing
here updates or deletes a row.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, func, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from chainproof.checkpoints.audit_db import (
    HEAD_REVISION,
    MEMORY_URL,
    check_schema,
    make_engine,
    normalise_url,
    schema_revision,
    upgrade_schema,
)
from chainproof.checkpoints.audit_hashing import Redactor, run_header_hash, zdr_stub
from chainproof.checkpoints.audit_schema import (
    CHAINED_TABLES,
    ApprovalRecord,
    Base,
    Chained,
    EventRecord,
    ModelCallRecord,
    Run,
    utcnow,
)
from chainproof.checkpoints.audit_writer import ChainWriter, Rider
from chainproof.errors import AlreadyDecided, AuditError


def _lifecycle():
    """Events that set a run's status (``run_*``); model_retry / failover events do not."""
    return EventRecord.kind.startswith("run_", autoescape=True)


@dataclass(frozen=True)
class Spend:
    """Model spend over some calls: ``usd`` sums the priced calls (USD); ``unpriced`` counts calls
    whose cost is unknown (a model without a price), so ``usd`` is then a lower bound."""

    usd: float
    unpriced: int = 0


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` -> the calendar month's [start, end) in UTC. Raises ``ValueError`` naming
    ``month`` for anything else."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"month: expected YYYY-MM, got {month!r}") from None
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


class AuditStore:
    """Open (and migrate) the audit database at ``url``; append and query records.

    ``redactor`` holds the secret patterns (default: the built-in ones); every string written
    goes through it. Thread-safe: appends are serialised per store, and across processes by the
    database (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``pg_advisory_xact_lock`` on the run id).
    """

    def __init__(self, url: str, *, migrate: bool | Literal["check"] = True, redactor: Redactor | None = None):
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        if migrate == "check":
            check_schema(self.engine, url)  # SchemaOutdated (exit 2) naming `chainproof db upgrade`
        elif migrate:
            upgrade_schema(self.engine)
        self.redactor = redactor or Redactor()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.Lock()
        self._writer = ChainWriter(self.engine, self.redactor)

    @classmethod
    def scratch(cls, redactor: Redactor | None = None) -> AuditStore:
        """A throwaway in-memory store (SQLite ``:memory:``, tables created from the models, no
        migrations): replay records into one so the original run is never written."""
        store = cls(MEMORY_URL, migrate=False, redactor=redactor)
        Base.metadata.create_all(store.engine)
        return store

    def close(self) -> None:
        self.engine.dispose()

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
        run the same way (pricing table, routing settings, reasoning cache on/off), merged in.

        ``zdr``: zero-data-retention run (the goal and every ``__zdr_fields__`` column of its records
        are stored as stubs, see :func:`chainproof.checkpoints.audit_hashing.zdr_stub`). ``parent_run_id`` and
        ``forked_at_step``: for a fork (``chainproof fork``), the run it was forked from and the
        parent's step it continues after (both in the header hash). Raises ``AuditError`` if the
        run exists."""
        with self._lock, self.session() as s, s.begin():
            if s.get(Run, run_id) is not None:
                raise AuditError(f"run {run_id} already exists in the audit store")
            run = Run(
                run_id=run_id,
                graph=graph,
                goal=self.redactor(zdr_stub(goal, self.redactor) if zdr else goal),
                inputs=self.redactor(inputs),
                company=self.redactor(company) if company else company,
                department=department,
                started_by=started_by,
                created_at=utcnow(),
                zdr=zdr,
                parent_run_id=parent_run_id,
                forked_at_step=forked_at_step,
            )
            s.add(run)
            header = run_header_hash(run)
        self.append(run_id, EventRecord(kind="run_started", detail={
            "graph": graph, "started_by": started_by, "zdr": zdr, "effort_override": effort_override,
            "budget": budget, **(settings or {}), "run_header_hash": header,
        }))

    def append(self, run_id: str, *records: Chained, riders: Sequence[Rider] = ()) -> list[Chained]:
        """Append ``records`` (unsaved ORM objects of chained tables) to ``run_id``'s chain in one
        transaction: assigns ``seq``, ``prev_hash``, ``created_at`` and ``record_hash``. ``riders``
        on this store's engine (reasoning-cache entries of the step) are written in the same
        transaction (see :class:`chainproof.checkpoints.audit_writer.ChainWriter`).

        String and JSON fields are redacted of secrets before hashing; in a zero-data-retention run
        the record's ``__zdr_fields__`` are replaced by stubs first (hash of the raw text plus a
        redacted excerpt). This is the only code that writes chained rows. Raises ``AuditError`` for
        an unknown run."""
        return self._append(run_id, records, riders=riders)

    def append_decision(self, run_id: str, decision: ApprovalRecord, *records: Chained) -> list[Chained]:
        """Append a decision row on an approval request (and ``records``) only if the request has
        no decision yet; otherwise raise :class:`AlreadyDecided` and write nothing.

        The check runs inside the append transaction, under the lock that serialises appends to
        the run (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``pg_advisory_xact_lock``), so of two
        processes deciding the same request at once exactly one succeeds."""
        if decision.action == "requested":
            raise AuditError("append_decision: a decision's action cannot be 'requested'")

        def guard(conn: Connection) -> None:
            with Session(bind=conn) as s:
                existing = self._decision(s, decision.request_id)
            if existing is not None:
                raise AlreadyDecided(existing)

        return self._append(run_id, (decision, *records), guard)

    def _append(self, run_id: str, records: tuple[Chained, ...], guard: Any = None,
                riders: Sequence[Rider] = ()) -> list[Chained]:
        with self._lock:
            return self._writer.append(run_id, records, guard, riders)

    # ----------------------------------------------------------------- queries
    @staticmethod
    def _decision(s: Session, request_id: str) -> ApprovalRecord | None:
        return s.scalars(
            select(ApprovalRecord).where(ApprovalRecord.request_id == request_id, ApprovalRecord.action != "requested")
            .order_by(ApprovalRecord.seq).limit(1)
        ).first()

    def decisions_by_run(self, run_ids: list[str]) -> dict[str, list[ApprovalRecord]]:
        """The human decisions (approve / reject / edit) of each run in ``run_ids``, in record
        order; runs without one are absent."""
        out: dict[str, list[ApprovalRecord]] = {}
        if not run_ids:
            return out
        with self.session() as s:
            rows = s.scalars(select(ApprovalRecord).where(ApprovalRecord.run_id.in_(run_ids),
                                                          ApprovalRecord.action != "requested").order_by(ApprovalRecord.seq))
            for row in rows:
                out.setdefault(row.run_id, []).append(row)
        return out

    def open_requests(self, limit: int = 200) -> list[tuple[Run, list[ApprovalRecord]]]:
        """Open approval requests read from the record alone (no graph, no checkpointer): for each
        of the ``limit`` newest runs whose latest lifecycle event is ``run_paused``, its
        ``requested`` rows that have no decision row yet, oldest first; ``(run, rows)``, newest run
        first, runs without an open request left out. A row's ``payload`` is the request as the
        approver saw it (``question``, ``subject``, ``reasons``, ``proposed``, ``created_at``)."""
        paused = [run for run, status, _ in self.list_runs(limit=limit) if status == "paused"]
        if not paused:
            return []
        with self.session() as s:
            rows = list(s.scalars(select(ApprovalRecord).where(ApprovalRecord.run_id.in_([r.run_id for r in paused]))
                                  .order_by(ApprovalRecord.seq)))
        decided = {r.request_id for r in rows if r.action != "requested"}
        by_run: dict[str, list[ApprovalRecord]] = {}
        for r in rows:
            if r.action == "requested" and r.request_id not in decided:
                by_run.setdefault(r.run_id, []).append(r)
        return [(run, by_run[run.run_id]) for run in paused if run.run_id in by_run]

    def decision_for(self, request_id: str) -> ApprovalRecord | None:
        """The decision row (approve / reject / edit) on approval request ``request_id``, or None."""
        with self.session() as s:
            return self._decision(s, request_id)

    def request_record(self, request_id: str) -> ApprovalRecord | None:
        """The ``requested`` row of approval request ``request_id`` in any run, or None."""
        with self.session() as s:
            return s.scalars(
                select(ApprovalRecord).where(ApprovalRecord.request_id == request_id, ApprovalRecord.action == "requested")
                .limit(1)
            ).first()

    def last_event(self, run_id: str, kind: str) -> EventRecord | None:
        """The latest event of ``kind`` (e.g. ``run_paused``) in ``run_id``, or None."""
        with self.session() as s:
            return s.scalars(
                select(EventRecord).where(EventRecord.run_id == run_id, EventRecord.kind == kind)
                .order_by(EventRecord.seq.desc()).limit(1)
            ).first()

    def run_cost_usd(self, run_id: str) -> float | None:
        """The run's model cost so far in USD (sum of ``model_calls.cost_usd``); None when any call
        has no cost (prices not configured). 0.0 for a run without model calls."""
        with self.session() as s:
            costs = list(s.scalars(select(ModelCallRecord.cost_usd).where(ModelCallRecord.run_id == run_id)))
        known = [c for c in costs if c is not None]
        if len(known) < len(costs):
            return None
        return float(sum(known))

    def _spend(self, *where: Any) -> Spend:
        with self.session() as s:
            rows = list(s.execute(select(ModelCallRecord.cost_usd).join(Run, Run.run_id == ModelCallRecord.run_id)
                                  .where(*where)))
        return Spend(round(float(sum(c for (c,) in rows if c is not None)), 10), sum(c is None for (c,) in rows))

    def run_spend(self, run_id: str) -> Spend:
        """The run's model spend so far (cache hits cost 0)."""
        return self._spend(ModelCallRecord.run_id == run_id)

    def department_spend(self, department: str, month: str) -> Spend:
        """Model spend of every run of ``department`` (or project) with calls made in calendar
        month ``month`` (``YYYY-MM``, UTC). Raises ``ValueError`` for a malformed month."""
        start, end = month_bounds(month)
        return self._spend(Run.department == department, ModelCallRecord.created_at >= start,
                           ModelCallRecord.created_at < end)

    def model_calls_of(self, *, run_id: str | None = None, department: str | None = None,
                       month: str | None = None) -> list[ModelCallRecord]:
        """Model-call rows of one run, or of a department's runs in a month (``YYYY-MM``), by seq."""
        where: list[Any] = []
        if run_id is not None:
            where.append(ModelCallRecord.run_id == run_id)
        if department is not None:
            where.append(Run.department == department)
        if month is not None:
            start, end = month_bounds(month)
            where += [ModelCallRecord.created_at >= start, ModelCallRecord.created_at < end]
        with self.session() as s:
            return list(s.scalars(select(ModelCallRecord).join(Run, Run.run_id == ModelCallRecord.run_id)
                                  .where(*where).order_by(ModelCallRecord.run_id, ModelCallRecord.seq)))

    def events_of(self, run_id: str, kind: str) -> list[EventRecord]:
        """Every event of ``kind`` in ``run_id``, in order."""
        with self.session() as s:
            return list(s.scalars(select(EventRecord).where(EventRecord.run_id == run_id, EventRecord.kind == kind)
                                  .order_by(EventRecord.seq)))

    def get_run(self, run_id: str) -> Run | None:
        with self.session() as s:
            return s.get(Run, run_id)

    def records(self, run_id: str) -> list[Chained]:
        """Every chained record of ``run_id`` ordered by ``seq`` (the trace)."""
        with self.session() as s:
            rows: list[Chained] = []
            for table in CHAINED_TABLES:
                rows.extend(s.scalars(select(table).where(table.run_id == run_id)))
        return sorted(rows, key=lambda r: r.seq)

    def run_ids(self) -> list[str]:
        """Every run id, oldest run first, then the ids of chained records whose run header is gone
        (so ``verify --all`` reports a deleted header instead of skipping its run)."""
        with self.session() as s:
            ids = list(s.scalars(select(Run.run_id).order_by(Run.created_at, Run.run_id)))
            orphans = set(s.scalars(union_all(*(select(t.run_id).distinct() for t in CHAINED_TABLES)))) - set(ids)
        return ids + sorted(orphans)

    def records_of(self, run_id: str, table: type[Chained]) -> list[Any]:
        with self.session() as s:
            return list(s.scalars(select(table).where(table.run_id == run_id).order_by(table.seq)))

    def run_status(self, run_id: str) -> str | None:
        """The kind of the run's latest lifecycle event without its ``run_`` prefix
        (``started``, ``paused``, ``resumed``, ``completed``, ``failed``), or None."""
        with self.session() as s:
            kind = s.scalar(
                select(EventRecord.kind).where(EventRecord.run_id == run_id, _lifecycle())
                .order_by(EventRecord.seq.desc()).limit(1)
            )
        return kind.removeprefix("run_") if kind else None

    def list_runs(self, limit: int = 50) -> list[tuple[Run, str | None, datetime | None]]:
        """Newest runs first: ``(run, status, last_event_at)``."""
        with self.session() as s:
            runs = list(s.scalars(select(Run).order_by(Run.created_at.desc()).limit(limit)))
            latest = (
                select(EventRecord.run_id, func.max(EventRecord.seq).label("seq"))
                .where(_lifecycle())
                .group_by(EventRecord.run_id)
                .subquery()
            )
            status = {
                r.run_id: (r.kind, r.created_at)
                for r in s.execute(
                    select(EventRecord.run_id, EventRecord.kind, EventRecord.created_at).join(
                        latest, (EventRecord.run_id == latest.c.run_id) & (EventRecord.seq == latest.c.seq)
                    )
                )
            }
        out = []
        for run in runs:
            kind, at = status.get(run.run_id, (None, None))
            out.append((run, kind.removeprefix("run_") if kind else None, at))
        return out


__all__ = ["HEAD_REVISION", "AlreadyDecided", "AuditError", "AuditStore", "MEMORY_URL", "Spend", "check_schema",
           "make_engine", "month_bounds", "schema_revision", "upgrade_schema"]
