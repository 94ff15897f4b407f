"""The audit store: one writer that appends hash-chained records, and the queries auditors run.

SQLite (default, WAL mode) or any SQLAlchemy URL (PostgreSQL: ``postgresql+psycopg://…``).
The schema is created and upgraded by Alembic on open. Nothing here updates or deletes a row.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, text, union_all
from sqlalchemy.orm import Session, sessionmaker

from checkpoints.audit_hashing import record_hash, redact
from checkpoints.audit_schema import CHAINED_TABLES, GENESIS, Chained, EventRecord, Run, utcnow


class AuditError(RuntimeError):
    """Raised for audit-store misuse, e.g. appending to a run that was never started."""


def _normalise_url(url: str) -> str:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a 30 s busy timeout and ``BEGIN IMMEDIATE`` transactions
    (so two processes appending to one run serialise instead of failing)."""
    url = _normalise_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        # pysqlite's own transaction handling is turned off so BEGIN IMMEDIATE can be issued
        # (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # pragma: no cover - trivial
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):  # pragma: no cover - trivial
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def upgrade_schema(engine: Engine) -> None:
    """Bring the database to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _lifecycle():
    """Events that set a run's status (``run_*``); model_retry / failover events do not."""
    return EventRecord.kind.startswith("run_", autoescape=True)


@dataclass(frozen=True)
class ChainHead:
    seq: int
    record_hash: str


class AuditStore:
    """Open (and migrate) the audit database at ``url``; append and query records.

    Thread-safe: appends are serialised per store, and across processes by the database
    (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``pg_advisory_xact_lock`` on the run id).
    """

    def __init__(self, url: str, *, migrate: bool = True):
        self.url = _normalise_url(url)
        self.engine = make_engine(self.url)
        if migrate:
            upgrade_schema(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._lock = threading.Lock()

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
    ) -> None:
        """Insert the run header and its ``run_started`` event. Raises ``AuditError`` if it exists."""
        with self._lock, self.session() as s, s.begin():
            if s.get(Run, run_id) is not None:
                raise AuditError(f"run {run_id} already exists in the audit store")
            s.add(
                Run(
                    run_id=run_id,
                    graph=graph,
                    goal=redact(goal),
                    inputs=redact(inputs),
                    company=company,
                    department=department,
                    started_by=started_by,
                )
            )
        self.append(run_id, EventRecord(kind="run_started", detail={"graph": graph, "started_by": started_by}))

    def append(self, run_id: str, *records: Chained) -> list[Chained]:
        """Append ``records`` (unsaved ORM objects of chained tables) to ``run_id``'s chain in one
        transaction: assigns ``seq``, ``prev_hash``, ``created_at`` and ``record_hash``.

        String and JSON fields are redacted of secrets before hashing. Raises ``AuditError`` for an
        unknown run."""
        with self._lock, self.session() as s, s.begin():
            if s.bind.dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:r))"), {"r": run_id})
            if s.get(Run, run_id) is None:
                raise AuditError(f"unknown run {run_id}: start_run() first")
            head = self._head(s, run_id)
            seq, prev = head.seq, head.record_hash
            for rec in records:
                seq += 1
                for key, value in list(vars(rec).items()):
                    if not key.startswith("_") and isinstance(value, (str, dict, list)):
                        setattr(rec, key, redact(value))
                rec.run_id, rec.seq, rec.prev_hash = run_id, seq, prev
                rec.created_at = utcnow()
                rec.record_hash = record_hash(rec)
                prev = rec.record_hash
                s.add(rec)
        return list(records)

    @staticmethod
    def _head(s: Session, run_id: str) -> ChainHead:
        parts = [
            select(t.seq.label("seq"), t.record_hash.label("h")).where(t.run_id == run_id) for t in CHAINED_TABLES
        ]
        row = s.execute(union_all(*parts).order_by(text("seq DESC")).limit(1)).first()
        return ChainHead(row.seq, row.h) if row else ChainHead(0, GENESIS)

    # ----------------------------------------------------------------- queries
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


__all__ = ["AuditError", "AuditStore", "make_engine", "upgrade_schema"]
