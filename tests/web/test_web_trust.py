"""The web app under a database writer (issue 12): a session or API token inserted with SQL, an
analyst promoted to admin in the ``accounts`` row, and a forged registration of the key the server
holds for an approver are each refused; sign-in, sessions, tokens and the server-held key made
through the app (countersigned with the operator key) work."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import text

from chainproof.checkpoints._approver_keys import create_key, key_id_of, load_public_key
from chainproof.checkpoints._policy_store import PolicyStore
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.graphs.approval_policy import ApprovalPolicy
from testkit.web_app import PASSWORD, start

REFUSED = "grant not countersigned by a trusted operator key"


def _sql(web, statement: str, **params) -> None:
    """The attacker: a statement on the audit database, outside Chainproof's code."""
    with web.engine.audit.engine.begin() as conn:
        conn.execute(text(statement), params)


def _account_id(web, name: str) -> str:
    return next(a.account_id for a in web.app.state.accounts.accounts() if a.username == name)


def _forge_credential(web, name: str, kind: str) -> str:
    cid, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
    _sql(web, "INSERT INTO credentials (credential_id, account_id, kind, label, secret_hash, created_at) "
              "VALUES (:cid, :aid, :kind, 'forged', :hash, :now)", cid=cid, aid=_account_id(web, name), kind=kind,
         hash=hashlib.sha256(secret.encode()).hexdigest(), now=datetime.now(UTC))
    return f"{'cpt' if kind == 'api' else 'cps'}_{cid}_{secret}"


def test_an_inserted_api_token_is_refused_and_a_real_one_works(web):
    forged = web.client()
    forged.headers["Authorization"] = f"Bearer {_forge_credential(web, 'root', 'api')}"
    r = forged.get("/api/accounts")
    assert r.status_code == 403 and REFUSED in r.text and "credentials, row" in r.text
    root = web.client("root")
    token = root.post("/api/tokens", json={"label": "ci"}).json()["token"]
    real = web.client()
    real.headers["Authorization"] = f"Bearer {token}"
    assert real.get("/api/accounts").status_code == 200


def test_a_credential_countersigned_by_an_unknown_key_names_no_server_path(web):
    token = _forge_credential(web, "root", "api")
    _sql(web, "UPDATE credentials SET countersignature = :sig, operator_key_id = 'feedfacefeedface' WHERE label = 'forged'",
         sig=base64.b64encode(b"x" * 64).decode())
    forged = web.client()  # nobody signed in
    forged.headers["Authorization"] = f"Bearer {token}"
    r = forged.get("/api/me")
    assert r.status_code == 403 and "not a trusted operator key" in r.text, r.text
    assert str(web.app.state.settings.home) not in r.text and "operator-public" not in r.text, r.text


def test_an_inserted_session_cookie_is_refused(web):
    page = web.client()
    page.cookies.set("chainproof_session", _forge_credential(web, "root", "session"))
    r = page.get("/api/me")
    assert r.status_code == 403 and REFUSED in r.text
    assert web.page("root").get("/api/me").json()["username"] == "root"  # a session the app opened works


def test_an_analyst_promoted_in_the_database_can_neither_sign_in_nor_keep_using_her_session(web):
    ana = web.client("ana")  # signed in before the change
    _sql(web, "UPDATE accounts SET roles = :roles WHERE username = 'ana'", roles='["admin", "approver"]')
    r = ana.get("/api/accounts")
    assert r.status_code == 403 and "accounts, row" in r.text
    r = web.client().post("/api/login", json={"username": "ana", "password": PASSWORD})
    assert r.status_code == 403 and REFUSED in r.text
    page = web.client().post("/login", data={"username": "ana", "password": PASSWORD, "next": "/runs"})
    assert page.status_code == 403 and "may be forged" in page.text and "keys anchor" not in page.text
    root = web.client("root")  # the admin's change through the app is countersigned and works
    assert root.patch("/api/accounts/ana", json={"roles": ["analyst", "auditor"]}).status_code == 200
    assert web.client("ana").get("/api/me").json()["roles"] == ["analyst", "auditor"]


def test_a_forged_registration_of_the_server_held_key_is_refused(web, tmp_path):
    engine = web.engine.audit.engine
    PolicyStore(engine).put("web-toy", ApprovalPolicy(approvers=["dana"], require_signature=True),
                            actor="account:root", source="test")
    ana, dana, lee = web.client("ana"), web.client("dana"), web.client("lee")
    run_id = start(web, ana)
    web.wait(ana, run_id, "paused")
    # lee (not an approver of this graph) registers a key of her own as dana's, with SQL
    _, public, _ = create_key(tmp_path / "lee" / "approver.key")
    raw = load_public_key(public)
    _sql(web, "INSERT INTO approver_keys (key_id, approver, public_key, roles, added_at, added_by) "
              "VALUES (:kid, 'dana', :pk, '[]', :now, 'account:root')",
         kid=key_id_of(raw), pk=base64.b64encode(raw).decode(), now=datetime.now(UTC))
    [req] = dana.get("/api/pending").json()
    assert lee.post(f"/api/runs/{run_id}/decisions", json={"action": "approve", "request_id": req["request_id"],
                                                           "proposed_hash": req["proposed_hash"]}).status_code == 403
    # dana's own decision: the server makes and registers her key through the app, countersigned
    r = dana.post(f"/api/runs/{run_id}/decisions", json={"action": "approve", "request_id": req["request_id"],
                                                         "proposed_hash": req["proposed_hash"]})
    assert r.status_code in (200, 202), r.text
    [decision] = [a for a in web.engine.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"]
    assert decision.approver == "dana" and decision.signature["key_id"] != key_id_of(raw)
