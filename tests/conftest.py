"""Shared fixtures: an isolated CHAINPROOF_HOME per test, settings on it, and the shared data path."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphs.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAINPROOF_HOME", str(tmp_path / "home"))
    for var in ("CHAINPROOF_DATABASE_URL", "CHAINPROOF_CHECKPOINT_URL", "CHAINPROOF_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data bundle not found at {SHARED_DATA}")
    return SHARED_DATA


PG_ADMIN_URL = os.environ.get("CHAINPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_unreachable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable server"
        return f"no PostgreSQL server reachable at {PG_ADMIN_URL}: {exc}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test (created, then dropped), so runs of different
    branches or CI jobs never share tables or an Alembic version. Skips with the reason when no
    server is reachable."""
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    import psycopg

    name = f"chainproof_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
