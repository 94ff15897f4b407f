"""Signed decisions by default: a new store records, when it is created, that decisions must be
signed (its creator's ``approvals.require_signature``, default true); a caller's TOML or
environment never loosens it afterwards, only an admin's audited ``policy set --store`` does; a
store that existed before keeps its typed-name decisions. The first-run path the README shows
(pause, refusal naming what to do, key, registration by an admin, signed approval) works as
written. The suite's other stores are created with the option off (tests/conftest.py); these
tests use ``strict_home``, where it has the product's default."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from typer.testing import CliRunner

import chainproof.cli as cli
from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints import audit_db
from chainproof.checkpoints._approver_keys import KeySigner
from chainproof.checkpoints._policy_store import store_option
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.pg import fresh_database, pg_unreachable
from testkit.toy_graph import ToyGraph
from testkit.toy_models import toy_model

register("toy", ToyGraph)
runner = CliRunner()
PASSWORD = "correct horse battery staple"
LAX_POLICIES = json.dumps({"toy": {"approvers": [], "require_signature": False}})


def _flat(result) -> str:
    return " ".join(result.output.split())


def _engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's engine: the caller's settings (read as each command starts), scripted toy models."""
    monkeypatch.setattr(cli, "_engine", lambda: Chainproof(Settings(), models=StaticModels(toy_model())))


