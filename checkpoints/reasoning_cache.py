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

from sqlalchemy import CursorResult, Engine, delete, select, update
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
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response under ``key`` if it has not expired (counting the hit), else None."""
        now = self.clock()
        with self._sessions() as s, s.begin():
            row = s.get(ReasoningCacheEntry, key)
            if row is None or _utc(row.expires_at) <= now:
                return None
            s.execute(update(ReasoningCacheEntry).where(ReasoningCacheEntry.key == key)
                      .values(hits=ReasoningCacheEntry.hits + 1))
            return dict(row.response)

    def put(self, key: str, model: str, effort: str, response: dict[str, Any]) -> None:
        """Store (or replace) ``response`` (redacted) under ``key``, expiring ``ttl_s`` from now."""
        now = self.clock()
        response = self.redactor(response)
        with self._sessions() as s, s.begin():
            row = s.get(ReasoningCacheEntry, key)
            if row is None:
                s.add(ReasoningCacheEntry(key=key, model=model[:200], effort=effort, response=response,
                                          created_at=now, expires_at=now + self.ttl, hits=0))
            else:
                row.response, row.created_at, row.expires_at = response, now, now + self.ttl

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


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
