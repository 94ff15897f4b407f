"""Storage helpers of the application shell: the per-run process lock, and opening the stores
with errors that name the setting to fix (``StorageError``)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chainproof._locks import lock_is_free, run_lock  # noqa: F401 - re-exported
from chainproof.checkpoints.saver import is_postgres_url, open_checkpointer, open_postgres_pool
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



class Checkpointers:
    """The LangGraph checkpointer an engine's runs use. On PostgreSQL: one connection pool of at
    most ``pool_size`` connections (``workers.pool_size``), opened on first use and shared by every
    run the engine advances at once (a run borrows a connection per checkpoint read or write),
    instead of a connection of each run's own. Otherwise a SQLite connection per use. Thread-safe."""

    def __init__(self, url: str, pool_size: int):
        self.url, self.pool_size = url, pool_size
        self._pool: Any = None
        self._guard = threading.Lock()

    def check(self) -> None:
        """Open the checkpointer once (on PostgreSQL: the pool); ``StorageError`` as
        :func:`check_checkpointer`."""
        if not is_postgres_url(self.url):
            check_checkpointer(self.url)
            return
        with self._guard:
            if self._pool is None:
                try:
                    self._pool = open_postgres_pool(self.url, self.pool_size)
                except storage_errors() as exc:
                    raise StorageError(f"checkpoint_url {self.url!r} (CHAINPROOF_CHECKPOINT_URL): cannot open the "
                                       f"checkpointer: {cause(exc)}") from exc

    @contextmanager
    def open(self) -> Iterator[Any]:
        """A checkpointer (LangGraph ``BaseCheckpointSaver``) for one run's use."""
        if is_postgres_url(self.url):
            self.check()
        with open_checkpointer(self.url, self._pool) as saver:
            yield saver

    def close(self) -> None:
        with self._guard:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
