"""Canonical content, hashes and zero-data-retention stubs for audit records (secret redaction:
:mod:`chainproof.checkpoints.redaction`, re-exported here).

Canonical JSON: keys sorted, no insignificant white space, UTF-8, datetimes as ISO 8601 in UTC,
floats as Python's shortest round-trip repr (RFC 8785-like; the exact rule is this function).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from chainproof.checkpoints.redaction import REDACTED, Redactor, redact
from chainproof.errors import UnsupportedValue
from chainproof.values import encode_value, error_path

ZDR_EXCERPT_CHARS = 40
"""Zero-data-retention: characters of a (redacted) text kept as its excerpt; longer texts become
stubs (see :func:`zdr_stub`). 40 characters identify a text for a reader without reproducing it."""
_ZDR_STUB = re.compile(r"…\[zdr sha256=[0-9a-f]{64} chars=\d+\]$")


def zdr_stub(text: str, redactor: Redactor | None = None) -> str:
    """Zero-data-retention form of ``text``: unchanged when at most ``ZDR_EXCERPT_CHARS`` long,
    else ``"<first 40 characters of the redacted text>…[zdr sha256=<hex of the raw text> chars=<n>]"``.
    The hash lets an auditor holding the original prove it is the text that was used."""
    if len(text) <= ZDR_EXCERPT_CHARS:
        return text
    excerpt = (redactor or Redactor())(text)[:ZDR_EXCERPT_CHARS]
    return f"{excerpt}…[zdr sha256={sha256_hex(text)} chars={len(text)}]"


def zdr_minimise(value: Any, redactor: Redactor | None = None) -> Any:
    """Apply :func:`zdr_stub` to every string in ``value`` (recursively through dicts and lists)."""
    if isinstance(value, str):
        return zdr_stub(value, redactor)
    if isinstance(value, dict):
        return {k: zdr_minimise(v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [zdr_minimise(v, redactor) for v in value]
    return value


def has_zdr_stub(value: Any) -> bool:
    """True when ``value`` (a string, or any string nested in dicts/lists) is a ZDR stub: the text
    it stood for was not retained."""
    if isinstance(value, str):
        return bool(_ZDR_STUB.search(value))
    if isinstance(value, dict):
        return any(has_zdr_stub(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_zdr_stub(v) for v in value)
    return False


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):  # column timestamps: the rule every stored hash was made with
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=UTC)
        return obj.astimezone(UTC).isoformat()
    return encode_value(obj)  # value contract: any other value hashes as its tagged JSON form


def canonical_json(data: Any) -> str:
    """``data`` as canonical JSON (see the module docstring). Values under the value contract
    (:mod:`chainproof.values`) reach the store already encoded; one that did not is hashed as its
    tagged form. A ``datetime`` keeps its legacy rule (ISO 8601 in UTC), which column timestamps are
    hashed with. Raises ``UnsupportedValue`` naming the key path and type of a value outside the
    contract (``where`` = ``"audit record"``)."""
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)
    except UnsupportedValue:
        found = error_path(data)
        path, type_name = found if found is not None else ("", "unknown")
        raise UnsupportedValue("audit record", path, type_name) from None


def sha256_hex(data: Any) -> str:
    """SHA-256 (hex) of ``data``'s canonical JSON (a ``str`` is hashed as its UTF-8 bytes)."""
    text = data if isinstance(data, str) else canonical_json(data)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_HASHED_KEYS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {}


def _hashed_keys(table: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """``(column keys hashed, optional ones)`` of chained table ``table`` (computed once)."""
    found = _HASHED_KEYS.get(table)
    if found is None:
        from chainproof.checkpoints import audit_tables

        columns = audit_tables.metadata.tables[table].columns
        keys = tuple(c.key for c in columns if c.key not in ("id", "record_hash"))
        found = _HASHED_KEYS[table] = (keys, audit_tables.OPTIONAL_COLUMNS[table])
    return found


def record_content(row: Any) -> dict[str, Any]:
    """The hashed content of a chained row: every column but ``id`` and ``record_hash``, plus the
    table name (so moving a record to another table breaks the chain). Columns listed in the
    table's ``__optional_columns__`` (added by later migrations) count only when not None, so rows
    written before they existed keep their hash. ``row``: an ORM record being written or a
    :class:`~chainproof.checkpoints.audit_read.Record` read back (both name their ``__tablename__``)."""
    table = row.__tablename__
    keys, optional = _hashed_keys(table)
    content = {}
    for key in keys:
        value = getattr(row, key)
        if value is None and key in optional:
            continue
        content[key] = value
    content["table"] = table
    return content


def record_hash(row: Any) -> str:
    return sha256_hex(record_content(row))


RUN_HEADER_FIELDS = ("run_id", "graph", "goal", "inputs", "company", "department", "started_by", "created_at", "zdr")
"""The ``runs`` columns covered by the run-header hash (a fixed list, so a later column added by a
migration does not change the hash of older runs)."""


RUN_HEADER_OPTIONAL_FIELDS = ("parent_run_id", "forked_at_step")
"""``runs`` columns added later and covered by the header hash only when set (not None), so the
header hash of a run written before they existed does not change."""


def run_header(run: Any) -> dict[str, Any]:
    """The hashed content of a ``runs`` row: ``RUN_HEADER_FIELDS`` plus each of
    ``RUN_HEADER_OPTIONAL_FIELDS`` that is set."""
    header = {k: getattr(run, k) for k in RUN_HEADER_FIELDS}
    header.update({k: v for k in RUN_HEADER_OPTIONAL_FIELDS if (v := getattr(run, k, None)) is not None})
    return header


def run_header_hash(run: Any) -> str:
    """SHA-256 of :func:`run_header`. It is stored in the run's first chained record (the
    ``run_started`` event's ``detail.run_header_hash``), so the header is covered by the chain too."""
    return sha256_hex(run_header(run))


__all__ = ["REDACTED", "RUN_HEADER_FIELDS", "RUN_HEADER_OPTIONAL_FIELDS", "Redactor", "ZDR_EXCERPT_CHARS", "canonical_json",
           "has_zdr_stub", "record_content", "record_hash", "redact", "run_header", "run_header_hash", "sha256_hex",
           "zdr_minimise", "zdr_stub"]
