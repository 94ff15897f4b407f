"""The reasoning cache's storage: model answers by request key, in the audit store's database.

Not an audit record: rows live in the ``reasoning_cache`` table (revision 0003), are not hash-chained,
expire after a TTL and can be deleted (``chainproof cache clear``). What a hit means for a run —
no model call, no cost, the saved tokens recorded — is decided by the caller
(:mod:`graphs.model_access`); this module only stores and finds answers.

The key (:func:`cache_key`) is the SHA-256 of the canonical JSON of everything that determines an
answer: the model, the effort, the prompt as sent (``agents.calls.wire_messages``), the tools and
the sampling parameters. Two requests share an entry only when all of these are equal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import sessionmaker

from chainproof.checkpoints.audit_hashing import Redactor, sha256_hex
from chainproof.checkpoints.audit_schema import ReasoningCacheEntry, utcnow

DEFAULT_TTL_S = 24 * 3600.0


def cache_key(model: str, effort: str, messages: list[dict[str, Any]], tools: list[Any] | None,
              params: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``{model, effort, messages, tools, params}``.
    ``messages``: OpenAI-format wire messages; ``tools``: the bound tool schemas (or None);
    ``params``: sampling parameters (max tokens, temperature, reasoning_effort, response format…)."""
    return sha256_hex({"model": model, "effort": effort, "messages": messages, "tools": tools or [],
                       "params": params})


class ReasoningCache:
    """Answers stored under :func:`cache_key` keys for ``ttl_s`` seconds (default 24 h).

    ``redactor`` (the audit store's) removes secrets from every response before it is written,
    as for audit records. ``clock`` returns the current UTC time (tests pass a fake to test
    expiry). Thread- and process-safe through the database (one short transaction per operation)."""

    def __init__(self, engine: Engine, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], datetime] = utcnow,
                 redactor: Redactor | None = None):
        if ttl_s <= 0:
            raise ValueError(f"cache.ttl_s: expected a positive number of seconds, got {ttl_s}")
        self.ttl = timedelta(seconds=ttl_s)
        self.clock = clock
        self.redactor = redactor or Redactor()
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._upsert = _upsert(engine.dialect.name)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response under ``key`` if it has not expired (counting the hit), else None."""
        now = self.clock()
        with self._engine.begin() as conn:
            row = conn.execute(_GET, {"k": key}).first()
            if row is None or _utc(row.expires_at) <= now:
                return None
            conn.execute(_HIT, {"k": key})
            return dict(row.response)

    def put(self, key: str, model: str, effort: str, response: dict[str, Any]) -> None:
        """Store (or replace) ``response`` (redacted) under ``key``, expiring ``ttl_s`` from now."""
        now = self.clock()
        response = self.redactor(response)
        values = {"key": key, "model": model[:200], "effort": effort, "response": response, "created_at": now,
                  "expires_at": now + self.ttl, "hits": 0}
        with self._engine.begin() as conn:
            if self._upsert is not None:  # one statement: INSERT … ON CONFLICT (key) DO UPDATE
                conn.execute(self._upsert, values)
            elif conn.execute(_GET, {"k": key}).first() is None:
                conn.execute(insert(_TABLE), values)
            else:
                conn.execute(update(_TABLE).where(_TABLE.c.key == key).values(
                    response=response, created_at=now, expires_at=now + self.ttl))

    def clear(self, *, expired_only: bool = False) -> int:
        """Delete every entry (or only expired ones); returns how many were deleted."""
        with self._sessions() as s, s.begin():
            stmt = delete(ReasoningCacheEntry)
            if expired_only:
                stmt = stmt.where(ReasoningCacheEntry.expires_at <= self.clock())
            # Session.execute is typed as Result; a DELETE's result is a CursorResult, which has rowcount
            return cast("CursorResult[Any]", s.execute(stmt)).rowcount or 0

    def stats(self) -> dict[str, int]:
        """``{"entries", "live", "hits"}``: stored entries, those not expired, hits served."""
        now = self.clock()
        with self._sessions() as s:
            rows = list(s.execute(select(ReasoningCacheEntry.expires_at, ReasoningCacheEntry.hits)))
        return {"entries": len(rows), "live": sum(_utc(e) > now for e, _ in rows), "hits": sum(h for _, h in rows)}


_TABLE = cast("Table", ReasoningCacheEntry.__table__)
_GET = select(_TABLE.c.response, _TABLE.c.expires_at).where(_TABLE.c.key == bindparam("k"))
_HIT = update(_TABLE).where(_TABLE.c.key == bindparam("k")).values(hits=_TABLE.c.hits + 1)


def _upsert(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (key) DO UPDATE`` of a whole entry (keeping its ``hits``) on SQLite and
    PostgreSQL; None for other databases (they read, then insert or update)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt: Any = sqlite_insert(_TABLE)
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        stmt = postgresql_insert(_TABLE)
    else:
        return None
    return stmt.on_conflict_do_update(index_elements=[_TABLE.c.key], set_={
        "response": stmt.excluded.response, "created_at": stmt.excluded.created_at,
        "expires_at": stmt.excluded.expires_at})


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
