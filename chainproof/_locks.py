"""Exactly one process at a time advances a run.

* Audit store on PostgreSQL: a session-level advisory lock in that database
  (``pg_try_advisory_lock``), held for as long as the process advances the run, so every process
  and host sharing the database sees it, whatever its ``CHAINPROOF_HOME``. One connection per
  process and database holds every run lock the process takes (a worker advancing N runs at once
  needs one, not N); since PostgreSQL grants a session a lock it already holds, the runs held are
  also kept in the process, so a second thread of the same process gets ``RunBusy`` too.
* Otherwise (SQLite, one machine): a file lock per run under ``$CHAINPROOF_HOME/locks``.

Light on purpose (psycopg and the standard library only: no engine, no ORM), so read-only
commands can ask whether a run's process is still alive."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chainproof.errors import RunBusy

_PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
# Two int4 keys (classid, objid), each a hash of the run id: that key space does not overlap the
# single-bigint one the audit writer's pg_advisory_xact_lock(hashtext(run_id)) uses (PostgreSQL
# docs, "Advisory Lock Functions"), so the writer never waits on this lock; two hashes make a
# collision between two runs about 2^-64.
_KEYS = "hashtext('chainproof.advance:' || %(r)s), hashtext(%(r)s || ':chainproof.advance')"
# A host that vanishes without closing its connection frees its locks once the server's TCP
# keepalive gives up on it: after about 30 + 3 x 10 seconds with these session settings (the
# server defaults are the operating system's, often two hours).
_KEEPALIVE = ("SET tcp_keepalives_idle = 30", "SET tcp_keepalives_interval = 10", "SET tcp_keepalives_count = 3")
_sessions: dict[tuple[str, int], tuple[Any, set[str]]] = {}  # (dsn, pid) -> (connection, run ids it locks)
_guard = threading.Lock()


def postgres_dsn(url: str | None) -> str | None:
    """The libpq DSN of ``url`` when it is a PostgreSQL URL (``postgresql://``, ``postgres://`` or
    SQLAlchemy's ``postgresql+psycopg://``), else None."""
    if url is None or not url.startswith(_PG_SCHEMES):
        return None
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _busy(run_id: str) -> RunBusy:
    return RunBusy(f"run {run_id} is being advanced by another process right now; wait until it pauses or "
                   f"ends (chainproof runs), then `chainproof resume {run_id}` if anything is left to apply")


@contextmanager
def run_lock(home: Path, run_id: str, database_url: str | None = None) -> Iterator[None]:
    """An exclusive, non-blocking lock on ``run_id``, held while a process advances the run, so a
    second ``resume``, a late approver or a second worker cannot run the same steps twice. Raises
    ``RunBusy`` at once when another process holds it.

    ``database_url``: the audit store's URL. PostgreSQL: an advisory lock in that database, which
    covers every host sharing it; the server releases it when the holding connection ends (the
    process exits or dies). Otherwise: ``fcntl.flock`` on ``$CHAINPROOF_HOME/locks/RUN_ID.lock``,
    released by the operating system when the process dies; it covers this machine only."""
    dsn = postgres_dsn(database_url)
    if dsn is not None:
        with _pg_lock(dsn, run_id):
            yield
        return
    from chainproof._private_files import private_dir

    folder = private_dir(Path(home) / "locks")
    with open(folder / f"{run_id}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(run_id) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _session(dsn: str, run_id: str) -> tuple[Any, set[str]]:
    """This process's lock connection to ``dsn`` and the run ids locked on it (a new connection
    when the last one was lost: its locks went with it). Call holding ``_guard``."""
    import psycopg

    from chainproof.errors import StorageError

    key = (dsn, os.getpid())  # a forked child never shares its parent's session
    conn = _sessions[key][0] if key in _sessions else None
    if conn is None or conn.closed or conn.broken:
        try:
            conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name="chainproof-run-lock")
            for statement in _KEEPALIVE:
                conn.execute(statement)
        except psycopg.Error as exc:
            raise StorageError(f"database_url (CHAINPROOF_DATABASE_URL): cannot open a connection for run {run_id}'s "
                               f"lock: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        _sessions[key] = conn, set()
    return _sessions[key]


@contextmanager
def _pg_lock(dsn: str, run_id: str) -> Iterator[None]:
    import psycopg

    with _guard:
        conn, held = _session(dsn, run_id)
        try:
            if run_id in held or not _try(conn, run_id):
                raise _busy(run_id)
        except psycopg.Error:
            conn.close()  # the next lock opens a new session
            raise
        held.add(run_id)
    try:
        yield
    finally:
        with _guard:
            held.discard(run_id)
            if not conn.closed:
                try:
                    conn.execute(f"SELECT pg_advisory_unlock({_KEYS})", {"r": run_id})
                except psycopg.Error:  # the session is gone, and its locks with it
                    conn.close()


def _try(conn: Any, run_id: str) -> bool:
    row = conn.execute(f"SELECT pg_try_advisory_lock({_KEYS})", {"r": run_id}).fetchone()
    return bool(row and row[0])


def lock_is_free(home: Path, run_id: str, database_url: str | None = None) -> bool:
    """Whether no process holds ``run_id``'s lock right now (see :func:`run_lock`; on PostgreSQL
    any host sharing the database): a run recorded as ``started``/``resumed`` whose lock is free
    had its process end without recording how (killed, crashed); ``chainproof resume`` continues it
    from its last checkpoint."""
    dsn = postgres_dsn(database_url)
    if dsn is not None:
        import psycopg

        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            if not _try(conn, run_id):
                return False
            conn.execute(f"SELECT pg_advisory_unlock({_KEYS})", {"r": run_id})
            return True
    path = Path(home) / "locks" / f"{run_id}.lock"
    if not path.exists():
        return True
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True
