"""Storage helpers of the application shell: the per-run process lock, and opening the stores
with errors that name the setting to fix (``StorageError``)."""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chainproof.checkpoints.saver import open_checkpointer
from chainproof.errors import RunBusy, StorageError


@contextmanager
def run_lock(home: Path, run_id: str) -> Iterator[None]:
    """An exclusive, non-blocking lock on ``run_id`` for this machine (``fcntl.flock`` on
    ``$CHAINPROOF_HOME/locks/RUN_ID.lock``), held while a process advances the run, so a second
    ``resume`` or a late approver cannot run the same steps twice. The operating system releases it
    when the process dies. Processes on other hosts sharing a PostgreSQL store are not covered.
    Raises ``RunBusy``."""
    folder = Path(home) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{run_id}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(f"run {run_id} is being advanced by another process right now; wait until it pauses or "
                          f"ends (chainproof runs), then `chainproof resume {run_id}` if anything is left to apply") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def storage_errors() -> tuple[type[BaseException], ...]:
    import psycopg
    from sqlalchemy.exc import SQLAlchemyError

    return (OSError, sqlite3.Error, SQLAlchemyError, psycopg.Error)


def cause(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    return f"{type(orig or exc).__name__}: {str(orig or exc).splitlines()[0]}"


def check_checkpointer(url: str) -> None:
    """Open the checkpointer at ``url`` once before a run is recorded, so a bad ``checkpoint_url``
    fails cleanly (``StorageError``) instead of leaving a run that started and can never checkpoint."""
    try:
        with open_checkpointer(url):
            pass
    except storage_errors() as exc:
        raise StorageError(f"checkpoint_url {url!r} (CHAINPROOF_CHECKPOINT_URL): cannot open the checkpointer: "
                           f"{cause(exc)}") from exc
