"""A database writer (no operator key, no approver key) tries to get an unsigned, disallowed
approver's decision onto a run paused under a stored policy requiring Dana's signature, with raw
SQL on the store (``sqlite3``), as the security tester did:

1. loosen the policy copied into the run's ``run_started`` record (optionally making its hash
   agree, claiming the graph's own policy, and rehashing the whole chain), then ``approve --as
   Mallory`` without a key: refused, nothing recorded; ``verify`` (one run and ``--all``) fails;
2. insert a decision row for the pending request, then ``chainproof resume``: refused naming the
   row, nothing applied; also when the forged row is chained with correct hashes.

A decision Dana signed and recorded without applying (``decide(wait=False)``, as a crash leaves
it) still resumes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints._approver_keys import ApproverKeys, KeySigner, create_key, load_public_key
from chainproof.checkpoints._policy_store import PolicyStore
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.cli import app as cli
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.tamper import rechain
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
runner = CliRunner()
YES = json.dumps({"verdict": "yes", "reason": "the doubled square is large"})
STRICT = ApprovalPolicy(approvers=["Dana Approver"], require_signature=True)
LAX = ApprovalPolicy(approvers=[], require_signature=False)


@pytest.fixture
def dana_key(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Dana's registered key; the stored policy for ``toy`` needs her signature. The attacker acts
    from a config folder without any key."""
    key = tmp_path / "dana" / "approver.key"
    with Chainproof(Settings(home=home)) as app:
        _, public, _ = create_key(key)
        ApproverKeys(app.audit.engine).add("Dana Approver", load_public_key(public), [], actor="account:admin")
        PolicyStore(app.audit.engine).put("toy", STRICT, actor="account:admin", source="test")
    mallory = tmp_path / "mallory-config"
    mallory.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(mallory))
    monkeypatch.setenv("HOME", str(mallory))
    monkeypatch.delenv("CHAINPROOF_APPROVAL_POLICIES", raising=False)
    return key


def _start(home: Path) -> tuple[str, str]:
    """A paused run and the path of its SQLite store."""
    model = ScriptedChatModel(replies=["The square.", "The double.", "Large.", YES])
    with Chainproof(Settings(home=home), models=StaticModels(model)) as app:
        run = app.start("toy", {"x": 3})
        db = app.audit.engine.url.database
    assert run.status == "paused" and db
    return run.run_id, db


def _sql(db: str, statement: str, *params: object) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(statement, params)


def _rechain(home: Path, run_id: str) -> None:
    with Chainproof(Settings(home=home)) as app:
        rechain(app.audit, run_id)


