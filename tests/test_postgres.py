"""The same pause → approve → complete path with the audit store and checkpointer on PostgreSQL."""

from __future__ import annotations

import json
import uuid

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import Step
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.toy_graph import ToyGraph


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
