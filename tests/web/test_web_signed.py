"""Signed decisions through the web API: the server holds no approver key; a client signs the
decision statement built from what /api/pending lists, and the API refuses an unsigned,
malformed or wrongly signed decision under ``require_signature`` with nothing recorded."""

from __future__ import annotations

from datetime import UTC, datetime

from chainproof.checkpoints._approver_keys import ApproverKeys, KeySigner, create_key, decision_statement, load_public_key
from chainproof.checkpoints._policy_store import PolicyStore
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.graphs.approval_policy import ApprovalPolicy
from testkit.web_app import start


def test_a_client_signed_decision_is_accepted_and_others_refused(web, tmp_path):
    engine = web.engine.audit.engine
    private, public, _ = create_key(tmp_path / "dana" / "approver.key")
    ApproverKeys(engine).add("dana", load_public_key(public), [], actor="account:root")
    PolicyStore(engine).put("web-toy", ApprovalPolicy(approvers=["dana"], require_signature=True),
                            actor="account:root", source="test")
    ana, dana = web.client("ana"), web.client("dana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    [req] = dana.get("/api/pending").json()
    key = KeySigner.from_file(private)
    now = datetime.now(UTC).isoformat()
    statement = decision_statement(**req["signing"], action="approve", edited=None, comment=None, approver="dana",
                                   key_id=key.key_id, decided_at=now)
    url, body = f"/api/runs/{run_id}/decisions", {"action": "approve", "request_id": req["request_id"],
                                                  "proposed_hash": req["proposed_hash"]}
    unsigned = dana.post(url, json=body)
    assert unsigned.status_code == 403 and "signature: the approval policy" in unsigned.json()["detail"]
    malformed = dana.post(url, json={**body, "signature": {"key_id": key.key_id, "signature": "xx", "decided_at": now}})
    assert malformed.status_code in (400, 422) and "signature: expected 64 bytes" in malformed.text
    as_reject = dana.post(url, json={"action": "reject", "comment": "no", "request_id": req["request_id"],
                                     "proposed_hash": req["proposed_hash"],
                                     "signature": {"key_id": key.key_id, "signature": key.sign(statement), "decided_at": now}})
    assert as_reject.status_code == 403 and "does not verify" in as_reject.json()["detail"]
    assert [a for a in web.engine.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"] == []
    signed = dana.post(url, json={**body, "signature": {"key_id": key.key_id, "signature": key.sign(statement),
                                                         "decided_at": now}})
    assert signed.status_code == 202, signed.text
    [decision] = [a for a in web.engine.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"]
    assert decision.approver == "dana" and decision.signature["signed"] == statement
