"""A DB-API fast path for the audit store's hot statements (appends, the chain head, the cache).

A SQLAlchemy Core ``execute`` costs ~0.25 ms of Python per statement (compiled-cache lookup,
execution context, events, result wrapping); the statements a live run repeats at every
super-step are few and fixed. :class:`FastStatement` compiles one such statement once per
dialect and runs it on the DB-API cursor of the caller's SQLAlchemy connection, inside the
caller's transaction (``with engine.begin() as conn``), so locking and commit stay SQLAlchemy's.

Values are converted exactly as SQLAlchemy converts them: by each bind parameter's type, through
its dialect implementation's ``bind_processor`` (JSON serialised the same way, SQLite datetimes
rendered in the same format, psycopg's ``Json`` wrapper), so rows are stored byte-identically;
:meth:`FastStatement.rows` converts result columns with the types' ``result_processor``.

Only SQLite (pysqlite) and PostgreSQL (psycopg) are served: :func:`supported` says when.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.types import TypeEngine

FAST_DIALECTS = ("sqlite", "postgresql")


def supported(dialect: Dialect) -> bool:
    """Whether statements on ``dialect`` may take the fast path (SQLite and PostgreSQL)."""
    return dialect.name in FAST_DIALECTS


def cursor_of(conn: Connection) -> Any:
    """A DB-API cursor on ``conn``'s connection (within its current transaction)."""
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


class FastStatement:
    """``stmt`` compiled for ``dialect`` (``column_keys``: the columns of an INSERT, all sent on
    every execution). ``result_types``: the types of the result columns to convert, in order
    (None: none converted)."""

    def __init__(self, stmt: ClauseElement, dialect: Dialect, *, column_keys: Sequence[str] | None = None,
                 result_types: Sequence[TypeEngine[Any] | None] | None = None):
        compiled: Any = stmt.compile(dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None)
        if compiled.literal_execute_params or compiled.post_compile_params:  # expanded per execution
            raise ValueError(f"not a fixed statement: {compiled.string}")
        self.sql = compiled.string
        self._order = tuple(compiled.positiontup or ()) if compiled.positional else None
        binds = {name: bind for bind, name in compiled.bind_names.items()}  # as rendered in the SQL
        self._names = tuple(binds)
        # the fixed values (LIMIT 1 …); the caller's values are added to them on every execution
        self._fixed = {name: bind.effective_value for name, bind in binds.items()
                       if not bind.required and bind.callable is None}
        self._bind: dict[str, Callable[[Any], Any]] = {}
        for name, bind in binds.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self._bind[name] = proc
        self._result: list[Callable[[Any], Any] | None] = [
            None if t is None else t.dialect_impl(dialect).result_processor(dialect, None)
            for t in (result_types or ())]

    def params(self, values: Mapping[str, Any]) -> Any:
        """The DB-API parameters of ``values`` (a tuple for positional paramstyles, else a dict).
        A name absent from ``values`` is sent as SQL NULL, unconverted (as a column a Core
        ``INSERT`` leaves out: NULL, not JSON ``null``)."""
        merged = {**self._fixed, **values} if self._fixed else dict(values)
        for name, proc in self._bind.items():
            if name in merged:
                merged[name] = proc(merged[name])
        if self._order is None:
            return {name: merged.get(name) for name in self._names}
        return tuple(merged.get(name) for name in self._order)

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> Any:
        """Run on a DB-API ``cursor`` (:func:`cursor_of`); returns it."""
        cursor.execute(self.sql, self.params(values))
        return cursor

    def rows(self, cursor: Any, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """All result rows, their columns converted by ``result_types``."""
        fetched = self.execute(cursor, values).fetchall()
        procs = self._result
        if not any(procs):
            return [tuple(row) for row in fetched]
        return [tuple(v if i >= len(procs) or (p := procs[i]) is None else p(v) for i, v in enumerate(row))
                for row in fetched]


__all__ = ["FAST_DIALECTS", "FastStatement", "cursor_of", "supported"]
