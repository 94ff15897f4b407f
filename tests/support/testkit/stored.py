"""Everything a home's SQLite stores hold, as bytes, for tests that assert a text was (or was never)
written: the raw files (audit store and checkpointer, WAL files included) and, since checkpoints
are zlib-compressed (:class:`chainproof.checkpoints.saver.CompressingSerializer`), every
checkpoint and pending write decompressed, so a secret inside a compressed checkpoint is found."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

from chainproof.checkpoints.saver import COMPRESSED_SUFFIX


def _decompressed(path: Path) -> bytes:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'checkpoints'").fetchone():
            return b""
        rows = [*conn.execute("SELECT type, checkpoint FROM checkpoints"), *conn.execute("SELECT type, value FROM writes")]
    finally:
        conn.close()
    return b"".join(zlib.decompress(blob) for typ, blob in rows if typ and typ.endswith(COMPRESSED_SUFFIX) and blob)


def stored_bytes(home: Path) -> bytes:
    """The bytes of every ``*.sqlite*`` file in ``home``, then each database's decompressed
    checkpoint and write values."""
    files = sorted(home.glob("*.sqlite*"))
    return b"".join(p.read_bytes() for p in files) + b"".join(
        _decompressed(p) for p in files if p.suffix == ".sqlite")
