"""Reading audit rows that were edited outside Chainproof into values their columns cannot hold.

Chainproof's writer only stores values of each column's type; an edit in SQL can store invalid
JSON in a JSON column, a timestamp that is no timestamp, or text in an integer column (SQLite
accepts all three). Reading such a row must not fail the query (and with it ``verify``, ``show``,
``export`` and ``runs`` for every run): :func:`raw_rows` reads the columns raw and decodes them one
value at a time, and :func:`mistyped` names numbers that are not numbers, so each
:class:`~chainproof.checkpoints.audit_read.Record` carries its ``undecodable`` columns with the
raw values and ``verify`` names the record.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Boolean, Connection, Float, Integer, Select, type_coerce
from sqlalchemy.types import NullType

DECODE_ERRORS = (ValueError, TypeError, OverflowError)
"""What a column type's result processor raises for a value it cannot decode."""

# column types whose SQLite storage accepts any value and whose result processor passes it through
_NUMERIC: tuple[tuple[type, tuple[type, ...]], ...] = ((Integer, (int,)), (Float, (float, int)))


def _type_name(column: Any) -> str:
    return type(column.type).__name__.lower()


def raw_rows(conn: Connection, stmt: Select[Any]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """``stmt``'s rows with every column read as the driver gives it, then decoded by the
    column's type one value at a time: ``(rows, problems)``, one dict per row of column -> why
    its value was kept raw."""
    columns = list(stmt.selected_columns)
    keys = [str(c.key) for c in columns]
    raw = stmt.with_only_columns(*(type_coerce(c, NullType()).label(k) for c, k in zip(columns, keys)))
    dialect = conn.dialect
    decoders = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]
    rows, problems = [], []
    for values in conn.execute(raw):
        row: dict[str, Any] = {}
        found: dict[str, str] = {}
        for column, key, decode, value in zip(columns, keys, decoders, values):
            try:
                row[key] = decode(value) if decode is not None and value is not None else value
            except DECODE_ERRORS as exc:
                row[key] = value
                found[key] = f"cannot be read as {_type_name(column)} ({str(exc)[:80]}); raw value {value!r:.60}"
        rows.append(row)
        problems.append(found)
    return rows, problems


@functools.cache
def _numeric_columns(table: Any) -> tuple[tuple[str, tuple[type, ...], bool], ...]:
    return tuple((c.key, py, bool(c.nullable)) for c in table.columns for sql, py in _NUMERIC
                 if isinstance(c.type, sql) and not isinstance(c.type, Boolean))


def mistyped(table: Any, rows: list[dict[str, Any]], problems: list[dict[str, str]]) -> None:
    """Add to ``problems`` each numeric value of ``rows`` (read from ``table`` on SQLite, where a
    column of any type may hold text) that is no number, or NULL where the column needs one.
    PostgreSQL enforces the column types itself and needs no check."""
    for row, found in zip(rows, problems):
        for key, expected, nullable in _numeric_columns(table):
            value = row.get(key)
            if isinstance(value, expected) or key in found or key not in row or (value is None and nullable):
                continue
            found[key] = "NULL in a column that must hold a number" if value is None else \
                f"expected a number, found {type(value).__name__} {value!r:.60}"


def seq_order(rec: Any) -> tuple[int, int, str]:
    """Sort key of chained records by ``seq`` then ``id``; a ``seq`` that is no integer (an edit
    outside Chainproof) sorts last instead of failing the comparison."""
    seq, rid = rec.seq, rec.id
    if isinstance(seq, int) and not isinstance(seq, bool):
        return 0, seq, f"{rid:020d}" if isinstance(rid, int) else str(rid)
    return 1, 0, f"{seq!r} {rid!r}"


__all__ = ["DECODE_ERRORS", "mistyped", "raw_rows", "seq_order"]