def _start(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Run the toy graph from the CLI to its approval pause: (run id, what the CLI printed)."""
    _engine(monkeypatch)
    started = runner.invoke(cli.app, ["run", "toy", "--x", "7"])
    assert started.exit_code == 0, started.output
    with Chainproof(Settings()) as app:
        return app.audit.list_runs(limit=1)[0][0].run_id, _flat(started)


def _decided(run_id: str) -> list[ApprovalRecord]:
    with Chainproof(Settings()) as app:
        return [a for a in app.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"]


def _bound(run_id: str) -> dict:
    with Chainproof(Settings()) as app:
        return app.audit.last_event(run_id, "run_started").detail["approval_policy"]


def _sign_in(name: str, *roles: str) -> None:
    args = ["users", "add", name, *(x for r in roles for x in ("--role", r)), "--password-stdin"]
    assert runner.invoke(cli.app, args, input=PASSWORD + "\n").exit_code == 0
    assert runner.invoke(cli.app, ["login", name, "--password-stdin"], input=PASSWORD + "\n").exit_code == 0


def _own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The approver's own ~/.config (where `chainproof keys create` writes)."""
    folder = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder


def test_the_readme_first_run_path_pauses_refuses_unsigned_and_accepts_a_registered_key(strict_home, tmp_path, monkeypatch):
    config = _own_config(tmp_path, monkeypatch)
    run_id, printed = _start(monkeypatch)
    assert "requires a signed decision" in printed and "chainproof keys create" in printed
    assert f"chainproof approvers add me --public-key {config}/chainproof/keys/approver.pub" in printed
    assert "chainproof users add me --role admin --role approver" in printed
    refused = runner.invoke(cli.app, ["approve", run_id, "--as", "Your Name", "--comment", "checked"])
    out = _flat(refused)
    assert refused.exit_code == 2, out
    for needed in ("signature:", "nothing was decided", "chainproof keys create", "chainproof login ADMIN",
                   f'chainproof approvers add "Your Name" --public-key {config}/chainproof/keys/approver.pub'):
        assert needed in out, out
    assert _decided(run_id) == []
    # the README's commands, in order
    assert runner.invoke(cli.app, ["keys", "create"]).exit_code == 0
    public = config / "chainproof" / "keys" / "approver.pub"
    not_admin = runner.invoke(cli.app, ["approvers", "add", "me", "--public-key", str(public)])
    assert not_admin.exit_code == 2 and "needs an admin account; you are not signed in" in _flat(not_admin)
    _sign_in("me", "admin", "approver")
    assert runner.invoke(cli.app, ["approvers", "add", "me", "--public-key", str(public)]).exit_code == 0
    approved = runner.invoke(cli.app, ["approve", run_id, "--comment", "checked the legal section"])
    assert approved.exit_code == 0, approved.output
    [decision] = _decided(run_id)
    assert decision.approver == "me" and decision.signature["key_id"] == KeySigner.from_file(
        config / "chainproof" / "keys" / "approver.key").key_id
    verified = runner.invoke(cli.app, ["verify", run_id])
    assert verified.exit_code == 0 and "intact" in verified.output, verified.output


def test_the_pause_prints_only_the_signing_steps_still_missing_for_this_store_and_user(strict_home, tmp_path, monkeypatch):
    config = _own_config(tmp_path, monkeypatch)
    public = config / "chainproof" / "keys" / "approver.pub"
    assert runner.invoke(cli.app, ["keys", "create"]).exit_code == 0
    _sign_in("me", "admin", "approver")
    assert runner.invoke(cli.app, ["approvers", "add", "me", "--public-key", str(public)]).exit_code == 0
    run_id, printed = _start(monkeypatch)  # the same admin, key made and registered: nothing left to set up
    for done in ("users add", "keys create", "approvers add", "login", "fresh store"):
        assert done not in printed, (done, printed)
    assert f"your key {config}/chainproof/keys/approver.key is registered to me" in printed
    assert f"chainproof approve {run_id} --comment 'optional note' # signed, as me" in printed
    # a second local user of the same store: no key of her own, not signed in; the store has its admin
    added = runner.invoke(cli.app, ["users", "add", "lee", "--role", "approver", "--password-stdin"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    other = _own_config(tmp_path / "lee", monkeypatch)
    (strict_home / "credentials.json").unlink()
    run_id, printed = _start(monkeypatch)
    assert "users add" not in printed and "fresh store" not in printed and "Still to do for this store and this user" in printed
    assert "chainproof keys create" in printed and "chainproof login YOUR_ACCOUNT --password-stdin" in printed
    assert (f"chainproof approvers add YOUR_ACCOUNT --public-key {other}/chainproof/keys/approver.pub # by an admin"
            in printed)
    # she signs in and makes her key: only the admin's registration and the approval remain
    assert runner.invoke(cli.app, ["keys", "create"]).exit_code == 0
    assert runner.invoke(cli.app, ["login", "lee", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    run_id, printed = _start(monkeypatch)
    assert "keys create" not in printed and "--password-stdin" not in printed and "users add" not in printed
    assert f"chainproof approvers add lee --public-key {other}/chainproof/keys/approver.pub # by an admin" in printed
    assert f"chainproof approve {run_id} --comment 'optional note' # signed, as lee" in printed
    # the admin registers lee's key but is still the one signed in here: sign in as lee
    (strict_home / "credentials.json").unlink()
    assert runner.invoke(cli.app, ["login", "me", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    assert runner.invoke(cli.app, ["approvers", "add", "lee", "--public-key", str(other / "chainproof/keys/approver.pub")]
                         ).exit_code == 0
    run_id, printed = _start(monkeypatch)
    assert "approvers add" not in printed and "keys create" not in printed
    assert "chainproof login lee --password-stdin # your key is registered to lee, not to me, who is signed in" in printed


def test_a_callers_settings_never_loosen_a_store_created_strict_only_an_admin_does(strict_home, tmp_path, monkeypatch):
    with Chainproof(Settings()) as app:  # the creator's settings: the default
        value, option = store_option(app.audit.engine, "require_signature")
    assert value is True and option is not None and option.version == 1 and option.created_by.startswith("store creation")
    # later callers say otherwise, every way a caller can
    monkeypatch.setenv("CHAINPROOF_APPROVALS__REQUIRE_SIGNATURE", "false")
    monkeypatch.setenv("CHAINPROOF_APPROVAL_POLICIES", LAX_POLICIES)
    own = tmp_path / "mallory.toml"
    own.write_text("[approvals]\nrequire_signature = false\n\n[approval_policies.toy]\napprovers = []\n"
                   "require_signature = false\n")
    monkeypatch.setenv("CHAINPROOF_CONFIG", str(own))
    run_id, _ = _start(monkeypatch)
    assert _bound(run_id)["require_signature"] is True
    refused = runner.invoke(cli.app, ["approve", run_id, "--as", "Mallory"])
    assert refused.exit_code == 2 and "requires a signed decision" in _flat(refused), refused.output
    assert _decided(run_id) == []
    _sign_in("clerk", "approver")
    not_admin = runner.invoke(cli.app, ["policy", "set", "--store", "require_signature=false"])
    assert not_admin.exit_code == 2 and "who is not an admin" in _flat(not_admin)
    (strict_home / "credentials.json").unlink()
    _sign_in("boss", "admin")
    typo = runner.invoke(cli.app, ["policy", "set", "--store", "require_signatures=false"])
    assert typo.exit_code == 2 and "expected one of require_authenticated_approvers, require_signature" in _flat(typo)
    wrong = runner.invoke(cli.app, ["policy", "set", "--store", "require_signature=maybe"])
    assert wrong.exit_code == 2 and "--store require_signature='maybe': expected true or false" in _flat(wrong)
    changed = runner.invoke(cli.app, ["policy", "set", "--store", "require_signature=false"])
    assert changed.exit_code == 0 and "store require_signature = false (version 2)" in changed.output, changed.output
    shown = _flat(runner.invoke(cli.app, ["policy", "show"]))
    assert "store default: require_signature = false (version 2" in shown and "by account:boss" in shown
    (strict_home / "credentials.json").unlink()
    with Chainproof(Settings()) as app, app.audit.engine.connect() as conn:
        rows = conn.execute(text("SELECT actor, detail FROM auth_events WHERE kind = 'store_option_changed'")).all()
    [(actor, detail)] = [(r.actor, json.loads(r.detail) if isinstance(r.detail, str) else r.detail) for r in rows]
    assert actor == "account:boss" and detail == {"name": "require_signature", "old_value": True, "new_value": False,
                                                  "version": 2}
    # the run paused before the change keeps the policy it was bound to; a run started after takes the new default
    assert runner.invoke(cli.app, ["approve", run_id, "--as", "Mallory"]).exit_code == 2
    later, _ = _start(monkeypatch)
    assert runner.invoke(cli.app, ["approve", later, "--as", "Mallory"]).exit_code == 0
    assert _decided(run_id) == [] and [d.approver for d in _decided(later)] == ["Mallory"]


def test_a_stored_policy_made_without_saying_keeps_the_stores_default(strict_home, tmp_path, monkeypatch):
    _sign_in("boss", "admin")
    assert runner.invoke(cli.app, ["policy", "set", "toy", 'approvers=["Dana"]']).exit_code == 0
    file = tmp_path / "policies.toml"
    file.write_text('[approval_policies.toy]\napprovers = ["Dana", "Lee"]\n')
    assert runner.invoke(cli.app, ["policy", "import", str(file)]).exit_code == 0
    shown = _flat(runner.invoke(cli.app, ["policy", "show", "toy", "--history"]))
    assert shown.count('"require_signature": true') == 2, shown


def _store_at_0008(url: str) -> None:
    """A store created by the Chainproof before this change (schema revision 0008)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(audit_db.__file__).parent / "migrations"))
    engine = audit_db.make_engine(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0008")
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_existing_store_keeps_typed_names_after_the_upgrade(strict_home, monkeypatch, backend):
    if backend == "postgresql":
        reason = pg_unreachable()
        if reason:
            pytest.skip(reason)
    with fresh_database() if backend == "postgresql" else nullcontext(f"sqlite:///{strict_home / 'audit.sqlite'}") as url:
        monkeypatch.setenv("CHAINPROOF_DATABASE_URL", url)
        monkeypatch.setenv("CHAINPROOF_CHECKPOINT_URL", url if backend == "postgresql" else str(strict_home / "cp.sqlite"))
        _store_at_0008(url)
        _engine(monkeypatch)
        refused = runner.invoke(cli.app, ["run", "toy", "--x", "7"])  # the upgrade runs here (creator's default on)
        assert refused.exit_code == 2 and "chainproof keys anchor" in refused.output  # revision 0011: not anchored yet
        assert runner.invoke(cli.app, ["keys", "operator"]).exit_code == 0
        anchored = runner.invoke(cli.app, ["keys", "anchor", "--yes"])
        assert anchored.exit_code == 0 and "store_settings, row require_signature/1" in anchored.output, anchored.output
        run_id, _ = _start(monkeypatch)
        with Chainproof(Settings()) as app:
            value, option = store_option(app.audit.engine, "require_signature")
        assert value is False and option is not None and option.created_by.startswith("migration 0010")
        assert _bound(run_id)["require_signature"] is False
        assert runner.invoke(cli.app, ["approve", run_id, "--as", "Dana"]).exit_code == 0


def test_the_creators_settings_choose_at_creation(home, tmp_path, monkeypatch):
    """The creation-time option from a TOML file (the suite's environment turns it off already)."""
    monkeypatch.delenv("CHAINPROOF_APPROVALS__REQUIRE_SIGNATURE")
    toml = tmp_path / "chainproof.toml"
    toml.write_text("[approvals]\nrequire_signature = false\n")
    monkeypatch.setenv("CHAINPROOF_CONFIG", str(toml))
    run_id, printed = _start(monkeypatch)
    assert "requires a signed decision" not in printed
    with Chainproof(Settings()) as app:
        value, option = store_option(app.audit.engine, "require_signature")
    assert value is False and option is not None and option.created_by.startswith("store creation")
    assert runner.invoke(cli.app, ["approve", run_id, "--as", "Dana"]).exit_code == 0
