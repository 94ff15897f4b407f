"""The audit store's append path in SQLAlchemy Core: one short transaction per append.

:class:`ChainWriter` is what :meth:`chainproof.checkpoints.audit.AuditStore.append` runs. It replaces an ORM
``Session`` per append (identity map, unit of work, a ``runs`` lookup and a chain-head query over
every seq of the run) by, in one transaction on one connection:

1. the run's facts (exists, zero data retention) from a per-store cache of the immutable ``runs``
   columns, queried once per run id;
2. the chain head: per chained table the row with the highest ``seq`` of the run, read through the
   ``(run_id, seq)`` unique index (one probe per table, independent of the chain's length);
3. one ``INSERT`` per record, with the same parameters the ORM's flush sends (the attributes set on
   the record; column defaults apply to the others), after hashing the record's content exactly as
   before (:func:`chainproof.checkpoints.audit_hashing.record_hash` over the same ORM attributes);
4. (after 5) one ``merkle_leaves`` row per record (its table's code and its id), at the next leaf indexes
   (the Merkle log over every run, :mod:`chainproof.checkpoints.merkle_log`; the next index is
   ``max(idx) + 1``, read from the top of the primary key; on PostgreSQL under a second,
   store-wide advisory lock, so leaf indexes follow commit order with no gap);
5. the ``riders``: other writes that belong with the records (a model answer for the reasoning
   cache, :meth:`chainproof.checkpoints.reasoning_cache.ReasoningCache.put`), so a super-step commits
   once; written before the leaves, so the store-wide lock (which serialises every worker's
   appends) covers only the leaf rows and the commit. On PostgreSQL both advisory locks are taken
   on the transaction's DB-API cursor, the next leaf index is read by the leaves' ``INSERT``
   itself, and the log lock, that ``INSERT`` and the commit are sent in one pipeline (one round
   trip under the store-wide lock instead of four).

On SQLite and PostgreSQL the head query and the INSERTs run on the transaction's DB-API cursor
(:mod:`chainproof.checkpoints.fast_sql`: compiled once, values converted by the columns' own SQLAlchemy types,
so rows are byte-identical to a Core ``INSERT``; the new id from ``lastrowid`` on SQLite,
``RETURNING id`` on PostgreSQL). Other databases take the Core path.

The records stay the caller's (transient) ORM objects, updated with ``run_id``, ``seq``,
``prev_hash``, ``created_at``, ``record_hash``, their new ``id`` and any column default applied.
Serialisation across processes is unchanged (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
``pg_advisory_xact_lock`` on the run id); within a process the store's lock serialises appends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Select, bindparam, func, insert, select, text, union_all

from chainproof.checkpoints.audit_hashing import Redactor, record_hash, zdr_minimise
from chainproof.checkpoints.audit_schema import CHAINED_TABLES, GENESIS, Chained, Run, utcnow
from chainproof.checkpoints.audit_tables import LEAF_TABLE_CODES, check_lengths, merkle_leaves
from chainproof.checkpoints.fast_sql import FastStatement, cursor_of, supported
from chainproof.errors import AuditError


class Rider(Protocol):
    """A write that rides along with an append (in its transaction) when ``engine`` is the
    store's; :meth:`write` runs it on the append's connection."""

    engine: Engine

    def write(self, conn: Connection) -> None: ...


def _head_statement() -> Select[Any]:
    """``(seq, record_hash)`` of each chained table's last record of ``:run_id`` (at most one row per
    table, each read from the top of the table's ``(run_id, seq)`` index)."""
    parts = []
    for model in CHAINED_TABLES:
        table = model.__table__
        last = (select(table.c.seq, table.c.record_hash).where(table.c.run_id == bindparam("run_id"))
                .order_by(table.c.seq.desc()).limit(1).subquery())
        parts.append(select(last.c.seq, last.c.record_hash))
    union = union_all(*parts).subquery()
    return select(union.c.seq, union.c.record_hash)


_HEAD = _head_statement()
_RUN_ZDR = select(Run.__table__.c.zdr).where(Run.__table__.c.run_id == bindparam("run_id"))
_INSERTS = {model: insert(model.__table__) for model in CHAINED_TABLES}
_COLUMNS = {model: tuple(c.key for c in model.__table__.columns if c.key != "id")
            for model in CHAINED_TABLES}