def _decisions(home: Path, run_id: str) -> list[ApprovalRecord]:
    with Chainproof(Settings(home=home)) as app:
        return [a for a in app.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"]


def _status(home: Path, run_id: str) -> str:
    with Chainproof(Settings(home=home)) as app:
        return app.audit.run_status(run_id)


LOOSEN = ("UPDATE events SET detail=json_set(detail,'$.approval_policy.require_signature',json('false'),"
          "'$.approval_policy.approvers',json('[]')) WHERE run_id=? AND kind='run_started'")
SAME_HASH = ("UPDATE events SET detail=json_set(detail,'$.approval_policy_version.policy_hash',?) "
             "WHERE run_id=? AND kind='run_started'")
AS_GRAPH = ("UPDATE events SET detail=json_set(detail,'$.approval_policy_version.source','graph',"
            "'$.approval_policy_version.version',json('null')) WHERE run_id=? AND kind='run_started'")

# (how far the attacker goes, what the refusal says)
EDITS = [
    ("copy loosened", "no longer hashes to its record_hash"),
    ("copy loosened, chain rehashed", "does not hash to its approval_policy_version.policy_hash"),
    ("copy and its hash loosened, chain rehashed", "is not the hash of stored version 1 of toy"),
    ("claims the graph's own policy, chain rehashed", "the store held version 1 of toy's policy"),
]


@pytest.mark.parametrize(("edit", "why"), EDITS, ids=[e[0] for e in EDITS])
def test_an_edited_run_policy_does_not_let_an_unsigned_outsider_decide(home, dana_key, edit, why):
    run_id, db = _start(home)
    _sql(db, LOOSEN, run_id)
    if "its hash" in edit or "graph's own" in edit:
        _sql(db, SAME_HASH, LAX.digest(), run_id)
    if "graph's own" in edit:
        _sql(db, AS_GRAPH, run_id)
    if "rehashed" in edit:
        _rechain(home, run_id)
    refused = runner.invoke(cli, ["approve", run_id, "--as", "Mallory"])
    out = " ".join(refused.output.split())
    assert refused.exit_code == 1, out
    assert why in out and "nothing was decided" in out, out
    assert _decisions(home, run_id) == [] and _status(home, run_id) == "paused"
    for args in (["verify", run_id], ["verify", "--all"]):
        checked = runner.invoke(cli, args)
        said = " ".join(checked.output.split())
        assert checked.exit_code == 1, said
        assert (why if "rehashed" in edit else "edited") in said, said


def test_verify_flags_a_signed_decision_stripped_under_a_loosened_copy(home, dana_key, monkeypatch):
    """Dana's signed decision made unsigned, the run's policy copy loosened to match, its hash too,
    the chain rehashed: verify still names the run's policy."""
    run_id, db = _start(home)
    with Chainproof(Settings(home=home)) as app:
        app.decide(run_id, action="approve", approver="Dana Approver", signer=KeySigner.from_file(dana_key))
    _sql(db, "UPDATE approvals SET signature=NULL WHERE run_id=? AND action='approve'", run_id)
    _sql(db, LOOSEN, run_id)
    _sql(db, SAME_HASH, LAX.digest(), run_id)
    _rechain(home, run_id)
    checked = runner.invoke(cli, ["verify", run_id])
    said = " ".join(checked.output.split())
    assert checked.exit_code == 1 and "is not the hash of stored version 1 of toy" in said, said


def _pending(home: Path, run_id: str) -> dict:
    with Chainproof(Settings(home=home)) as app:
        paused = app.audit.last_event(run_id, "run_paused").detail
        request = paused["requests"][0]
        seq = max(r.seq for r in app.audit.records(run_id))
    return {"checkpoint_id": paused["checkpoint_id"], "interrupt_id": request["interrupt_id"],
            "request_id": request["request_id"], "proposed_hash": request["proposed_hash"], "seq": seq}


@pytest.mark.parametrize("chained", [False, True], ids=["hashes 'x'", "chain rehashed"])
def test_resume_refuses_a_decision_row_inserted_in_the_database(home, dana_key, chained):
    run_id, db = _start(home)
    p = _pending(home, run_id)
    payload = {"request_id": p["request_id"], "action": "approve", "approver": "Mallory", "comment": None,
               "edited": None, "decided_at": "2026-01-01T00:00:00+00:00", "subject": "decision",
               "interrupt_id": p["interrupt_id"], "checkpoint_id": p["checkpoint_id"], "decided_hash": "x"}
    _sql(db, "INSERT INTO approvals (step_no, request_id, action, approver, comment, proposed_hash, payload, signature, "
             "seq, created_at, prev_hash, record_hash, run_id) VALUES (1, ?, 'approve', 'Mallory', NULL, ?, ?, NULL, ?, "
             "'2026-01-01 00:00:00.000000', 'x', 'x', ?)",
         p["request_id"], p["proposed_hash"], json.dumps(payload), p["seq"] + 1, run_id)
    if chained:
        _rechain(home, run_id)
    refused = runner.invoke(cli, ["resume", run_id])
    out = " ".join(refused.output.split())
    assert refused.exit_code == 1, out
    assert "approvals row id" in out and "'Mallory'" in out and "not applied" in out, out
    assert ("unsigned" if chained else "chain up to it is broken") in out, out
    assert _status(home, run_id) == "paused"
    assert "completed" not in out


def test_a_signed_decision_recorded_but_not_applied_still_resumes(home, dana_key):
    run_id, _ = _start(home)
    with Chainproof(Settings(home=home)) as app:
        app.decide(run_id, action="approve", approver="Dana Approver", signer=KeySigner.from_file(dana_key), wait=False)
    resumed = runner.invoke(cli, ["resume", run_id])
    assert resumed.exit_code == 0, resumed.output
    assert _status(home, run_id) == "completed"
    assert runner.invoke(cli, ["verify", run_id]).exit_code == 0
