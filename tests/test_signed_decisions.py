"""Signed decisions: with ``require_signature`` in the store-held policy, a decision is the
approver's only when it carries an Ed25519 signature made with their registered key. The issue's
impersonation attempts are each tried from the command line, as the person who tried them would:
refused (nothing recorded) without the right key, accepted with it; and ``verify`` flags a decision
whose signature or signed fields were edited in the database, with the chain rehashed around it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints._approver_keys import (
    ApproverKeys,
    ClientSignature,
    KeySigner,
    create_key,
    decision_statement,
    load_public_key,
    sign_statement,
)
from chainproof.checkpoints._policy_store import PolicyStore
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.cli import app as cli
from chainproof.errors import ApproverNotAllowed, InputError
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.tamper import rechain_decision
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
runner = CliRunner()
YES = json.dumps({"verdict": "yes", "reason": "the doubled square is large"})
STRICT = ApprovalPolicy(approvers=["Dana Approver", "role:credit-committee"], require_signature=True)
LAX_TOML = """[approval_policies.toy]\napprovers = []\nrequire_signature = false\n"""
LAX_ENV = json.dumps({"toy": {"approvers": [], "require_signature": False}})


def _start(home: Path) -> str:
    model = ScriptedChatModel(replies=["The square.", "The double.", "Large.", YES])
    with Chainproof(Settings(), models=StaticModels(model)) as app:
        run = app.start("toy", {"x": 3})
    assert run.status == "paused"
    return run.run_id


def _decisions(home: Path, run_id: str) -> list[ApprovalRecord]:
    with Chainproof(Settings(home=home)) as app:
        return [a for a in app.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"]


@pytest.fixture
def people(request: pytest.FixtureRequest, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Four OS users' config folders: Dana, Lee (credit committee) and Mallory hold registered keys,
    ``other`` holds none; the policy for ``toy`` needs Dana or the committee, signed. Where that
    comes from (indirect parameter): ``stored policy`` (default): the admin's stored version says
    so; ``store default``: the store was created with the product's default (signatures required)
    and the run's starter names the approvers in their ``chainproof.toml``, without a word on
    signatures."""
    how = getattr(request, "param", "stored policy")
    if how == "store default":
        monkeypatch.delenv("CHAINPROOF_APPROVALS__REQUIRE_SIGNATURE")  # before the store is created
        (tmp_path / "chainproof.toml").write_text(  # the starter's folder (the home fixture's cwd)
            '[approval_policies.toy]\napprovers = ["Dana Approver", "role:credit-committee"]\n')
    folders = {name: tmp_path / f"config-{name}" for name in ("dana", "lee", "mallory", "other")}
    with Chainproof(Settings(home=home)) as app:
        registry = ApproverKeys(app.audit.engine)
        for name, approver, roles in (("dana", "Dana Approver", []), ("lee", "Lee Chair", ["credit-committee"]),
                                      ("mallory", "Mallory", ["intern"])):
            _, public, _ = create_key(folders[name] / "chainproof" / "keys" / "approver.key")
            registry.add(approver, load_public_key(public), roles, actor="account:admin")
        if how == "stored policy":
            PolicyStore(app.audit.engine).put("toy", STRICT, actor="account:admin", source="test")
    folders["other"].mkdir()
    monkeypatch.delenv("CHAINPROOF_APPROVAL_POLICIES", raising=False)
    return folders