def _defaults(model: type[Chained]) -> dict[str, Callable[[], Any]]:
    """Column key -> its Python-side default (what a Core ``INSERT`` adds for an unset column)."""
    out: dict[str, Callable[[], Any]] = {}
    for column in model.__table__.columns:
        default = column.default
        if column.key == "id" or default is None:
            continue
        arg: Any = getattr(default, "arg", None)
        if default.is_scalar:
            out[column.key] = functools.partial(_same, arg)
        elif default.is_callable:
            out[column.key] = functools.partial(arg, None)  # Core wraps a default callable to take a context
        else:  # a SQL expression default: not on chained tables; take the Core path for it
            raise AssertionError(f"{model.__name__}.{column.key}: unsupported column default {default!r}")
    return out


def _same(value: Any) -> Any:
    return value


_DEFAULTS = {model: _defaults(model) for model in CHAINED_TABLES}
_NEXT_LEAF = select(func.coalesce(func.max(merkle_leaves.c.idx) + 1, 0))
_LEAF_KEYS = ("idx", "record_table", "record_id")
_INSERT_LEAF = insert(merkle_leaves)
# every append takes it after its run's lock: leaf indexes are store-wide (PostgreSQL only; SQLite's
# BEGIN IMMEDIATE already serialises every writer)
_LOG_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('chainproof-merkle-log'))"
_LOG_LOCK = text(_LOG_LOCK_SQL)
_RUN_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(%s))"  # psycopg's paramstyle: the cursor path
_RUN_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:r))")
# PostgreSQL, under the log lock: the next leaf index and the leaf rows in one statement (one round
# trip while the store-wide lock is held, instead of a read then an INSERT); the subquery reads a
# snapshot taken after the lock was granted, so it sees every leaf committed before
_INSERT_LEAVES_PG = ("INSERT INTO merkle_leaves (idx, record_table, record_id) "
                     "SELECT n.first + v.i, v.t, v.r FROM (SELECT coalesce(max(idx) + 1, 0) AS first FROM merkle_leaves) n, "
                     "unnest(%s::int[], %s::smallint[], %s::int[]) AS v(i, t, r)")


def _leaf_rows(records: Sequence[Chained], first: int) -> list[dict[str, Any]]:
    return [{"idx": first + i, "record_table": LEAF_TABLE_CODES[rec.__tablename__], "record_id": rec.id}
            for i, rec in enumerate(records)]


class _FastPath:
    """The head query and the INSERTs compiled for one dialect (see :mod:`chainproof.checkpoints.fast_sql`)."""

    def __init__(self, engine: Engine):
        dialect = engine.dialect
        self.returning = dialect.name == "postgresql"
        self.head = FastStatement(_HEAD, dialect)
        self.inserts = {model: FastStatement(stmt.returning(model.__table__.c.id) if self.returning else stmt,
                                             dialect, column_keys=_COLUMNS[model])
                        for model, stmt in _INSERTS.items()}
        self.next_leaf = FastStatement(_NEXT_LEAF, dialect)
        self.insert_leaf = FastStatement(_INSERT_LEAF, dialect, column_keys=_LEAF_KEYS)

    def append_leaves(self, cursor: Any, records: Sequence[Chained]) -> None:
        if self.returning:  # PostgreSQL: one statement (see _INSERT_LEAVES_PG)
            rows = _leaf_rows(records, 0)
            cursor.execute(_INSERT_LEAVES_PG, ([r["idx"] for r in rows], [r["record_table"] for r in rows],
                                               [r["record_id"] for r in rows]))
            return
        first = int(self.next_leaf.rows(cursor, {})[0][0])
        cursor.executemany(self.insert_leaf.sql, [self.insert_leaf.params(row) for row in _leaf_rows(records, first)])

    def chain_head(self, cursor: Any, run_id: str) -> tuple[int, str]:
        rows = self.head.rows(cursor, {"run_id": run_id})
        if not rows:
            return 0, GENESIS
        seq, head = max(rows, key=lambda r: r[0])
        return int(seq), str(head)

    def insert(self, cursor: Any, rec: Chained) -> None:
        model = type(rec)
        state = vars(rec)
        values = {key: state[key] for key in _COLUMNS[model] if key in state}  # unset: NULL
        applied = {key: make() for key, make in _DEFAULTS[model].items() if key not in state}
        values.update(applied)
        self.inserts[model].execute(cursor, values)
        rec.id = cursor.fetchone()[0] if self.returning else cursor.lastrowid
        for key, value in applied.items():
            setattr(rec, key, value)


