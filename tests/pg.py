"""PostgreSQL for tests: the server named by ``CHAINPROOF_TEST_PG_URL`` (default the local one on
127.0.0.1:5432), and a scratch database per test so schema revisions and rows of other branches or
runs sharing that server never meet ours. Tests skip with the reason when no server is reachable."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

PG_URL = os.environ.get("CHAINPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def unreachable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can)."""
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        return f"no PostgreSQL server reachable at {PG_URL}: {exc}"


needs_postgres = pytest.mark.skipif(bool(unreachable()), reason=unreachable() or "")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh database on the test server, dropped after the test."""
    import psycopg

    name = f"chainproof_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
