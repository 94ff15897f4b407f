"""Signed decisions through the web app. A session's decision is signed with the key the server
holds for the signed-in account (``chainproof/web/_account_keys.py``), made and registered on the
account's first decision; a client may sign the statement itself instead (from what /api/pending
lists), and a malformed or wrongly signed one is refused with nothing recorded. ``verify`` checks
the server's signatures like any other and flags one forged in the database; no account can sign
as another."""

from __future__ import annotations

import stat
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from chainproof.checkpoints._approver_keys import (
    ApproverKeys,
    KeySigner,
    create_key,
    decision_statement,
    load_public_key,
    sign_statement,
)
from chainproof.checkpoints._policy_store import PolicyStore, store_option
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.web._account_keys import account_key_path
from testkit.tamper import rechain_decision
from testkit.web_app import start


def _decisions(web, run_id):
    return [a for a in web.engine.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"]


def _account_id(web, name):
    return next(a.account_id for a in web.app.state.accounts.accounts() if a.username == name)


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
    malformed = dana.post(url, json={**body, "signature": {"key_id": key.key_id, "signature": "xx", "decided_at": now}})
    assert malformed.status_code in (400, 422) and "signature: expected 64 bytes" in malformed.text
    as_reject = dana.post(url, json={"action": "reject", "comment": "no", "request_id": req["request_id"],
                                     "proposed_hash": req["proposed_hash"],
                                     "signature": {"key_id": key.key_id, "signature": key.sign(statement), "decided_at": now}})
    assert as_reject.status_code == 403 and "does not verify" in as_reject.json()["detail"]
    assert _decisions(web, run_id) == []
    signed = dana.post(url, json={**body, "signature": {"key_id": key.key_id, "signature": key.sign(statement),
                                                         "decided_at": now}})
    assert signed.status_code == 202, signed.text
    [decision] = _decisions(web, run_id)
    assert decision.approver == "dana" and decision.signature["signed"] == statement
    assert not account_key_path(web.engine.settings.home, _account_id(web, "dana")).exists()  # the client's key, not the server's


def test_a_session_decision_on_a_new_store_is_signed_with_the_accounts_server_held_key(strict_home, web):
    engine = web.engine.audit.engine
    assert store_option(engine, "require_signature")[0] is True  # a store created with the product's default
    ana, lee = web.client("ana"), web.page("lee")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    [req] = lee.get("/api/pending").json()
    form = {"action": "approve", "proposed_hash": req["proposed_hash"], "csrf": lee.csrf}
    page = lee.post(f"/inbox/{run_id}/{req['request_id']}/decide", data=form)  # the browser inbox's form
    assert page.status_code == 303, page.text
    assert web.wait(ana, run_id, "completed")["status"] == "completed"
    [decision] = _decisions(web, run_id)
    path = account_key_path(strict_home, _account_id(web, "lee"))
    key = KeySigner.from_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and strict_home in path.parents
    assert decision.approver == "lee" and decision.signature["key_id"] == key.key_id
    registered = ApproverKeys(engine).get(key.key_id)
    assert registered is not None and registered.approver == "lee" and "credit-committee" in registered.roles
    with engine.connect() as conn:  # the registration is on record, naming the server and the account
        [(actor, detail)] = conn.execute(text("SELECT actor, detail FROM auth_events WHERE kind = 'approver_added'")).all()
    assert actor.startswith("server:") and '"held_by": "server"' in detail and _account_id(web, "lee") in detail
    with engine.connect() as conn:  # the private key never enters the database
        rows = " ".join(str(r) for r in conn.execute(text("SELECT * FROM approver_keys")))
    assert path.read_text().splitlines()[1] not in rows
    verified = web.client("aud").get(f"/api/runs/{run_id}/verify").json()
    assert verified["ok"] is True, verified


@pytest.mark.parametrize("forgery", ["signature bytes", "approver and signed approver"])
def test_verify_flags_a_forged_server_signature(strict_home, web, forgery):
    ana, dana = web.client("ana"), web.client("dana")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    [req] = dana.get("/api/pending").json()
    assert dana.post(f"/api/runs/{run_id}/decisions", json={"action": "approve", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"]}).status_code == 202
    web.wait(ana, run_id, "completed")
    [decision] = _decisions(web, run_id)
    sig = dict(decision.signature)
    if forgery == "signature bytes":  # re-signed with another key, the chain rehashed around it
        other, _, _ = create_key(strict_home.parent / "mallory" / "approver.key")
        forged = sign_statement(KeySigner.from_file(other).private_key, sig["signed"])
        rechain_decision(web.engine.audit, run_id, decision.request_id, signature={**sig, "signature": forged})
        expected = "does not verify"
    else:
        rechain_decision(web.engine.audit, run_id, decision.request_id, approver="lee",
                         signature={**sig, "signed": {**sig["signed"], "approver": "lee"}})
        expected = "registered to 'dana', not 'lee'"
    verified = web.client("aud").get(f"/api/runs/{run_id}/verify").json()
    assert verified["ok"] is False and expected in str(verified), verified


def test_an_account_cannot_sign_as_another(strict_home, web):
    ana, dana, lee = web.client("ana"), web.client("dana"), web.client("lee")
    first = start(web, ana)
    web.wait(ana, first, "paused")
    [req] = lee.get("/api/pending").json()
    assert lee.post(f"/api/runs/{first}/decisions", json={"action": "approve", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"]}).status_code == 202
    web.wait(ana, first, "completed")
    lee_key = KeySigner.from_file(account_key_path(strict_home, _account_id(web, "lee")))
    second = start(web, ana)
    web.wait(ana, second, "paused")
    [req] = dana.get("/api/pending").json()
    url = f"/api/runs/{second}/decisions"
    now = datetime.now(UTC).isoformat()
    # dana holds lee's server key file (a copy, say) and signs as lee, or names herself with lee's key
    for approver in ("lee", "dana"):
        statement = decision_statement(**req["signing"], action="approve", edited=None, comment=None, approver=approver,
                                       key_id=lee_key.key_id, decided_at=now)
        refused = dana.post(url, json={"action": "approve", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"], "signature": {
            "key_id": lee_key.key_id, "signature": lee_key.sign(statement), "decided_at": now}})
        assert refused.status_code == 403 and "registered to 'lee', not 'dana'" in refused.json()["detail"], refused.text
    assert _decisions(web, second) == []
    own = dana.post(url, json={"action": "approve", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"]})  # signed with her own key
    assert own.status_code == 202, own.text
    web.wait(ana, second, "completed")
    [decision] = _decisions(web, second)
    dana_key = KeySigner.from_file(account_key_path(strict_home, _account_id(web, "dana")))
    assert decision.approver == "dana" and decision.signature["key_id"] == dana_key.key_id != lee_key.key_id


def test_an_account_whose_key_an_admin_removed_is_refused(strict_home, web):
    ana, dana = web.client("ana"), web.client("dana")
    first = start(web, ana)
    web.wait(ana, first, "paused")
    [req] = dana.get("/api/pending").json()
    assert dana.post(f"/api/runs/{first}/decisions", json={"action": "approve", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"]}).status_code == 202
    web.wait(ana, first, "completed")
    ApproverKeys(web.engine.audit.engine).remove("dana", actor="account:root")
    second = start(web, ana)
    web.wait(ana, second, "paused")
    [req] = dana.get("/api/pending").json()
    refused = dana.post(f"/api/runs/{second}/decisions", json={"action": "approve", "request_id": req["request_id"], "proposed_hash": req["proposed_hash"]})
    assert refused.status_code == 403 and "was removed; nothing was decided" in refused.json()["detail"], refused.text
    assert _decisions(web, second) == []


def test_a_decision_is_allowed_by_the_accounts_current_roles_not_those_its_key_was_registered_with(web):
    """lee is allowed by the policy's ``role:credit-committee``; the server registers her key with
    that role at her first decision. Once an admin drops the role, or demotes or disables an
    approver, their next decision is refused and nothing is recorded."""
    ana, lee, dana = web.client("ana"), web.client("lee"), web.client("dana")
    accounts = web.app.state.accounts

    def decide(client, run_id):
        [req] = [r for r in web.client("aud").get("/api/pending").json() if r["run_id"] == run_id]
        return client.post(f"/api/runs/{run_id}/decisions", json={"action": "approve", "request_id": req["request_id"],
                                                                  "proposed_hash": req["proposed_hash"]})

    first = start(web, ana)
    web.wait(ana, first, "paused")
    assert decide(lee, first).status_code == 202
    web.wait(ana, first, "completed")
    key = KeySigner.from_file(account_key_path(web.engine.settings.home, _account_id(web, "lee")))
    assert "credit-committee" in ApproverKeys(web.engine.audit.engine).get(key.key_id).roles
    accounts.set_roles("lee", ["approver"], actor="test")  # still an approver, no longer on the committee
    accounts.set_roles("dana", ["analyst"], actor="test")
    second = start(web, ana)
    web.wait(ana, second, "paused")
    refused = decide(lee, second)
    assert refused.status_code == 403 and "'lee' may not decide" in refused.json()["detail"], refused.text
    assert [r["may_decide"] for r in lee.get("/api/pending").json() if r["run_id"] == second] == [False]
    assert decide(dana, second).status_code == 403
    accounts.set_roles("lee", ["approver", "credit-committee"], actor="test")
    accounts.set_disabled("lee", True, actor="test")
    assert decide(lee, second).status_code in (401, 403)  # a disabled account's session no longer works
    assert _decisions(web, second) == []
    accounts.set_disabled("lee", False, actor="test")
    again = web.client("lee")  # signed in again, on the committee again: allowed
    assert decide(again, second).status_code == 202
    web.wait(ana, second, "completed")
