"""The queries auditors run, in SQLAlchemy Core: :class:`AuditReader` and the :class:`Record`
rows it returns.

Every query of the audit store lives here; :class:`chainproof.checkpoints.audit.AuditStore` (the
writer) inherits them. Read-only commands (``runs``, ``show``, ``verify``, ``pending``, ``costs``,
``export``) open a reader alone: it imports neither ``sqlalchemy.orm`` nor the ORM classes, and
checks, never migrates, the schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, Text, cast, func, select, union_all

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints.audit_db import check_schema, make_engine, normalise_url, upgrade_schema
from chainproof.checkpoints.audit_decode import DECODE_ERRORS, mistyped, raw_rows, seq_order
from chainproof.errors import StoreMissing


class Record:
    """One row read from the audit store: its columns as attributes (``rec.seq``,
    ``rec.detail``…), the table it came from as ``__tablename__``, and that table's
    ``__zdr_fields__``, ``__replay_ignore__`` and ``__optional_columns__``
    (:mod:`~chainproof.checkpoints.audit_tables`), as on the ORM classes records are written with.
    Read-only: a record is what the store held when it was read. One subclass per table
    (:data:`RECORD_TYPES`)."""

    __slots__ = ("_undecodable", "_values")
    __tablename__: str = ""
    __zdr_fields__: tuple[str, ...] = ()
    __replay_ignore__: frozenset[str] = frozenset()
    __optional_columns__: frozenset[str] = frozenset()

    def __init__(self, values: dict[str, Any], undecodable: dict[str, str] | None = None):
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_undecodable", undecodable or {})

    @property
    def undecodable(self) -> dict[str, str]:
        """Column -> why its stored value could not be read as its type (invalid JSON, a timestamp
        that is no timestamp, text in an integer column…); the attribute then holds the raw value.
        Empty for every row Chainproof wrote: only an edit outside Chainproof makes one."""
        return dict(self._undecodable)

    def where(self) -> str:
        """``table seq N (id M)``: how messages name this record."""
        return f"{self.__tablename__} seq {self._values.get('seq')!r} (id {self._values.get('id')!r})"

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"a {self.__tablename__} record has no column {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"a {self.__tablename__} record read from the audit store is read-only")

    def as_dict(self) -> dict[str, Any]:
        """The columns as a new dict."""
        return dict(self._values)

    def replace(self, **changes: Any) -> Record:
        """A new record of the same table with ``changes`` applied (the store is not touched);
        raises ``AttributeError`` naming a key that is not one of the record's columns."""
        unknown = sorted(set(changes) - set(self._values))
        if unknown:
            raise AttributeError(f"a {self.__tablename__} record has no column {unknown[0]!r}")
        return type(self)({**self._values, **changes}, {k: v for k, v in self._undecodable.items() if k not in changes})

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._values.get('run_id', '')} seq={self._values.get('seq')}>"


def _record_type(table: Any) -> type[Record]:
    name = table.name
    attrs = {"__slots__": (), "__tablename__": name, "__zdr_fields__": t.ZDR_FIELDS.get(name, ()),
             "__replay_ignore__": t.REPLAY_IGNORE.get(name, frozenset()),
             "__optional_columns__": t.OPTIONAL_COLUMNS.get(name, frozenset())}
    return type("".join(p.title() for p in name.split("_")) + "Record", (Record,), attrs)


RECORD_TYPES: dict[str, type[Record]] = {table.name: _record_type(table) for table in (t.runs, *t.CHAINED)}
"""Table name -> the :class:`Record` subclass its rows are read as."""

_runs, _events, _approvals, _model_calls = t.runs, t.events, t.approvals, t.model_calls


def _lifecycle() -> ColumnElement[bool]:
    """Events that set a run's status (``run_*``); model_retry / failover events do not."""
    return _events.c.kind.startswith("run_", autoescape=True)


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
        if len(month) != 7:  # strptime alone takes "2026-1"
            raise ValueError(month)
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"month: expected YYYY-MM, got {month!r}") from None
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def decision_statement(request_id: str) -> Select[Any]:
    """The first decision row (approve / reject / edit) on approval request ``request_id``."""
    a = _approvals.c
    return select(_approvals).where(a.request_id == request_id, a.action != "requested").order_by(a.seq).limit(1)


