"""Alembic migrations: an empty database upgrades to head on SQLite and PostgreSQL, the result
matches the ORM models exactly, and downgrading to base removes every table."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from chainproof.checkpoints import audit
from chainproof.checkpoints.audit import make_engine, upgrade_schema
from chainproof.checkpoints.audit_schema import Base
from testkit.pg import fresh_database, pg_unreachable

TABLES = {"runs", "steps", "model_calls", "tool_calls", "approvals", "reviews", "events", "reasoning_cache",
          "merkle_leaves", "accounts", "credentials", "auth_events", "approver_keys", "approval_policies",
          "step_attempts", "effect_journal", "worker_heartbeats", "store_options", "alembic_version"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    with fresh_database() as url:
        yield url


def test_empty_database_upgrades_to_the_models_and_back(empty_url):
    engine = make_engine(empty_url)
    try:
        upgrade_schema(engine)
        assert set(inspect(engine).get_table_names()) == TABLES
        indexes = {i["name"] for t in ("runs", "approvals") for i in inspect(engine).get_indexes(t)}
        assert {"ix_runs_company", "ix_runs_department", "ix_runs_started_by", "ix_runs_created_at",
                "ix_approvals_approver"} <= indexes
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        upgrade_schema(engine)  # idempotent
        cfg = Config()
        cfg.set_main_option("script_location", str(Path(audit.__file__).parent / "migrations"))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()
