"""The operator key as trust anchor: each grant an attacker with write access to the database can
add or change (an approver key, an account's roles, a session or API token, a looser policy
version, require_signature, the retention) is tried with plain SQL, as that attacker would, and
refused at use and flagged by ``verify``; the same change made through Chainproof, which
countersigns with the operator key, works."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from chainproof.app import Chainproof
from chainproof.checkpoints._approver_keys import create_key, key_id_of, load_public_key
from chainproof.checkpoints._policy_store import PolicyStore, store_option
from chainproof.checkpoints.accounts import AccountStore
from chainproof.checkpoints.retention import RetentionStore
from chainproof.cli import app as cli
from chainproof.errors import GrantNotTrusted
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.cli_accounts import PASSWORD, cli_out
from testkit.pg import fresh_database, pg_unreachable
from testkit.toy_graph import ToyGraph
from testkit.toy_graph import start_paused as _start

register("toy", ToyGraph)
runner = CliRunner()
STRICT = ApprovalPolicy(approvers=["Dana Approver"], require_signature=True)
NOW = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
REFUSED = "grant not countersigned by a trusted operator key"


def _sql(home: Path, statement: str, *params: object) -> None:
    """The attacker: a write to the SQLite audit store, outside Chainproof."""
    with sqlite3.connect(home / "audit.sqlite") as conn:
        conn.execute(statement, params)


def _as_user(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    monkeypatch.setenv("HOME", str(folder))


def _verify_flags(*expected: str) -> str:
    result = runner.invoke(cli, ["verify", "--all"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out
    for part in (REFUSED, *expected):
        assert part in out, out
    return out


@pytest.fixture
def store(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A store set up through Chainproof: an admin ``root`` signed in on the CLI, an analyst
    ``ann``, Dana's registered approver key and a stored policy for ``toy`` requiring her signed
    decision. Returns the config folders of Dana and of Mallory (who holds an unregistered key)."""
    cli_out("users", "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    cli_out("login", "root", "--password-stdin", stdin=PASSWORD + "\n")
    cli_out("users", "add", "ann", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n")
    folders = {name: tmp_path / f"config-{name}" for name in ("dana", "mallory")}
    for name in folders:
        create_key(folders[name] / "chainproof" / "keys" / "approver.key")
    cli_out("approvers", "add", "Dana Approver", "--public-key",
            str(folders["dana"] / "chainproof" / "keys" / "approver.pub"))
    with Chainproof(Settings()) as app:
        PolicyStore(app.audit.engine).put("toy", STRICT, actor="account:root", source="test")
    assert runner.invoke(cli, ["verify", "--all"]).exit_code == 0  # every grant countersigned
    return folders


def test_a_new_stores_creator_gets_the_operator_key(home, tmp_path):
    cli_out("users", "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    key = home / "keys" / "operator.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    [public] = (home / "keys" / "operator-public").glob("*.pub")
    out = cli_out("keys", "operator", "--out", str(tmp_path / "for-other-hosts.pub"))
    assert "already present" in out and public.stem in out
    assert (tmp_path / "for-other-hosts.pub").read_bytes() == public.read_bytes()
    key.chmod(0o644)  # readable by others: refused, as ssh refuses an open private key
    refused = cli_out("login", "root", "--password-stdin", stdin=PASSWORD + "\n", code=2)  # a token is a grant
    assert f"trust.key_file {key}: permissions 0644" in refused and f"chmod 600 {key}" in refused


def _forge_key(home: Path, store: dict[str, Path], approver: str, roles: str) -> str:
    """A database writer's approver_keys row: Mallory's public key registered for ``approver`` with
    ``roles`` (JSON), no countersignature; its key id."""
    mallory_pub = load_public_key(store["mallory"] / "chainproof" / "keys" / "approver.pub")
    kid = key_id_of(mallory_pub)
    _sql(home, "INSERT INTO approver_keys (key_id, approver, public_key, roles, added_at, added_by) "
               "VALUES (?, ?, ?, ?, ?, 'account:root')", kid, approver, base64.b64encode(mallory_pub).decode(), roles, NOW)
    return kid


def test_a_forged_approver_key_is_refused_and_flagged(home, monkeypatch, store):
    kid = _forge_key(home, store, "Dana Approver", '[]')
    run_id = _start()
    _as_user(monkeypatch, store["mallory"])
    refused = cli_out("approve", run_id, "--as", "Dana Approver", code=2)
    assert REFUSED in refused and f"approver_keys, row {kid}" in refused and "nothing was decided" in refused
    # a countersignature copied from Dana's genuine row does not move to the forged one
    _sql(home, "UPDATE approver_keys SET countersignature = (SELECT countersignature FROM approver_keys "
               "WHERE key_id != ?), operator_key_id = (SELECT operator_key_id FROM approver_keys WHERE key_id != ?) "
               "WHERE key_id = ?", kid, kid, kid)
    assert "does not verify" in cli_out("approve", run_id, "--as", "Dana Approver", code=2)
    _verify_flags(f"approver_keys, row {kid}")
    assert "REFUSED: not countersigned by a trusted operator key" in cli_out("approvers", "list")
    (home / "credentials.json").unlink()  # root's CLI sign-in; Dana approves with her key alone
    _as_user(monkeypatch, store["dana"])  # the key registered through Chainproof works
    cli_out("approve", run_id, "--as", "Dana Approver")


def test_a_reenabled_removed_key_is_refused(home, monkeypatch, store):
    dana = key_id_of(load_public_key(store["dana"] / "chainproof" / "keys" / "approver.pub"))
    cli_out("approvers", "remove", "Dana Approver")
    _sql(home, "UPDATE approver_keys SET removed_at = NULL, removed_by = NULL WHERE key_id = ?", dana)
    run_id = _start()
    _as_user(monkeypatch, store["dana"])
    assert "the countersignature does not verify" in cli_out("approve", run_id, "--as", "Dana Approver", code=2)


def test_an_analyst_promoted_in_the_database_is_refused(home, store):
    with Chainproof(Settings()) as app:
        accounts = AccountStore(app.audit.engine)
        token, _ = accounts.issue_token(accounts.login("ann", PASSWORD))  # before the promotion
        _sql(home, "UPDATE accounts SET roles = '[\"admin\", \"approver\"]' WHERE username = 'ann'")
        with pytest.raises(GrantNotTrusted, match="accounts, row"):
            accounts.login("ann", PASSWORD)
        with pytest.raises(GrantNotTrusted, match="accounts, row"):
            accounts.authenticate(token, "api")
    refused = cli_out("login", "ann", "--password-stdin", stdin=PASSWORD + "\n", code=2)
    assert REFUSED in refused and "may be forged" in refused and "keys anchor" not in refused  # an anchored store
    assert "REFUSED: not countersigned by a trusted operator key" in cli_out("users", "list")
    _verify_flags("accounts, row", "not the roles last recorded in the audit")


def test_a_changed_password_hash_or_an_inserted_account_is_refused(home, store):
    with Chainproof(Settings()) as app:
        accounts = AccountStore(app.audit.engine)
        ann_hash = accounts._row("ann")["password_hash"]  # the attacker knows ann's password, wants root's account
        _sql(home, "UPDATE accounts SET password_hash = ? WHERE username = 'root'", ann_hash)
        with pytest.raises(GrantNotTrusted):
            accounts.login("root", PASSWORD)
        _sql(home, "INSERT INTO accounts (account_id, username, display_name, roles, department, password_hash, "
                   "disabled, created_at) VALUES ('f' || hex(randomblob(15)), 'eve', 'Eve', '[\"admin\"]', NULL, ?, 0, ?)",
             ann_hash, NOW)
        with pytest.raises(GrantNotTrusted):
            accounts.login("eve", PASSWORD)


@pytest.mark.parametrize("kind", ["api", "session"])
def test_an_inserted_token_or_session_is_refused(home, store, kind):
    with Chainproof(Settings()) as app:
        accounts = AccountStore(app.audit.engine)
        root = accounts._row("root")["account_id"]
        cid, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
        import hashlib

        _sql(home, "INSERT INTO credentials (credential_id, account_id, kind, label, secret_hash, created_at) "
                   "VALUES (?, ?, ?, 'forged', ?, ?)", cid, root, kind, hashlib.sha256(secret.encode()).hexdigest(), NOW)
        with pytest.raises(GrantNotTrusted, match=f"credentials, row {cid}"):
            accounts.authenticate(f"{'cpt' if kind == 'api' else 'cps'}_{cid}_{secret}", kind)  # type: ignore[arg-type]
        genuine, _ = accounts.issue_token(accounts.login("root", PASSWORD))  # through Chainproof: works
        assert accounts.authenticate(genuine, "api").username == "root"
    _verify_flags(f"credentials, row {cid}")


def test_a_loosened_policy_version_is_refused(home, store):
    _sql(home, "INSERT INTO approval_policies (graph, version, policy, policy_hash, created_at, created_by) "
               "VALUES ('toy', 2, ?, ?, ?, 'account:root')",
         json.dumps(ApprovalPolicy().model_dump(mode="json")), ApprovalPolicy().digest(), NOW)
    with pytest.raises(GrantNotTrusted, match="approval_policies, row toy/2"):
        _start()
    _verify_flags("approval_policies, row toy/2")


def test_a_flipped_require_signature_or_retention_is_refused(home, store):
    cli_out("retention", "set", "7 years")  # through Chainproof: countersigned
    _sql(home, "INSERT INTO store_settings (name, version, value, created_at, created_by) "
               "VALUES ('require_signature', 2, 'false', ?, 'account:root')", NOW)
    with Chainproof(Settings()) as app:
        with pytest.raises(GrantNotTrusted, match="store_settings, row require_signature/2"):
            store_option(app.audit.engine, "require_signature")
    _sql(home, "INSERT INTO store_settings (name, version, value, created_at, created_by) "
               "VALUES ('retention', 2, '{\"amount\": 1, \"unit\": \"days\"}', ?, 'account:root')", NOW)
    with Chainproof(Settings()) as app:
        with pytest.raises(GrantNotTrusted, match="store_settings, row retention/2"):
            RetentionStore(app.audit.engine).current()
    assert REFUSED in cli_out("purge", "--dry-run", code=2)
    _verify_flags("store_settings, row require_signature/2", "store_settings, row retention/2")
    # the admin's repair: countersigned newer versions supersede the forged ones
    cli_out("policy", "set", "--store", "require_signature=true")
    cli_out("retention", "set", "8 years")
    with Chainproof(Settings()) as app:
        assert store_option(app.audit.engine, "require_signature")[0] is True
        assert str(RetentionStore(app.audit.engine).current().retention) == "8 years"
    assert runner.invoke(cli, ["verify", "--all"]).exit_code == 1  # the forged rows stay on record, flagged


def test_grant_writes_need_the_operator_key(home, store):
    key = home / "keys" / "operator.key"
    key.rename(home / "elsewhere.key")
    refused = cli_out("users", "add", "bob", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n", code=2)
    assert f"trust.key_file {key}" in refused and "chainproof keys operator" in refused
    assert "trust.key_file" in cli_out("retention", "set", "7 years", code=2)
    (home / "elsewhere.key").rename(key)
    cli_out("users", "add", "bob", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n")


def test_rotation_keeps_old_rows_trusted_and_signs_new_ones_with_the_new_key(home, store):
    out = cli_out("keys", "operator", "--rotate")
    assert "rotated" in out
    cli_out("users", "roles", "ann", "--role", "analyst", "--role", "auditor")
    assert runner.invoke(cli, ["verify", "--all"]).exit_code == 0
    with sqlite3.connect(home / "audit.sqlite") as conn:
        kids = {k for (k,) in conn.execute("SELECT operator_key_id FROM accounts")}
    assert len(kids) == 2  # root's row by the old key, ann's re-signed by the new one
    for public in (home / "keys" / "operator-public").glob("*.pub"):  # distrust every key: everything refused
        public.unlink()
    _verify_flags("not a trusted operator key")


def test_anchor_signs_only_rows_without_a_countersignature(home, store):
    _sql(home, "UPDATE accounts SET countersignature = NULL, operator_key_id = NULL WHERE username = 'ann'")
    _sql(home, "UPDATE accounts SET roles = '[\"admin\", \"approver\"]' WHERE username = 'root'")  # tampered
    result = runner.invoke(cli, ["keys", "anchor", "--yes", "--force"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "to countersign: accounts" in out and "not signed accounts" in out, out
    assert "WARNING: this store is already anchored" in out
    assert "countersigned 1 grant row(s)" in out
    _verify_flags("accounts, row")


def test_anchor_shows_what_it_vouches_for_and_refuses_an_anchored_store(home, monkeypatch, store):
    """An attacker adds an approver key for "me" holding Mallory's public key and waits for the
    operator to run `keys anchor`, as every refusal used to suggest."""
    kid = _forge_key(home, store, "me", '["role:cfo"]')
    run_id = _start()
    _as_user(monkeypatch, store["mallory"])
    refused = " ".join(cli_out("approve", run_id, "--as", "me", code=2).split())
    assert "may be forged" in refused and "keys anchor" not in refused, refused
    result = runner.invoke(cli, ["keys", "anchor", "--yes"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out
    for part in (f"approver_keys, row {kid}", "approver 'me'", f"public key fingerprint {kid}", "role:cfo",
                 "enabled", "added by 'account:root'", "refused", "already anchored"):
        assert part in out, out
    assert "grant row(s) with the operator key" not in out
    assert "does not verify" not in out and "not countersigned" in cli_out("approve", run_id, "--as", "me", code=2)
    forced = runner.invoke(cli, ["keys", "anchor", "--yes", "--force"])  # the operator insists: warned, then signed
    assert forced.exit_code == 0 and "WARNING: this store is already anchored" in forced.output, forced.output
    # the countersignature makes the row usable, but verify still finds it outside the audit record
    _verify_flags_unrecorded(f"approver_keys, row {kid}", "no approver_added auth event")


def test_an_upgraded_store_is_anchored_once(home, store):
    for table in ("accounts", "credentials", "approver_keys", "approval_policies", "store_settings"):
        _sql(home, f"UPDATE {table} SET countersignature = NULL, operator_key_id = NULL")  # as revision 0011 leaves them
    first = runner.invoke(cli, ["keys", "anchor", "--yes"])
    assert first.exit_code == 0 and "username 'ann'" in first.output, first.output
    _sql(home, "UPDATE accounts SET countersignature = NULL, operator_key_id = NULL WHERE username = 'ann'")
    again = runner.invoke(cli, ["keys", "anchor", "--yes"])
    assert again.exit_code == 1 and "already anchored" in " ".join(again.output.split()), again.output


def _verify_flags_unrecorded(*expected: str) -> None:
    result = runner.invoke(cli, ["verify", "--all"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "grant not recorded in the audit" in out, out
    for part in expected:
        assert part in out, out


def test_postgresql_writers_are_refused_too(home, monkeypatch):
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    with fresh_database() as url:
        monkeypatch.setenv("CHAINPROOF_DATABASE_URL", url)
        monkeypatch.setenv("CHAINPROOF_CHECKPOINT_URL", url)
        cli_out("users", "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
        cli_out("login", "root", "--password-stdin", stdin=PASSWORD + "\n")
        cli_out("users", "add", "ann", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n")
        writer = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with writer.begin() as conn:
                conn.execute(text("UPDATE accounts SET roles = '[\"admin\"]' WHERE username = 'ann'"))
                conn.execute(text("INSERT INTO store_settings (name, version, value, created_at, created_by) "
                                  "VALUES ('require_signature', 2, 'false', now(), 'x')"))
        finally:
            writer.dispose()
        assert REFUSED in cli_out("login", "ann", "--password-stdin", stdin=PASSWORD + "\n", code=2)
        _verify_flags("accounts, row", "store_settings, row require_signature/2")


def test_a_fleet_shares_the_operator_key_and_a_home_without_it_is_refused(pg_url, fleet_operator, tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINPROOF_DATABASE_URL", pg_url)
    monkeypatch.setenv("CHAINPROOF_CHECKPOINT_URL", pg_url)
    monkeypatch.setenv("CHAINPROOF_HOME", str(tmp_path / "home-a"))
    cli_out("users", "add", "root", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert (fleet_operator / "operator.key").is_file() and not (tmp_path / "home-a" / "keys" / "operator.key").exists()
    monkeypatch.setenv("CHAINPROOF_HOME", str(tmp_path / "home-b"))  # another host of the fleet: same trust
    cli_out("login", "root", "--password-stdin", stdin=PASSWORD + "\n")
    cli_out("users", "add", "ann", "--role", "analyst", "--password-stdin", stdin=PASSWORD + "\n")
    monkeypatch.delenv("CHAINPROOF_TRUST__KEY_FILE")  # a home that trusts only its own operator key
    monkeypatch.delenv("CHAINPROOF_TRUST__PUBLIC_KEYS_DIR")
    monkeypatch.setenv("CHAINPROOF_HOME", str(tmp_path / "home-c"))
    cli_out("keys", "operator")
    refused = cli_out("login", "ann", "--password-stdin", stdin=PASSWORD + "\n", code=2)
    assert "not a trusted operator key" in refused