class AuditReader:
    """Open the audit database at ``url`` and query it. ``migrate="check"`` (default): the schema
    must be current (``SchemaOutdated``, exit 2, names ``chainproof db upgrade``), and a SQLite
    file that does not exist is ``StoreMissing`` (exit 2) rather than created; ``True``: the schema
    is created or upgraded by Alembic; ``False``: neither (a scratch store creates its tables itself).
    ``require_signature``: the default a store created here records (``audit_db.upgrade_schema``).
    ``pool_size``: the PostgreSQL engine's connections at most (:func:`make_engine`)."""

    def __init__(self, url: str, *, migrate: bool | Literal["check"] = "check", require_signature: bool = True,
                 pool_size: int | None = None, trust: Any = None):
        self.url = normalise_url(url)
        if migrate == "check" and self.url.startswith("sqlite:///") and self.url != "sqlite:///:memory:":
            path = Path(self.url.removeprefix("sqlite:///")).expanduser()
            if not path.is_file():  # reading must not create a store (nor its folders) at a mistyped path
                raise StoreMissing(f"database_url {url!r} (CHAINPROOF_DATABASE_URL): no audit store at {path}; "
                                   "nothing has been recorded there (check CHAINPROOF_HOME / CHAINPROOF_DATABASE_URL)",
                                   str(path))
        self.engine = make_engine(self.url, pool_size)
        if trust is not None:  # the operator trust its grants are checked against (checkpoints/grants.py)
            from chainproof.checkpoints.grants import bind

            bind(self.engine, trust)
        if migrate == "check":
            check_schema(self.engine, url, require_signature=require_signature, trust=trust)
        elif migrate:
            upgrade_schema(self.engine, require_signature=require_signature, trust=trust)

    def close(self) -> None:
        self.engine.dispose()

    def _records(self, stmt: Select[Any], table: Any) -> list[Any]:
        """The rows of ``stmt`` (a ``select(table)…``) as records. A row whose values its columns'
        types cannot decode (edited outside Chainproof) does not fail the query: its columns are
        read raw and decoded one by one, and each one that fails keeps its raw value and is named
        in :attr:`Record.undecodable`, as is a value of the wrong type (text in ``seq``)."""
        make = RECORD_TYPES[table.name]
        with self.engine.connect() as conn:
            try:
                rows = [dict(row._mapping) for row in conn.execute(stmt)]
                problems: list[dict[str, str]] = [{} for _ in rows]
            except DECODE_ERRORS:  # a type's result processor refused a value
                rows, problems = raw_rows(conn, stmt)
        if self.engine.dialect.name == "sqlite":
            mistyped(table, rows, problems)
        return [make(row, found) for row, found in zip(rows, problems)]

    def _first(self, stmt: Select[Any], table: Any) -> Any:
        found = self._records(stmt.limit(1), table)
        return found[0] if found else None

    def decisions_by_run(self, run_ids: list[str]) -> dict[str, list[Any]]:
        """The human decisions (approve / reject / edit) of each run in ``run_ids``, in record
        order; runs without one are absent."""
        out: dict[str, list[Any]] = {}
        if not run_ids:
            return out
        a = _approvals.c
        for row in self._records(select(_approvals).where(a.run_id.in_(run_ids), a.action != "requested")
                                 .order_by(a.seq), _approvals):
            out.setdefault(row.run_id, []).append(row)
        return out

    def open_requests(self, limit: int = 200) -> list[tuple[Any, list[Any]]]:
        """Open approval requests read from the record alone (no graph, no checkpointer): for each
        of the ``limit`` newest runs whose latest lifecycle event is ``run_paused``, its
        ``requested`` rows that have no decision row yet, oldest first; ``(run, rows)``, newest run
        first, runs without an open request left out. A row's ``payload`` is the request as the
        approver saw it (``question``, ``subject``, ``reasons``, ``proposed``, ``created_at``)."""
        paused = [run for run, status, _ in self.list_runs(limit=limit) if status == "paused"]
        if not paused:
            return []
        a = _approvals.c
        rows = self._records(select(_approvals).where(a.run_id.in_([r.run_id for r in paused])).order_by(a.seq),
                             _approvals)
        decided = {r.request_id for r in rows if r.action != "requested"}
        by_run: dict[str, list[Any]] = {}
        for r in rows:
            if r.action == "requested" and r.request_id not in decided:
                by_run.setdefault(r.run_id, []).append(r)
        return [(run, by_run[run.run_id]) for run in paused if run.run_id in by_run]

    def decision_for(self, request_id: str) -> Any:
        """The decision record (approve / reject / edit) on approval request ``request_id``, or None."""
        return self._first(decision_statement(request_id), _approvals)

    def request_record(self, request_id: str) -> Any:
        """The ``requested`` record of approval request ``request_id`` in any run, or None."""
        a = _approvals.c
        return self._first(select(_approvals).where(a.request_id == request_id, a.action == "requested"), _approvals)

    def last_step_no(self, run_id: str) -> int:
        """The highest step number among ``run_id``'s ``steps`` rows (0 before the first)."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.max(t.steps.c.step_no)).where(t.steps.c.run_id == run_id)) or 0)

    def last_event(self, run_id: str, kind: str) -> Any:
        """The latest event of ``kind`` (e.g. ``run_paused``) in ``run_id``, or None."""
        e = _events.c
        return self._first(select(_events).where(e.run_id == run_id, e.kind == kind).order_by(e.seq.desc()), _events)

    def events_of(self, run_id: str, kind: str) -> list[Any]:
        """Every event of ``kind`` in ``run_id``, in order."""
        e = _events.c
        return self._records(select(_events).where(e.run_id == run_id, e.kind == kind).order_by(e.seq), _events)

    def run_cost_usd(self, run_id: str) -> float | None:
        """The run's model cost so far in USD (sum of ``model_calls.cost_usd``); None when any call
        has no cost (prices not configured). 0.0 for a run without model calls."""
        with self.engine.connect() as conn:
            costs = list(conn.scalars(select(_model_calls.c.cost_usd).where(_model_calls.c.run_id == run_id)))
        known = [c for c in costs if c is not None]
        if len(known) < len(costs):
            return None
        return float(sum(known))

    def _spend(self, *where: Any) -> Spend:
        m = _model_calls.c
        with self.engine.connect() as conn:
            rows = list(conn.execute(select(m.cost_usd).join(_runs, _runs.c.run_id == m.run_id).where(*where)))
        return Spend(round(float(sum(c for (c,) in rows if c is not None)), 10), sum(c is None for (c,) in rows))

    def run_spend(self, run_id: str) -> Spend:
        """The run's model spend so far (cache hits cost 0)."""
        return self._spend(_model_calls.c.run_id == run_id)

    def department_spend(self, department: str, month: str) -> Spend:
        """Model spend of every run of ``department`` (or project) with calls made in calendar
        month ``month`` (``YYYY-MM``, UTC). Raises ``ValueError`` for a malformed month."""
        start, end = month_bounds(month)
        m = _model_calls.c
        return self._spend(_runs.c.department == department, m.created_at >= start, m.created_at < end)

    def model_calls_of(self, *, run_id: str | None = None, department: str | None = None,
                       month: str | None = None) -> list[Any]:
        """Model-call records of one run, or of a department's runs in a month (``YYYY-MM``), by seq."""
        m = _model_calls.c
        where: list[Any] = []
        if run_id is not None:
            where.append(m.run_id == run_id)
        if department is not None:
            where.append(_runs.c.department == department)
        if month is not None:
            start, end = month_bounds(month)
            where += [m.created_at >= start, m.created_at < end]
        stmt = (select(_model_calls).join(_runs, _runs.c.run_id == m.run_id).where(*where).order_by(m.run_id, m.seq))
        return self._records(stmt, _model_calls)

    def model_attempts_since(self, since: datetime) -> list[tuple[datetime, list[dict[str, Any]]]]:
        """The HTTP attempts of model calls recorded in steps written at or after ``since``
        (aware UTC): ``(step created_at, output["model_attempts"])`` per step that has any, oldest
        first (``graphs/recorder.py``: one :class:`~chainproof.agents.resilience.AttemptRecord`
        dict per request; attempts carry no time of their own). A step whose ``output`` cannot be
        decoded is skipped, not fatal (``verify`` names it). Reads only two columns; ``steps`` has
        no ``created_at`` index, so this scans the table."""
        s = t.steps.c
        stmt = select(s.created_at, s.output).where(s.created_at >= since).order_by(s.created_at, s.id)
        with self.engine.connect() as conn:
            try:
                rows = [dict(row._mapping) for row in conn.execute(stmt)]
            except DECODE_ERRORS:
                rows, _ = raw_rows(conn, stmt)
        out = []
        for row in rows:
            at, output = row["created_at"], row["output"]
            attempts = output.get("model_attempts") if isinstance(output, dict) else None
            if isinstance(at, datetime) and isinstance(attempts, list):
                found = [a for a in attempts if isinstance(a, dict)]
                if found:
                    out.append((at if at.tzinfo else at.replace(tzinfo=UTC), found))
        return out

    def get_run(self, run_id: str) -> Any:
        """The run header (a ``runs`` :class:`Record`), or None."""
        return self._first(select(_runs).where(_runs.c.run_id == run_id), _runs)

    def records(self, run_id: str) -> list[Any]:
        """Every chained record of ``run_id`` ordered by ``seq`` (the trace)."""
        rows: list[Any] = []
        for table in t.CHAINED:
            rows.extend(self._records(select(table).where(table.c.run_id == run_id), table))
        return sorted(rows, key=seq_order)

    def records_of(self, run_id: str, table: Any) -> list[Any]:
        """The records of one chained table of ``run_id``, by seq. ``table``: its name (``steps``,
        ``events``…) or anything naming it in ``__tablename__`` (an ORM class, a Record type).
        Raises ``ValueError`` naming the chained tables for any other."""
        name = table if isinstance(table, str) else getattr(table, "__tablename__", None)
        tbl = next((c for c in t.CHAINED if c.name == name), None)
        if tbl is None:
            raise ValueError(f"table: expected one of {', '.join(c.name for c in t.CHAINED)}, got {table!r}")
        return self._records(select(tbl).where(tbl.c.run_id == run_id).order_by(tbl.c.seq), tbl)

    def records_after(self, run_id: str, after_seq: int, tables: tuple[str, ...]) -> list[Any]:
        """The records of ``run_id`` with ``seq`` greater than ``after_seq`` in the chained
        ``tables`` (names), by seq: what a live view has not seen yet (the web app's event stream)."""
        rows: list[Any] = []
        for table in t.CHAINED:
            if table.name in tables:
                rows.extend(self._records(select(table).where(table.c.run_id == run_id, table.c.seq > after_seq), table))
        return sorted(rows, key=lambda r: r.seq)

    def seqs_after(self, run_id: str, after_seq: int, tables: tuple[str, ...]) -> list[int]:
        """The ``seq`` of every record of ``run_id`` after ``after_seq`` in the chained ``tables`` (names)."""
        with self.engine.connect() as conn:
            return sorted(s for table in t.CHAINED if table.name in tables
                          for s in conn.scalars(select(table.c.seq).where(table.c.run_id == run_id,
                                                                          table.c.seq > after_seq)))

    def run_ids(self) -> list[str]:
        """Every run id, oldest run first, then the ids of chained records whose run header is gone
        (so ``verify --all`` reports a deleted header instead of skipping its run)."""
        with self.engine.connect() as conn:
            ids = list(conn.scalars(select(_runs.c.run_id).order_by(_runs.c.created_at, _runs.c.run_id)))
            orphans = set(conn.scalars(union_all(*(select(tb.c.run_id).distinct() for tb in t.CHAINED)))) - set(ids)
        return ids + sorted(orphans)

    def run_status(self, run_id: str) -> str | None:
        """The kind of the run's latest lifecycle event without its ``run_`` prefix
        (``started``, ``paused``, ``resumed``, ``completed``, ``failed``), or None."""
        e = _events.c
        with self.engine.connect() as conn:
            kind = conn.scalar(select(e.kind).where(e.run_id == run_id, _lifecycle()).order_by(e.seq.desc()).limit(1))
        return kind.removeprefix("run_") if kind else None

    def list_runs(self, limit: int = 50) -> list[tuple[Any, str | None, datetime | None]]:
        """Newest runs first: ``(run, status, last_event_at)``."""
        e = _events.c
        runs = self._records(select(_runs).order_by(_runs.c.created_at.desc()).limit(limit), _runs)
        latest = select(e.run_id, func.max(e.seq).label("seq")).where(_lifecycle()).group_by(e.run_id).subquery()
        with self.engine.connect() as conn:
            status = {r.run_id: (r.kind, r.created_at) for r in conn.execute(
                select(e.run_id, e.kind, e.created_at).join(latest, (e.run_id == latest.c.run_id) & (e.seq == latest.c.seq)))}
        out = []
        for run in runs:
            kind, at = status.get(run.run_id, (None, None))
            out.append((run, kind.removeprefix("run_") if kind else None, at))
        return out

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """The alerts of finished runs, newest first, at most ``limit``: each alert a graph's
        ``ChainSpec.alerts`` raised (recorded in the run's ``report`` step) with ``run_id``,
        ``graph`` and ``at`` (the report step's start, UTC) added."""
        s = t.steps.c
        stmt = (select(t.steps).where(s.node == "report", cast(s.output, Text).contains('"alerts"'))
                .order_by(s.started_at.desc(), s.run_id))
        out: list[dict[str, Any]] = []
        graphs: dict[str, str | None] = {}
        for step in self._records(stmt, t.steps):
            for alert in reversed((step.output or {}).get("alerts") or []):
                if step.run_id not in graphs:
                    run = self.get_run(step.run_id)
                    graphs[step.run_id] = run.graph if run is not None else None
                out.append({**alert, "run_id": step.run_id, "graph": graphs[step.run_id], "at": step.started_at})
                if len(out) >= limit:
                    return out
        return out


__all__ = ["RECORD_TYPES", "AuditReader", "Record", "Spend", "decision_statement", "month_bounds", "seq_order"]
