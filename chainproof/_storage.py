"""Storage helpers of the application shell: the per-run process lock, and opening the stores
with errors that name the setting to fix (``StorageError``)."""

from __future__ import annotations

import sqlite3

from chainproof._locks import lock_is_free, run_lock  # noqa: F401 - re-exported
from chainproof.checkpoints.saver import open_checkpointer
from chainproof.errors import StorageError


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
