"""The LangGraph checkpointer behind every run: SQLite by default, PostgreSQL by URL.

A run's thread (``thread_id`` = run id) is checkpointed after every super-step, so a paused or
crashed run resumes in any process that opens the same checkpointer.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from chainproof import _killpoints
from chainproof.errors import StorageError


def integer_next_version(self: BaseCheckpointSaver, current: Any, channel: Any) -> Any:
    """Channel versions as integers (LangGraph's own default in
    ``BaseCheckpointSaver.get_next_version``); a thread that already has string versions keeps
    them (mixing would break version comparisons)."""
    if isinstance(current, str):
        return super(type(self), self).get_next_version(current, channel)  # type: ignore[misc]  # mixed into a saver class; the saver's own string versions
    return 1 if current is None else current + 1


COMPRESSED_SUFFIX = "+zlib"
"""Appended to a serialized value's type (``"msgpack+zlib"``) when its bytes are zlib-compressed;
the pattern of LangGraph's own ``EncryptedSerializer`` (``"msgpack+aes"``)."""


class CompressingSerializer(SerializerProtocol):
    """LangGraph's ``JsonPlusSerializer`` with values of at least ``min_bytes`` bytes (512)
    compressed by zlib at ``level`` (6, zlib's default), typed ``"<type>+zlib"``.

    A checkpoint of a long chain's bounded state is about 1.5 KB of msgpack in which the names of
    ~20 channels repeat three times (values, ``channel_versions``, ``versions_seen``); zlib halves
    it (measured 1,465 -> 743 bytes, about 10 microseconds) and SQLite keeps one per super-step,
    so this is about 1.5 KB per plan step on ``bench/long_chain.py``. Values below ``min_bytes``
    (most task writes) are stored as LangGraph stores them. Values written without the suffix
    (before this serializer, or by a plain ``SqliteSaver``) load unchanged. A plain
    ``SqliteSaver`` cannot read a compressed checkpoint: open a thread's file with
    :func:`open_checkpointer`.
    """

    def __init__(self, inner: SerializerProtocol | None = None, *, min_bytes: int = 512, level: int = 6):
        self.inner = inner or JsonPlusSerializer()
        self.min_bytes = min_bytes
        self.level = level

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        """``(type, bytes)`` of ``obj``: the inner serializer's, compressed when large enough."""
        typ, data = self.inner.dumps_typed(obj)
        if len(data) < self.min_bytes:
            return typ, data
        return typ + COMPRESSED_SUFFIX, zlib.compress(data, self.level)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """The value of a ``(type, bytes)`` pair written by :meth:`dumps_typed` or by the inner
        serializer alone. Raises ``zlib.error`` on a corrupted compressed value."""
        typ, blob = data
        if typ.endswith(COMPRESSED_SUFFIX):
            return self.inner.loads_typed((typ.removesuffix(COMPRESSED_SUFFIX), zlib.decompress(blob)))
        return self.inner.loads_typed(data)


def memory_saver() -> BaseCheckpointSaver:
    """An in-memory checkpointer (replay's) with the SQLite saver's integer channel versions, so a
    checkpoint recorded from a SQLite thread (a fork's starting point) can be seeded into it."""
    from langgraph.checkpoint.memory import InMemorySaver

    class IntegerVersionsMemorySaver(InMemorySaver):
        get_next_version = integer_next_version

    return IntegerVersionsMemorySaver()


def _compact_sqlite_saver():
    from langgraph.checkpoint.sqlite import SqliteSaver

    class CompactSqliteSaver(SqliteSaver):
        """SqliteSaver whose storage per super-step stays small on long chains.

        1. Integer channel versions (LangGraph's own default in
           ``BaseCheckpointSaver.get_next_version``) instead of SqliteSaver's 49-character
           ``"<32-digit counter>.<random>"`` strings. SQLite keeps channel values inline in each
           checkpoint, so the random suffix (which keeps blob keys unique across forks in savers
           that store blobs by version) buys nothing here, while every checkpoint repeats one
           version per channel twice (``channel_versions`` and ``versions_seen``): measured on a
           100-step chain, versions were ~2.6 KB of a 2.7 KB checkpoint. Threads written with string
           versions keep them (mixing would break version comparisons).
        2. When a super-step completes (a ``source="loop"`` checkpoint), the task writes stored
           against its parent checkpoint are deleted: they are folded into the new checkpoint, and
           LangGraph reapplies pending writes only at a thread's latest checkpoint (time travel to
           an older one re-runs its tasks; ``pregel/_loop.py``, ``_reapplies_pending_writes``). What
           is lost is cosmetic: ``get_state_history()`` shows no per-task results for old
           snapshots. The audit store keeps the full trace. Measured on the 500-step benchmark:
           the ``writes`` table was ~40 % of the checkpointer's file.
        3. Checkpoints of 512 bytes or more are zlib-compressed (:class:`CompressingSerializer`).
        """

        get_next_version = integer_next_version

        def put(self, config, checkpoint, metadata, new_versions):
            saved = super().put(config, checkpoint, metadata, new_versions)
            parent = config["configurable"].get("checkpoint_id")
            if parent and metadata.get("source") == "loop":
                with self.cursor() as cur:
                    cur.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
                                (str(config["configurable"]["thread_id"]), config["configurable"].get("checkpoint_ns", ""),
                                 parent))
            return saved

    return CompactSqliteSaver


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://"))


