"""The audit store's append path in SQLAlchemy Core: one short transaction per append.

:class:`ChainWriter` is what :meth:`checkpoints.audit.AuditStore.append` runs. It replaces an ORM
``Session`` per append (identity map, unit of work, a ``runs`` lookup and a chain-head query over
every seq of the run) by, in one transaction on one connection:

1. the run's facts (exists, zero data retention) from a per-store cache of the immutable ``runs``
   columns, queried once per run id;
2. the chain head: per chained table the row with the highest ``seq`` of the run, read through the
   ``(run_id, seq)`` unique index (one probe per table, independent of the chain's length);
3. one ``INSERT`` per record, with the same parameters the ORM's flush sends (the attributes set on
   the record; column defaults apply to the others), after hashing the record's content exactly as
   before (:func:`checkpoints.audit_hashing.record_hash` over the same ORM attributes).

The records stay the caller's (transient) ORM objects, updated with ``run_id``, ``seq``,
``prev_hash``, ``created_at``, ``record_hash``, their new ``id`` and any column default applied.
Serialisation across processes is unchanged (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
``pg_advisory_xact_lock`` on the run id); within a process the store's lock serialises appends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, Select, bindparam, insert, select, text, union_all

from chainproof.checkpoints.audit_hashing import Redactor, record_hash, zdr_minimise
from chainproof.checkpoints.audit_schema import CHAINED_TABLES, GENESIS, Chained, Run, utcnow
from chainproof.errors import AuditError


def _head_statement() -> Select[Any]:
    """``(seq, record_hash)`` of each chained table's last record of ``:run_id`` (at most one row per
    table, each read from the top of the table's ``(run_id, seq)`` index)."""
    parts = []
    for model in CHAINED_TABLES:
        table = model.__table__  # type: ignore[attr-defined]
        last = (select(table.c.seq, table.c.record_hash).where(table.c.run_id == bindparam("run_id"))
                .order_by(table.c.seq.desc()).limit(1).subquery())
        parts.append(select(last.c.seq, last.c.record_hash))
    union = union_all(*parts).subquery()
    return select(union.c.seq, union.c.record_hash)


_HEAD = _head_statement()
_RUN_ZDR = select(Run.__table__.c.zdr).where(Run.__table__.c.run_id == bindparam("run_id"))
_INSERTS = {model: insert(model.__table__) for model in CHAINED_TABLES}  # type: ignore[attr-defined]
_COLUMNS = {model: tuple(c.key for c in model.__table__.columns if c.key != "id")  # type: ignore[attr-defined]
            for model in CHAINED_TABLES}


def chain_head(conn: Connection, run_id: str) -> tuple[int, str]:
    """``(seq, record_hash)`` of the run's last chained record, ``(0, GENESIS)`` for none."""
    rows = conn.execute(_HEAD, {"run_id": run_id}).all()
    if not rows:
        return 0, GENESIS
    seq, head = max(rows, key=lambda r: r[0])
    return int(seq), str(head)


class ChainWriter:
    """Appends hash-chained records to runs of the database behind ``engine`` (see the module
    docstring). Not thread-safe by itself: the caller serialises appends (``AuditStore`` holds its
    lock around :meth:`append`)."""

    def __init__(self, engine: Engine, redactor: Redactor):
        self.engine = engine
        self.redactor = redactor
        self._zdr: dict[str, bool] = {}  # run id -> zdr (runs rows are never updated)
        self._postgres = engine.dialect.name == "postgresql"

    def _run_zdr(self, conn: Connection, run_id: str) -> bool:
        zdr = self._zdr.get(run_id)
        if zdr is None:
            found = conn.execute(_RUN_ZDR, {"run_id": run_id}).first()
            if found is None:
                raise AuditError(f"unknown run {run_id}: start_run() first")
            zdr = self._zdr[run_id] = bool(found[0])
        return zdr

    def append(self, run_id: str, records: tuple[Chained, ...],
               guard: Callable[[Connection], None] | None = None) -> list[Chained]:
        """Append ``records`` to ``run_id``'s chain in one transaction; ``guard(conn)`` runs inside it
        (after the run lock, before the head is read) and may raise to write nothing."""
        with self.engine.begin() as conn:
            if self._postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:r))"), {"r": run_id})
            zdr = self._run_zdr(conn, run_id)
            if guard is not None:
                guard(conn)
            seq, prev = chain_head(conn, run_id)
            for rec in records:
                seq += 1
                for key, value in list(vars(rec).items()):
                    if not key.startswith("_") and isinstance(value, (str, dict, list)):
                        if zdr and key in rec.__zdr_fields__:
                            value = zdr_minimise(value, self.redactor)
                        setattr(rec, key, self.redactor(value))
                rec.run_id, rec.seq, rec.prev_hash = run_id, seq, prev
                rec.created_at = utcnow()
                rec.record_hash = record_hash(rec)
                prev = rec.record_hash
                self._insert(conn, rec)
        return list(records)

    @staticmethod
    def _insert(conn: Connection, rec: Chained) -> None:
        """INSERT ``rec`` with the columns set on it (as the ORM's flush would), then give it the id
        and the column defaults the database row got."""
        model = type(rec)
        state = vars(rec)
        params = {key: state[key] for key in _COLUMNS[model] if key in state}
        result = conn.execute(_INSERTS[model], params)
        rec.id = result.inserted_primary_key[0]  # type: ignore[index]
        inserted = result.last_inserted_params()  # one row's parameters (a dict) for a one-row INSERT
        for key, value in (inserted.items() if not isinstance(inserted, list) else ()):
            if key not in state and key != "id":
                setattr(rec, key, value)


__all__ = ["ChainWriter", "chain_head"]
