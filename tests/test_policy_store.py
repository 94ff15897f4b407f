"""Approval policy held in the audit store: versions changed only by an admin (each change an
audit event with the old and new version), a run bound to the version in force at its start and
named at its pause, and nothing a caller's TOML or environment says loosens it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from chainproof.app import Chainproof
from chainproof.checkpoints._policy_store import PolicyStore
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.cli import app as cli
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.toy_graph import ToyGraph
from testkit.toy_graph import start_paused as _start

register("toy", ToyGraph)
runner = CliRunner()
PASSWORD = "correct horse battery staple"


def _login(name: str, role: str) -> None:
    assert runner.invoke(cli, ["users", "add", name, "--role", role, "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    assert runner.invoke(cli, ["login", name, "--password-stdin"], input=PASSWORD + "\n").exit_code == 0


def _logout(home: Path) -> None:
    (home / "credentials.json").unlink()  # approve as a typed name again, not as the signed-in admin


def _events(home: Path, kind: str) -> list[tuple[str, dict]]:
    with Chainproof(Settings(home=home)) as app, app.audit.engine.connect() as conn:
        rows = conn.execute(text("SELECT actor, detail FROM auth_events WHERE kind = :k ORDER BY seq"), {"k": kind})
        return [(r.actor, json.loads(r.detail) if isinstance(r.detail, str) else r.detail) for r in rows]


def _decided(home: Path, run_id: str) -> list[str | None]:
    with Chainproof(Settings(home=home)) as app:
        return [a.approver for a in app.audit.records_of(run_id, ApprovalRecord) if a.action != "requested"]


def test_policy_changes_are_admin_only_versioned_and_on_record(home, tmp_path):
    toml = tmp_path / "policies.toml"
    toml.write_text('[approval_policies.toy]\napprovers = ["Dana"]\n')
    refused = runner.invoke(cli, ["policy", "import", str(toml)])
    assert refused.exit_code == 2 and "needs an admin account; you are not signed in" in " ".join(refused.output.split())
    _login("analyst1", "analyst")
    not_admin = runner.invoke(cli, ["policy", "set", "toy", "approvers=[]"])
    assert not_admin.exit_code == 2 and "'analyst1', who is not an admin" in " ".join(not_admin.output.split())
    _login("boss", "admin")
    first = runner.invoke(cli, ["policy", "import", str(toml)])
    assert first.exit_code == 0 and "toy: version 1" in first.output
    assert "toy: unchanged" in runner.invoke(cli, ["policy", "import", str(toml)]).output  # same policy: no version
    second = runner.invoke(cli, ["policy", "set", "toy", "require_signature=true", 'approvers=["Dana", "Lee"]'])
    assert second.exit_code == 0 and "toy: version 2" in second.output
    shown = " ".join(runner.invoke(cli, ["policy", "show", "toy", "--history"], env={"COLUMNS": "300"}).output.split())
    assert "toy version 1" in shown and "toy version 2" in shown and '"require_signature": true' in shown
    assert "by account:boss" in shown
    changes = _events(home, "policy_changed")
    assert [(a, d["old_version"], d["new_version"], d["source"]) for a, d in changes] == [
        ("account:boss", None, 1, "import policies.toml"), ("account:boss", 1, 2, "set")]
    assert changes[1][1]["old_hash"] == changes[0][1]["new_hash"] != changes[1][1]["new_hash"]


@pytest.mark.parametrize(("content", "expected"), [
    ("approval_policies = 3", "expected [approval_policies.GRAPH] tables, found none"),
    ("[approval_policies.toy\n", "not valid TOML"),
    ('[approval_policies.toy]\non_reject = "shrug"\n', "approval_policies.toy: on_reject: Input should be 'end' or 'replan'"),
])
def test_a_bad_policy_file_is_refused_naming_the_file_and_field(home, tmp_path, content, expected):
    bad = tmp_path / "bad.toml"
    bad.write_text(content)
    _login("boss", "admin")
    result = runner.invoke(cli, ["policy", "import", str(bad)])
    out = " ".join(result.output.split())
    assert result.exit_code == 2 and f"FILE {bad}" in result.output.replace("\n", "") and expected in out, out
    unknown = runner.invoke(cli, ["policy", "set", "toy", "approvres=[]"])
    assert unknown.exit_code == 2 and "FIELD=VALUE 'approvres=[]': expected one of" in " ".join(unknown.output.split())
    with Chainproof(Settings(home=home)) as app:
        assert PolicyStore(app.audit.engine).history() == []  # nothing stored


def test_a_policy_loosened_after_the_pause_has_no_effect_on_it(home, tmp_path, monkeypatch):
    with Chainproof(Settings(home=home)) as app:
        stored = PolicyStore(app.audit.engine).put("toy", ApprovalPolicy(approvers=["Dana"]), actor="account:boss", source="test")
    assert stored is not None
    run_id = _start()
    with Chainproof(Settings(home=home)) as app:  # the pause names the version it is decided under
        assert app.audit.last_event(run_id, "run_paused").detail["approval_policy"] == {
            "source": "store", "version": 1, "policy_hash": stored.policy_hash}
    # after the pause: the environment, a TOML of one's own, and even the admin loosen the policy
    monkeypatch.setenv("CHAINPROOF_APPROVAL_POLICIES", json.dumps({"toy": {"approvers": []}}))
    own = tmp_path / "own.toml"
    own.write_text("[approval_policies.toy]\napprovers = []\n")
    monkeypatch.setenv("CHAINPROOF_CONFIG", str(own))
    _login("boss", "admin")
    assert "toy: version 2" in runner.invoke(cli, ["policy", "set", "toy", "approvers=[]"]).output
    _logout(home)
    refused = runner.invoke(cli, ["approve", run_id, "--as", "Mallory"])
    assert refused.exit_code == 2 and "'Mallory' may not decide for graph toy; allowed: Dana" in " ".join(refused.output.split())
    assert _decided(home, run_id) == []
    assert runner.invoke(cli, ["approve", run_id, "--as", "Dana"]).exit_code == 0
    later = _start()  # a run started after the admin's change binds version 2
    assert runner.invoke(cli, ["approve", later, "--as", "Mallory"]).exit_code == 0
    assert _decided(home, run_id) == ["Dana"] and _decided(home, later) == ["Mallory"]


def test_once_the_store_holds_policies_the_callers_settings_are_ignored(home):
    loose = ApprovalPolicy(approvers=[])
    with Chainproof(Settings(home=home, approval_policies={"toy": ApprovalPolicy(approvers=["Dana"])})) as app:
        assert app.policy("toy").approvers == ["Dana"]  # no stored policy yet: the settings, as before
        PolicyStore(app.audit.engine).put("other-graph", loose, actor="account:boss", source="test")
        # the store holds a policy now (for another graph): toy falls back to the graph's own, not the settings'
        assert app.policy("toy") == ToyGraph().approval_policy()


def test_once_the_store_holds_policies_roles_come_from_the_registered_approvers(home, tmp_path, monkeypatch):
    from chainproof.checkpoints._approver_keys import ApproverKeys, create_key, load_public_key

    _, public, _ = create_key(tmp_path / "lee" / "approver.key")
    with Chainproof(Settings(home=home)) as app:
        ApproverKeys(app.audit.engine).add("Lee Chair", load_public_key(public), ["credit-committee"], actor="account:boss")
        PolicyStore(app.audit.engine).put("toy", ApprovalPolicy(approvers=["role:credit-committee"]),
                                          actor="account:boss", source="test")
    monkeypatch.setenv("CHAINPROOF_APPROVER_ROLES", json.dumps({"Mallory": ["credit-committee"]}))  # her own settings
    run_id = _start()
    refused = runner.invoke(cli, ["approve", run_id, "--as", "Mallory"])
    assert refused.exit_code == 2 and "'Mallory' may not decide" in " ".join(refused.output.split())
    assert runner.invoke(cli, ["approve", run_id, "--as", "Lee Chair"]).exit_code == 0
    assert _decided(home, run_id) == ["Lee Chair"]