def open_postgres_pool(url: str, max_size: int) -> Any:
    """A ``psycopg_pool.ConnectionPool`` of 1 to ``max_size`` connections to the PostgreSQL
    checkpointer at ``url``, its tables created; ``open_checkpointer(url, pool)`` hands out
    PostgresSaver instances on it, each borrowing a connection per operation
    (langgraph-checkpoint-postgres accepts a pool whose connections have ``autocommit=True``,
    ``prepare_threshold=0`` and dict rows). Connections are named ``chainproof-checkpoints``;
    a run waits up to 30 s for one. Raises ``psycopg_pool.PoolTimeout`` (a psycopg
    ``OperationalError``) when the server is unreachable for 10 s. Close it with ``close()``."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    pool: ConnectionPool[Any] = ConnectionPool(dsn, min_size=1, max_size=max_size, open=False, name="chainproof-checkpoints",
                          kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row,
                                  "application_name": "chainproof-checkpoints", "connect_timeout": 10})
    try:
        pool.open(wait=True, timeout=10)
        PostgresSaver(pool).setup()
    except BaseException:
        pool.close()
        raise
    return pool


@contextmanager
def open_checkpointer(url: str, pool: Any = None) -> Iterator[BaseCheckpointSaver]:
    """Open the checkpointer at ``url`` and create its tables (idempotent).

    ``url``: a SQLite file path (``~`` expanded, parent folders created) or a
    ``postgresql://`` URL. PostgreSQL connections use ``autocommit=True`` and
    ``prepare_threshold=0``: without autocommit PostgresSaver never commits (see
    langgraph-checkpoint-postgres' ``from_conn_string``). ``pool``: a pool from
    :func:`open_postgres_pool` (tables already created) instead of a connection of its own.
    """
    if is_postgres_url(url):
        from langgraph.checkpoint.postgres import PostgresSaver

        if pool is not None:
            yield _killpoints.watch_saver(PostgresSaver(pool))
            return
        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with PostgresSaver.from_conn_string(dsn) as saver:
            saver.setup()
            yield _killpoints.watch_saver(saver)
        return
    if ":memory:" in url:
        raise StorageError(f"checkpoint_url {url!r}: an in-memory checkpointer cannot keep a paused run; use a file path")
    if "://" in url and not url.startswith("sqlite:///"):
        raise StorageError(f"checkpoint_url {url!r}: expected a SQLite file path (or sqlite:///path) or a postgresql:// URL")
    from chainproof._private_files import private_file

    path = private_file(url.removeprefix("sqlite:///"))  # 0600 in a 0700 folder when created here
    # check_same_thread=False is safe: SqliteSaver serialises access with its own lock.
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        # 8 KiB pages (new files only): checkpoint rows are ~1.3 KB, so 4 KiB pages held two and
        # wasted a third; measured on bench/long_chain.py: 4.7 -> 3.8 KB per plan step.
        conn.execute("PRAGMA page_size=8192")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA secure_delete=ON")  # deleted checkpoints are overwritten, see forget_thread
        saver = _compact_sqlite_saver()(conn, serde=CompressingSerializer())
        saver.setup()
        yield _killpoints.watch_saver(saver)
    finally:
        conn.close()


def forget_thread(saver: BaseCheckpointSaver, thread_id: str) -> None:
    """Delete every checkpoint and pending write of ``thread_id`` (zero data retention).

    On SQLite the deleted pages are zeroed (``secure_delete``, set on open) and the WAL is
    checkpointed and truncated, so the text is gone from the files. On PostgreSQL the rows are
    deleted; their dead tuples stay on disk until the next VACUUM (PostgreSQL MVCC).
    """
    saver.delete_thread(thread_id)
    conn = getattr(saver, "conn", None)
    if isinstance(conn, sqlite3.Connection):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
