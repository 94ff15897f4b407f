"""Canonical content, hashes and secret redaction for audit records.

Canonical JSON: keys sorted, no insignificant white space, UTF-8, datetimes as ISO 8601 in UTC,
floats as Python's shortest round-trip repr (RFC 8785-like; the exact rule is this function).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import inspect

_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),  # OpenAI-style API keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}"),  # Authorization: Bearer …
    re.compile(r"(?i)((?:api[_-]?key|authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{8,}"),
]
REDACTED = "[REDACTED]"


def redact(value: Any, extra_patterns: tuple[re.Pattern[str], ...] = ()) -> Any:
    """Return ``value`` with API keys, bearer tokens and ``extra_patterns`` replaced by ``[REDACTED]``
    in every string, recursively through dicts and lists."""
    if isinstance(value, str):
        for pattern in (*_SECRET_PATTERNS, *extra_patterns):
            value = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + REDACTED, value)
        return value
    if isinstance(value, dict):
        return {k: redact(v, extra_patterns) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, extra_patterns) for v in value]
    return value


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=timezone.utc)
        return obj.astimezone(timezone.utc).isoformat()
    raise TypeError(f"not canonicalisable: {type(obj).__name__}")


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def sha256_hex(data: Any) -> str:
    """SHA-256 (hex) of ``data``'s canonical JSON (a ``str`` is hashed as its UTF-8 bytes)."""
    text = data if isinstance(data, str) else canonical_json(data)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_content(row: Any) -> dict[str, Any]:
    """The hashed content of a chained row: every column but ``id`` and ``record_hash``, plus the
    table name (so moving a record to another table breaks the chain)."""
    mapper = inspect(type(row))
    content = {c.key: getattr(row, c.key) for c in mapper.column_attrs if c.key not in ("id", "record_hash")}
    content["table"] = type(row).__tablename__
    return content


def record_hash(row: Any) -> str:
    return sha256_hex(record_content(row))
