"""The same pause → approve → complete path with the audit store and checkpointer on PostgreSQL."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from agents.models import StaticModels
from agents.scripted import ScriptedChatModel
from checkpoints.audit_schema import Step
from graphs.registry import register
from graphs.runner import Chainproof
from graphs.settings import Settings
from tests.toy_graph import ToyGraph

PG_URL = os.environ.get("CHAINPROOF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        return f"no PostgreSQL server reachable at {PG_URL}: {exc}"


pytestmark = pytest.mark.skipif(bool(_reachable()), reason=_reachable() or "")


@pytest.fixture
def pg_url():
    """A throwaway database on the server, so branches migrating the shared ``test`` database
    to other Alembic revisions cannot break this test (and it leaves nothing behind)."""
    import psycopg

    name = f"chainproof_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_pause_and_approve_on_postgres(home, pg_url):
    register("toy", ToyGraph)
    settings = Settings(home=home, database_url=pg_url, checkpoint_url=pg_url)
    model = ScriptedChatModel(replies=["a", "b", "c", json.dumps({"verdict": "no", "reason": "small number"})])
    with Chainproof(settings, models=StaticModels(model)) as app:
        run = app.start("toy", {"x": 1}, run_id=f"pg-{uuid.uuid4().hex[:8]}")
        assert run.status == "paused"
    # a fresh engine (as another process would) resumes from the PostgreSQL checkpoint
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=[]))) as app:
        assert app.pending_requests(run.run_id)[0]["proposed"]["verdict"] == "no"
        done = app.decide(run.run_id, action="approve", approver="PG Approver")
        assert done.status == "completed"
        assert [s.node for s in app.audit.records_of(run.run_id, Step)][-2:] == ["approve", "report"]
