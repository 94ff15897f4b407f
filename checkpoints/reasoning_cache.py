"""The reasoning cache's storage: model answers by request key, in the audit store's database.

Not an audit record: rows live in the ``reasoning_cache`` table (revision 0003), are not hash-chained,
expire after a TTL and can be deleted (``chainproof cache clear``). What a hit means for a run —
no model call, no cost, the saved tokens recorded — is decided by the caller
(:mod:`chainproof.graphs.model_access`); this module only stores and finds answers.

The key (:func:`cache_key`) is the SHA-256 of the canonical JSON of everything that determines an
answer: the model, the effort, the prompt as sent (``agents.calls.wire_messages``), the tools and
the sampling parameters. Two requests share an entry only when all of these are equal.

Writes ride along with the audit: within :func:`deferred_puts` (a
:class:`chainproof.graphs.recorder.StepRecorder` opens it around each super-step) :meth:`ReasoningCache.put`
keeps the entry, and the step's audit append writes it in its own transaction
(``AuditStore.append(..., riders=...)``), so a super-step commits once; an entry the append did
not take is written when the block ends. On SQLite and PostgreSQL lookups and writes run on the
DB-API cursor (:mod:`chainproof.checkpoints.fast_sql`); a lookup is a plain read (no write lock) and only a
hit opens a transaction, to count it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, bindparam, delete, insert, select, update
from sqlalchemy.orm import sessionmaker

from chainproof.checkpoints.audit_hashing import Redactor, sha256_hex
from chainproof.checkpoints.audit_schema import ReasoningCacheEntry, utcnow
from chainproof.checkpoints.fast_sql import FastStatement, cursor_of, supported

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
        self.engine = self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._upsert = _upsert(engine.dialect.name)
        fast = supported(engine.dialect) and self._upsert is not None
        self._fast_get = FastStatement(_GET, engine.dialect, result_types=[_TABLE.c.response.type,
                                                                            _TABLE.c.expires_at.type]) if fast else None
        self._fast_put = FastStatement(self._upsert, engine.dialect, column_keys=_COLUMNS) if fast else None

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored response under ``key`` if it has not expired (counting the hit), else None.
        An entry put within the current :func:`deferred_puts` block and not yet written counts."""
        now = self.clock()
        pending = _pending_entry(self, key)
        if pending is not None:
            if _utc(pending.values["expires_at"]) <= now:
                return None
            pending.hits += 1
            return json.loads(json.dumps(pending.values["response"]))  # as read back from the table
        if self._fast_get is not None:
            raw = self._engine.raw_connection()  # a plain read: no transaction, no write lock
            try:
                cursor = raw.cursor()
                rows = self._fast_get.rows(cursor, {"k": key})
                cursor.close()
            finally:
                raw.close()
            if not rows or _utc(rows[0][1]) <= now:
                return None
            with self._engine.begin() as conn:
                conn.execute(_HIT, {"k": key})
            return dict(rows[0][0])
        with self._engine.begin() as conn:
            row = conn.execute(_GET, {"k": key}).first()
            if row is None or _utc(row.expires_at) <= now:
                return None
            conn.execute(_HIT, {"k": key})
            return dict(row.response)

    def put(self, key: str, model: str, effort: str, response: dict[str, Any]) -> None:
        """Store (or replace) ``response`` (redacted) under ``key``, expiring ``ttl_s`` from now.
        Within :func:`deferred_puts` the entry is held for the step's audit append to write."""
        now = self.clock()
        response = self.redactor(response)
        values = {"key": key, "model": model[:200], "effort": effort, "response": response, "created_at": now,
                  "expires_at": now + self.ttl, "hits": 0}
        held = _PENDING.get()
        if held is not None:
            held.append(PendingPut(self, values))
            return
        with self._engine.begin() as conn:
            self.write(conn, values)

    def write(self, conn: Connection, values: dict[str, Any], hits: int = 0) -> None:
        """Write the entry ``values`` (see :meth:`put`) on ``conn``, then count ``hits`` on it."""
        key = values["key"]
        if self._fast_put is not None:
            cursor = cursor_of(conn)
            self._fast_put.execute(cursor, values)
            cursor.close()
        elif self._upsert is not None:  # one statement: INSERT … ON CONFLICT (key) DO UPDATE
            conn.execute(self._upsert, values)
        elif conn.execute(_GET, {"k": key}).first() is None:
            conn.execute(insert(_TABLE), values)
        else:
            conn.execute(update(_TABLE).where(_TABLE.c.key == key).values(
                response=values["response"], created_at=values["created_at"], expires_at=values["expires_at"]))
        if hits:
            conn.execute(update(_TABLE).where(_TABLE.c.key == key).values(hits=_TABLE.c.hits + hits))

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


@dataclass(eq=False)
class PendingPut:
    """An entry :meth:`ReasoningCache.put` held back (see :func:`deferred_puts`); a rider of the
    step's audit append (``engine``, ``write(conn)``). ``hits``: lookups it answered meanwhile."""

    cache: ReasoningCache
    values: dict[str, Any]
    hits: int = 0
    written: bool = False

    @property
    def engine(self) -> Engine:
        return self.cache.engine

    def write(self, conn: Connection) -> None:
        self.cache.write(conn, self.values, self.hits)
        self.written = True


_PENDING: ContextVar[list[PendingPut] | None] = ContextVar("chainproof_pending_cache_puts", default=None)


@contextmanager
def deferred_puts() -> Iterator[list[PendingPut]]:
    """Hold the cache entries put within the block (in this thread or task) in the list it yields.
    Whoever takes them (an audit append, ``riders=``) writes them and removes them from the list;
    those left when the block ends are written then, one transaction each (also on an exception)."""
    held: list[PendingPut] = []
    token = _PENDING.set(held)
    try:
        yield held
    finally:
        _PENDING.reset(token)
        for put in held:
            with put.cache.engine.begin() as conn:
                put.write(conn)
        held.clear()


def _pending_entry(cache: ReasoningCache, key: str) -> PendingPut | None:
    held = _PENDING.get()
    if not held:
        return None
    return next((p for p in reversed(held) if p.cache is cache and p.values["key"] == key), None)


_TABLE = ReasoningCacheEntry.__table__
_COLUMNS = ("key", "model", "effort", "response", "created_at", "expires_at", "hits")
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