def _lock_leaves_commit(conn: Connection, cursor: Any, fast: _FastPath, records: Sequence[Chained]) -> None:
    """PostgreSQL: take the store-wide log lock, insert the leaves and commit, sent together in
    psycopg's pipeline mode: one round trip, so the lock is held for the server's INSERT and COMMIT
    only, not also for two more round trips each waiting for this thread's turn at the GIL (a
    worker advancing 10 runs at once held it 7 ms per append, 68 % of the time, measured with
    bench/worker_costs.py). Each statement still reads a snapshot taken after the lock was granted.
    The transaction is committed here; SQLAlchemy's commit at the end of the block then finds it
    committed (psycopg does nothing for a connection with no transaction open)."""
    dbapi = conn.connection.dbapi_connection
    with dbapi.pipeline():  # type: ignore[union-attr]
        cursor.execute(_LOG_LOCK_SQL)
        fast.append_leaves(cursor, records)
        dbapi.commit()  # type: ignore[union-attr]


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
        self._fast = _FastPath(engine) if supported(engine.dialect) else None

    def _run_zdr(self, conn: Connection, run_id: str) -> bool:
        zdr = self._zdr.get(run_id)
        if zdr is None:
            found = conn.execute(_RUN_ZDR, {"run_id": run_id}).first()
            if found is None:
                raise AuditError(f"unknown run {run_id}: start_run() first")
            zdr = self._zdr[run_id] = bool(found[0])
        return zdr

    def append(self, run_id: str, records: tuple[Chained, ...],
               guard: Callable[[Connection], None] | None = None, riders: Sequence[Rider] = (),
               before: Callable[[Connection], None] | None = None,
               prepare: Callable[[Connection, int], None] | None = None) -> list[Chained]:
        """Append ``records`` to ``run_id``'s chain in one transaction; ``guard(conn)`` runs inside it
        (after the run lock, before the head is read) and may raise to write nothing; ``before(conn)``
        runs first, after the run lock (``start_run`` inserts the run header with it);
        ``prepare(conn, head_seq)`` runs after the chain head is read, before the records are hashed,
        and may still change them (the crash journal numbers a step's attempt with it). Each of
        ``riders`` whose engine is this store's is written in the same transaction (the caller
        writes the others)."""
        fast = self._fast
        with self.engine.begin() as conn:
            cursor = cursor_of(conn) if fast is not None else None
            if self._postgres:  # on the DB-API cursor when there is one (no Core statement's overhead)
                if cursor is not None:
                    cursor.execute(_RUN_LOCK_SQL, (run_id,))
                else:
                    conn.execute(_RUN_LOCK, {"r": run_id})
            if before is not None:
                before(conn)
            zdr = self._run_zdr(conn, run_id)
            if guard is not None:
                guard(conn)
            seq, prev = fast.chain_head(cursor, run_id) if fast is not None else chain_head(conn, run_id)
            if prepare is not None:
                prepare(conn, seq)
            for rec in records:
                seq += 1
                for key, value in list(vars(rec).items()):
                    if not key.startswith("_") and isinstance(value, (str, dict, list)):
                        stored = value
                        if zdr and key in rec.__zdr_fields__:
                            stored = zdr_minimise(stored, self.redactor)
                        stored = self.redactor(stored)
                        if stored is not value:  # redact copies on write: unchanged values stay as set
                            setattr(rec, key, stored)
                check_lengths(rec.__table__, vars(rec))
                rec.run_id, rec.seq, rec.prev_hash = run_id, seq, prev
                rec.created_at = utcnow()
                for key, make in _DEFAULTS[type(rec)].items():  # hashed as the row will hold them
                    if key not in vars(rec):
                        setattr(rec, key, make())
                rec.record_hash = record_hash(rec)
                prev = rec.record_hash
                if fast is not None:
                    fast.insert(cursor, rec)
                else:
                    self._insert(conn, rec)
            for rider in riders:  # before the store-wide log lock: it is held as briefly as possible
                if rider.engine is self.engine:
                    rider.write(conn)
            if fast is not None and cursor is not None:
                if self._postgres and records:
                    _lock_leaves_commit(conn, cursor, fast, records)
                else:
                    if self._postgres:
                        cursor.execute(_LOG_LOCK_SQL)
                    if records:
                        fast.append_leaves(cursor, records)
                cursor.close()
            else:
                if self._postgres:
                    conn.execute(_LOG_LOCK)
                if records:
                    first = int(conn.execute(_NEXT_LEAF).scalar_one())
                    conn.execute(_INSERT_LEAF, _leaf_rows(records, first))
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


__all__ = ["ChainWriter", "Rider", "chain_head"]
