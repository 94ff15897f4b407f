"""PostgreSQL for tests: the server on 127.0.0.1:5432 (``CHAINPROOF_TEST_PG_URL`` overrides) and
throwaway databases, so a test sees an empty database (no tables, no Alembic version of another
branch or run) and leaves nothing behind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PG_URL = os.environ.get("CHAINPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_unreachable() -> str | None:
    """None when the server answers, else why not (the skip reason)."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:
        return f"no PostgreSQL server reachable at {PG_URL}: {exc}"


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it (``WITH (FORCE)``: open connections too)."""
    import psycopg

    name = f"chainproof_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
