"""PostgreSQL for tests: the server on 127.0.0.1:5432 (``CHAINPROOF_TEST_PG_URL`` overrides) and
throwaway schemas, so a test sees an empty database and leaves nothing behind."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PG_URL = os.environ.get("CHAINPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pg_unreachable() -> str | None:
    """None when the server answers, else why not (the skip reason)."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        return f"no PostgreSQL server reachable at {PG_URL}: {exc}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """Create an empty schema, yield a URL whose connections use it (``search_path``), drop it."""
    import psycopg

    name = f"cp_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')