def _as_user(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Act as the OS user whose config folder is ``folder`` (their own ~/.config)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    monkeypatch.setenv("HOME", str(folder))


def _loosen(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the attacker changes around the decision: the folder, CHAINPROOF_CONFIG or the environment."""
    if how == "empty-folder":
        empty = tmp_path / "elsewhere"
        empty.mkdir()
        monkeypatch.chdir(empty)
    elif how == "own-toml":
        own = tmp_path / "mallory.toml"
        own.write_text(LAX_TOML)
        monkeypatch.setenv("CHAINPROOF_CONFIG", str(own))
    elif how == "env":
        monkeypatch.setenv("CHAINPROOF_APPROVAL_POLICIES", LAX_ENV)


# (what was tried, the name typed, whose config folder (key) the attacker has, what else was changed,
#  the person whose key makes the same attempt legitimate and the name they type)
ATTEMPTS = [
    ("a lower-case name", "dana approver", "mallory", None, "dana", "dana approver"),
    ("a role: member's name typed by anyone", "Lee Chair", "mallory", None, "lee", "Lee Chair"),
    ("the name typed by another OS user (no key)", "Dana Approver", "other", None, "dana", "Dana Approver"),
    ("Mallory from a folder without the policy TOML", "Mallory", "mallory", "empty-folder", "dana", "Dana Approver"),
    ("Mallory with CHAINPROOF_CONFIG at her own TOML", "Mallory", "mallory", "own-toml", "dana", "Dana Approver"),
    ("Mallory with CHAINPROOF_APPROVAL_POLICIES", "Mallory", "mallory", "env", "dana", "Dana Approver"),
    ("Mallory as herself, with her own registered key", "Mallory", "mallory", None, "dana", "Dana Approver"),
]
REGISTERED = {"dana": "Dana Approver", "lee": "Lee Chair"}


@pytest.mark.parametrize("people", ["stored policy", "store default"], indirect=True)
@pytest.mark.parametrize(("tried", "typed", "holder", "loosened", "right", "right_typed"), ATTEMPTS,
                         ids=[a[0] for a in ATTEMPTS])
def test_impersonation_is_refused_and_the_right_key_is_accepted(home, tmp_path, monkeypatch, people, tried, typed,
                                                               holder, loosened, right, right_typed):
    run_id = _start(home)
    with Chainproof(Settings(home=home)) as app:  # bound at the start: the allow-list, signed
        bound = app.audit.last_event(run_id, "run_started").detail["approval_policy"]
    assert bound["require_signature"] is True and bound["approvers"] == STRICT.approvers
    _as_user(monkeypatch, people[holder])
    _loosen(loosened or "", tmp_path, monkeypatch)
    refused = runner.invoke(cli, ["approve", run_id, "--as", typed])
    out = " ".join(refused.output.split())
    assert refused.exit_code == 2, out
    assert "signature:" in out or "may not decide" in out, out
    assert "nothing was decided" in out or "may not decide" in out, out
    assert _decisions(home, run_id) == []  # nothing recorded
    # the same attempt, same folder and environment, by the person holding the right key
    _as_user(monkeypatch, people[right])
    accepted = runner.invoke(cli, ["approve", run_id, "--as", right_typed])
    assert accepted.exit_code == 0, accepted.output
    [decision] = _decisions(home, run_id)
    assert decision.approver == REGISTERED[right] and decision.signature["key_id"] == KeySigner.from_file(
        people[right] / "chainproof" / "keys" / "approver.key").key_id
    assert runner.invoke(cli, ["verify", run_id]).exit_code == 0


def test_a_run_started_under_a_loosened_environment_still_binds_the_stored_policy(home, tmp_path, monkeypatch, people):
    monkeypatch.setenv("CHAINPROOF_APPROVAL_POLICIES", LAX_ENV)  # Mallory starts the run herself
    _loosen("own-toml", tmp_path, monkeypatch)
    run_id = _start(home)
    _as_user(monkeypatch, people["mallory"])
    refused = runner.invoke(cli, ["approve", run_id, "--as", "Mallory"])
    assert refused.exit_code == 2 and "'Mallory' may not decide" in " ".join(refused.output.split())
    assert _decisions(home, run_id) == []


def _rechain(home: Path, run_id: str, request_id: str, **changes) -> None:
    """A careful attacker with database access: edit the decision row and recompute every hash and
    link of the run, so the chain itself is intact again."""
    with Chainproof(Settings(home=home)) as app:
        rechain_decision(app.audit, run_id, request_id, **changes)


@pytest.mark.parametrize("edit", ["signature bytes", "approver and signed approver", "action"])
def test_verify_flags_a_decision_whose_signature_or_signed_fields_were_edited(home, monkeypatch, people, edit):
    run_id = _start(home)
    _as_user(monkeypatch, people["dana"])
    assert runner.invoke(cli, ["approve", run_id, "--as", "Dana Approver"]).exit_code == 0
    [decision] = _decisions(home, run_id)
    sig = dict(decision.signature)
    if edit == "signature bytes":
        forged = sign_statement(KeySigner.from_file(people["mallory"] / "chainproof" / "keys" / "approver.key").private_key,
                                sig["signed"])
        _rechain(home, run_id, decision.request_id, signature={**sig, "signature": forged})
        expected = "does not verify"
    elif edit == "approver and signed approver":
        _rechain(home, run_id, decision.request_id, approver="Lee Chair",
                 signature={**sig, "signed": {**sig["signed"], "approver": "Lee Chair"}})
        expected = "registered to 'Dana Approver', not 'Lee Chair'"
    else:
        _rechain(home, run_id, decision.request_id, action="reject")
        expected = "the signed action differ from the record's"
    result = runner.invoke(cli, ["verify", run_id])
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out
    assert expected in out and run_id in out and decision.request_id in out, out


def test_a_client_signature_is_checked_like_the_cli_one(home, people):
    run_id = _start(home)
    key = KeySigner.from_file(people["dana"] / "chainproof" / "keys" / "approver.key")
    with Chainproof(Settings(home=home)) as app:
        paused = app.audit.last_event(run_id, "run_paused").detail
        request = paused["requests"][0]
        now = datetime.now(UTC).isoformat()
        fields = dict(run_id=run_id, thread_id=run_id, checkpoint_id=paused["checkpoint_id"],
                      interrupt_id=request["interrupt_id"], request_id=request["request_id"],
                      proposed_hash=request["proposed_hash"], action="approve", edited=None, comment=None,
                      approver="Dana Approver", key_id=key.key_id)
        good = key.sign(decision_statement(**fields, decided_at=now))
        with pytest.raises(InputError, match=r"signature: expected 64 bytes of Ed25519 signature in base64"):
            app.decide(run_id, action="approve", signer=ClientSignature(key.key_id, "not a signature!", now))
        with pytest.raises(InputError, match=r"signature.decided_at: expected an ISO 8601 time"):
            app.decide(run_id, action="approve", signer=ClientSignature(key.key_id, good, "yesterday"))
        with pytest.raises(ApproverNotAllowed, match=r"signature: does not verify"):  # signed "approve", sent as reject
            app.decide(run_id, action="reject", comment="no", signer=ClientSignature(key.key_id, good, now))
        with pytest.raises(ApproverNotAllowed, match=r"signature: key 0000000000000000… is not registered"):
            app.decide(run_id, action="approve", signer=ClientSignature("0" * 64, good, now))
        assert [a for a in app.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"] == []
        done = app.decide(run_id, action="approve", signer=ClientSignature(key.key_id, good, now))
    assert done.status == "completed" and done.state["approval"]["approver"] == "Dana Approver"


# ------------------------------------------------------------------ bad input
def test_bad_key_files_are_refused_naming_the_option(home, tmp_path, monkeypatch, people):
    run_id = _start(home)
    own = tmp_path / "k" / "approver.key"
    made = runner.invoke(cli, ["keys", "create", "--out", str(own)])
    assert made.exit_code == 0 and oct(own.stat().st_mode & 0o777) == "0o600" and own.with_suffix(".pub").is_file()
    again = runner.invoke(cli, ["keys", "create", "--out", str(own)])
    assert again.exit_code == 2 and "a key exists there; give --force" in " ".join(again.output.split())
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key")
    garbage.chmod(0o600)
    for path, expected in ((tmp_path / "missing.key", "no such key file"),
                           (garbage, "expected an unencrypted Ed25519 private key")):
        result = runner.invoke(cli, ["approve", run_id, "--as", "Dana Approver", "--key", str(path)])
        assert result.exit_code == 2 and f"--key {path}" in result.output.replace("\n", "") and expected in " ".join(result.output.split())
    dana = people["dana"] / "chainproof" / "keys" / "approver.key"
    dana.chmod(0o644)
    open_key = runner.invoke(cli, ["approve", run_id, "--key", str(dana)])
    assert open_key.exit_code == 2 and "readable by others (mode 644); expected 600" in " ".join(open_key.output.split())
    for path, expected in ((own, "this is a private key"), (garbage, "expected an Ed25519 public key"),
                           (tmp_path / "none.pub", "cannot read the public key")):
        result = runner.invoke(cli, ["approvers", "add", "Eve", "--public-key", str(path)])
        assert result.exit_code == 2 and "--public-key" in result.output and expected in " ".join(result.output.split())
    unregistered = runner.invoke(cli, ["approve", run_id, "--as", "Dana Approver", "--key", str(own)])
    assert unregistered.exit_code == 2 and "is not registered to any approver" in " ".join(unregistered.output.split())
    assert _decisions(home, run_id) == []


def _admin(home: Path, name: str = "root-admin", role: str = "admin") -> None:
    password = "correct horse battery staple"
    added = runner.invoke(cli, ["users", "add", name, "--role", role, "--password-stdin"], input=password + "\n")
    assert added.exit_code == 0, added.output
    signed = runner.invoke(cli, ["login", name, "--password-stdin"], input=password + "\n")
    assert signed.exit_code == 0, signed.output


def test_registering_approvers_is_an_admin_action_on_record(home, tmp_path, monkeypatch):
    _, public, key_id = create_key(tmp_path / "eve" / "approver.key")
    refused = runner.invoke(cli, ["approvers", "add", "Eve", "--public-key", str(public)])
    assert refused.exit_code == 2 and "needs an admin account; you are not signed in" in " ".join(refused.output.split())
    _admin(home, "clerk", "approver")
    not_admin = runner.invoke(cli, ["approvers", "add", "Eve", "--public-key", str(public)])
    assert not_admin.exit_code == 2 and "signed in as 'clerk', who is not an admin" in " ".join(not_admin.output.split())
    _admin(home)
    added = runner.invoke(cli, ["approvers", "add", "Eve", "--public-key", str(public), "--role", "credit-committee"])
    assert added.exit_code == 0 and key_id in added.output
    twice = runner.invoke(cli, ["approvers", "add", "Mallory", "--public-key", str(public)])
    assert twice.exit_code == 2 and "is already registered (to 'Eve')" in " ".join(twice.output.split())
    unknown = runner.invoke(cli, ["approvers", "remove", "Nobody"])
    assert unknown.exit_code == 2 and "NAME: no registered approver 'Nobody'; registered: Eve" in " ".join(unknown.output.split())
    assert runner.invoke(cli, ["approvers", "remove", "Eve"]).exit_code == 0
    listed = runner.invoke(cli, ["approvers", "list"], env={"COLUMNS": "200"})
    assert "Eve" in listed.output and "removed" in listed.output
    with Chainproof(Settings(home=home)) as app, app.audit.engine.connect() as conn:
        events = [(r.kind, r.username, r.actor, json.loads(r.detail) if isinstance(r.detail, str) else r.detail)
                  for r in conn.execute(text("SELECT kind, username, actor, detail FROM auth_events ORDER BY seq"))]
    mine = [e for e in events if e[0].startswith("approver_")]
    assert mine == [("approver_added", "Eve", "account:root-admin", {"key_id": key_id, "roles": ["credit-committee"]}),
                    ("approver_removed", "Eve", "account:root-admin", {"key_ids": [key_id]})]
    assert os.path.exists(tmp_path / "eve" / "approver.key")  # the private key never left its folder


def test_a_fork_keeps_its_parents_policy_whatever_the_forker_configured(home, tmp_path, monkeypatch, people):
    from chainproof.checkpoints.audit_schema import Step
    from testkit.toy_models import toy_model

    run_id = _start(home)
    _as_user(monkeypatch, people["dana"])
    assert runner.invoke(cli, ["approve", run_id]).exit_code == 0  # signed; --as may be left out with a key
    monkeypatch.setenv("CHAINPROOF_APPROVAL_POLICIES", LAX_ENV)  # Mallory forks it with a lax policy of her own
    with Chainproof(Settings(), models=StaticModels(toy_model())) as app:
        decide_step = next(s.step_no for s in app.audit.records_of(run_id, Step) if s.node == "decide")
        fork = app.fork(run_id, decide_step - 1, started_by="Mallory")
        assert fork.status == "paused"
        with pytest.raises(ApproverNotAllowed, match="requires a signed decision"):
            app.decide(fork.run_id, action="approve", approver="Mallory")
        with pytest.raises(ApproverNotAllowed, match="'Mallory' may not decide"):
            app.decide(fork.run_id, action="approve", signer=KeySigner.from_file(
                people["mallory"] / "chainproof" / "keys" / "approver.key"))
        done = app.decide(fork.run_id, action="approve", signer=KeySigner.from_file(
            people["lee"] / "chainproof" / "keys" / "approver.key"))
    assert done.status == "completed" and done.state["approval"]["approver"] == "Lee Chair"
