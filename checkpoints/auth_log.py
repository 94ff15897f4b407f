"""The record of who signed in and what changed on accounts: ``auth_events``, one hash chain.

Every sign-in, failed sign-in, throttled sign-in, sign-out, token issued or revoked, account
added, disabled, enabled or given other roles is appended here by
:class:`chainproof.checkpoints.accounts.AccountStore`. The rows form one chain over the whole store
(not per run: these events belong to no run): ``seq`` 1, 2, …, each with the previous row's
``record_hash`` as ``prev_hash`` (:data:`~chainproof.checkpoints.audit_tables.GENESIS` for the
first) and its own SHA-256 over the canonical JSON of its columns (``id`` and ``record_hash``
excepted), as the run records are hashed (``checkpoints/audit_hashing.py``). No secret is ever
written: passwords, tokens and their hashes stay out of ``detail``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints.audit_hashing import sha256_hex

_HASHED = ("seq", "created_at", "kind", "username", "actor", "detail", "prev_hash")
_ATTEMPTS = 5  # PostgreSQL: two writers may pick the same seq; the unique constraint refuses one, which retries


def aware(value: datetime) -> datetime:
    """``value`` as timezone-aware UTC (SQLite returns naive UTC timestamps)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def event_hash(row: dict[str, Any]) -> str:
    """The ``record_hash`` of an ``auth_events`` row (its columns as a dict)."""
    return sha256_hex({"table": "auth_events", **{k: row[k] for k in _HASHED}})


@dataclass(frozen=True)
class AuthLogCheck:
    """The result of :func:`verify_auth_log`: ``ok``, how many ``records`` were checked, the head
    ``seq`` and hash, and for a broken chain the first bad ``seq`` and what is wrong (``problem``)."""

    ok: bool
    records: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    problem: str | None = None


def append_auth_event_on(conn: Connection, kind: str, *, username: str | None = None, actor: str | None = None,
                         detail: dict[str, Any] | None = None) -> int:
    """Append one event on ``conn`` (in the caller's transaction, so it commits with the change it
    records) and return its ``seq``. On PostgreSQL two writers may pick the same ``seq``: the
    unique constraint then raises ``IntegrityError``, and the caller retries its transaction."""
    e = t.auth_events.c
    last = conn.execute(select(e.seq, e.record_hash).order_by(e.seq.desc()).limit(1)).first()
    row: dict[str, Any] = {
        "seq": (last.seq + 1) if last else 1, "created_at": datetime.now(UTC), "kind": kind,
        "username": username, "actor": actor, "detail": detail or {},
        "prev_hash": last.record_hash if last else t.GENESIS}
    row["record_hash"] = event_hash(row)
    conn.execute(insert(t.auth_events).values(**row))
    return int(row["seq"])


def append_auth_event(engine: Engine, kind: str, *, username: str | None = None, actor: str | None = None,
                      detail: dict[str, Any] | None = None) -> int:
    """Append one event and return its ``seq``. ``kind``: e.g. ``login``, ``login_failed``,
    ``login_throttled``, ``logout``, ``token_issued``, ``token_revoked``, ``account_added``,
    ``account_disabled``, ``account_enabled``, ``roles_changed``, ``retention_changed``,
    ``run_purged``; ``username`` the account it is about, ``actor`` who did it (None: the person
    signing in)."""
    for attempt in range(_ATTEMPTS):
        try:
            with engine.begin() as conn:
                return append_auth_event_on(conn, kind, username=username, actor=actor, detail=detail)
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def auth_events(engine: Engine, *, username: str | None = None, after_seq: int = 0, limit: int = 200) -> list[dict[str, Any]]:
    """Events in ``seq`` order after ``after_seq``, optionally of one account, at most ``limit``."""
    e = t.auth_events.c
    stmt = select(t.auth_events).where(e.seq > after_seq).order_by(e.seq).limit(limit)
    if username is not None:
        stmt = stmt.where(e.username == username)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def auth_events_of_kind(engine: Engine, kind: str) -> list[dict[str, Any]]:
    """Every event of ``kind``, in ``seq`` order."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(t.auth_events).where(t.auth_events.c.kind == kind).order_by(t.auth_events.c.seq))]


def failures_since(engine: Engine, window_s: float, client: str | None) -> list[tuple[datetime, str]]:
    """The failed sign-ins of the last ``window_s`` seconds from the address ``client`` (as
    recorded in their ``detail``; None: those recorded without one), oldest first: ``(when, the
    username tried, case-folded)``."""
    e = t.auth_events.c
    since = datetime.now(UTC) - timedelta(seconds=window_s)
    with engine.connect() as conn:
        found = conn.execute(select(e.created_at, e.username, e.detail).where(
            e.kind == "login_failed", e.created_at >= since).order_by(e.seq))
        return [(aware(r.created_at), (r.username or "").strip().casefold()) for r in found
                if (r.detail or {}).get("client") == client]


def verify_auth_log(engine: Engine) -> AuthLogCheck:
    """Recompute every ``auth_events`` hash and link; the first row whose hash, link or ``seq``
    does not fit is reported (edited, deleted or inserted rows all break it)."""
    e = t.auth_events.c
    prev, count, expected = t.GENESIS, 0, 1
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(t.auth_events)) or 0
        for r in conn.execute(select(t.auth_events).order_by(e.seq)):
            row = dict(r._mapping)
            problem = None
            if row["seq"] != expected:
                problem = f"expected seq {expected}, found {row['seq']} (a record was deleted or inserted)"
            elif row["prev_hash"] != prev:
                problem = "prev_hash does not match the previous record (deleted, inserted or reordered)"
            elif event_hash(row) != row["record_hash"]:
                problem = "record_hash does not match its content (the record was edited)"
            if problem:
                return AuthLogCheck(False, total, expected - 1, prev, row["seq"], problem)
            prev, count, expected = row["record_hash"], count + 1, expected + 1
    return AuthLogCheck(True, count, count, prev)


__all__ = ["AuthLogCheck", "append_auth_event", "append_auth_event_on", "auth_events", "aware", "event_hash", "failures_since",
           "verify_auth_log"]
