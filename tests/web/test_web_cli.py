"""`chainproof users` / `login`, and the CLI deciding as the stored account when signed-in
approvers are required."""

from __future__ import annotations

from typer.testing import CliRunner

import chainproof.cli as cli_module
from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.cli import app as cli
from chainproof.settings import Settings
from testkit.web_app import PASSWORD, YES


def test_first_admin_login_and_cli_decides_as_the_token_account(home, monkeypatch):
    runner = CliRunner()
    r = runner.invoke(cli, ["users", "add", "root", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert runner.invoke(cli, ["login", "root", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    r = runner.invoke(cli, ["users", "add", "dana", "--role", "approver", "--password-stdin"], input="short\n")
    assert r.exit_code == 2 and "password: expected at least 15 characters" in r.output
    runner.invoke(cli, ["users", "add", "dana", "--role", "approver", "--password-stdin"], input=PASSWORD + "\n")
    assert "dana" in runner.invoke(cli, ["users", "list"]).output
    (home / "credentials.json").unlink()  # the admin is done: nobody is signed in
    monkeypatch.setenv("CHAINPROOF_AUTH__REQUIRE_AUTHENTICATED_APPROVERS", "true")
    settings = Settings(home=home)
    engine = Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["a", "b", "c", YES])))
    monkeypatch.setattr(cli_module, "_engine", lambda: engine)
    from chainproof.graphs.registry import register
    from testkit.toy_graph import ToyGraph

    register("toy", ToyGraph)
    run = engine.start("toy", {"x": 3})
    r = runner.invoke(cli, ["approve", run.run_id, "--as", "Dana"])
    assert r.exit_code == 2 and "your settings require a signed-in approver" in " ".join(r.output.split())
    assert runner.invoke(cli, ["login", "dana", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    assert oct((home / "credentials.json").stat().st_mode & 0o777) == "0o600"
    r = runner.invoke(cli, ["approve", run.run_id])
    assert r.exit_code == 0, r.output
    decision = next(a for a in Chainproof(settings).audit.records_of(run.run_id, "approvals") if a.action == "approve")
    assert decision.approver == "dana" and decision.payload["account"]["via"] == "token"
    danas_token = (home / "credentials.json").read_text()
    assert runner.invoke(cli, ["users", "disable", "dana"]).exit_code == 2  # an approver is no admin
    assert runner.invoke(cli, ["login", "root", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    assert runner.invoke(cli, ["users", "disable", "dana"]).exit_code == 0
    (home / "credentials.json").write_text(danas_token)  # dana's stored token, after her account was disabled
    r = runner.invoke(cli, ["approve", run.run_id])
    assert r.exit_code == 2 and "chainproof login" in r.output


def test_signed_in_approvers_are_a_store_setting_no_caller_can_loosen(home, monkeypatch):
    """Another OS user, without the admin's TOML, types --as dana: refused once an admin set the
    store's require_authenticated_approvers; the caller's settings saying false change nothing."""
    import sqlite3

    from chainproof.graphs.registry import register
    from testkit.toy_graph import ToyGraph

    register("toy", ToyGraph)
    runner = CliRunner()
    runner.invoke(cli, ["users", "add", "root", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
    assert runner.invoke(cli, ["login", "root", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    r = runner.invoke(cli, ["policy", "set", "--store", "require_authenticated_approvers=true"])
    assert r.exit_code == 0 and "store require_authenticated_approvers = true (version 1)" in r.output, r.output
    (home / "credentials.json").unlink()
    r = runner.invoke(cli, ["policy", "set", "--store", "require_authenticated_approvers=false"])
    assert r.exit_code == 2  # not an admin: unchanged
    monkeypatch.setenv("CHAINPROOF_AUTH__REQUIRE_AUTHENTICATED_APPROVERS", "false")
    engine = Chainproof(Settings(home=home), models=StaticModels(ScriptedChatModel(replies=["a", "b", "c", YES])))
    monkeypatch.setattr(cli_module, "_engine", lambda: engine)
    run = engine.start("toy", {"x": 3})
    r = runner.invoke(cli, ["approve", run.run_id, "--as", "dana"])
    out = " ".join(r.output.split())
    assert r.exit_code == 2 and "this store requires a signed-in approver" in out and "set by an admin" in out, out
    with sqlite3.connect(home / "audit.sqlite") as conn:  # a database writer turns it off: the row is refused
        conn.execute("UPDATE store_settings SET value = 'false' WHERE name = 'require_authenticated_approvers'")
    r = runner.invoke(cli, ["approve", run.run_id, "--as", "dana"])
    assert r.exit_code == 2 and "grant not countersigned by a trusted operator key" in " ".join(r.output.split())


def test_login_prints_only_the_token_prefix_and_stores_the_token_0600(home):
    import json

    from chainproof.checkpoints.accounts import AccountStore

    runner = CliRunner()
    runner.invoke(cli, ["users", "add", "root", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
    r = runner.invoke(cli, ["login", "root", "--password-stdin"], input=PASSWORD + "\n", env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    path = home / "credentials.json"
    stored = json.loads(path.read_text())
    token, cid = stored["token"], stored["credential_id"]
    secret = token.split("_", 2)[2]
    out = " ".join(r.output.split())
    assert secret not in r.output.replace("\n", "") and token not in out
    assert f"API token cpt_{cid}_… (credential {cid}; revoke with DELETE /api/tokens/{cid})" in out
    assert str(path) in r.output.replace("\n", "") and oct(path.stat().st_mode & 0o777) == "0o600"
    settings = Settings(home=home)
    with Chainproof(settings) as app:  # the stored token is the full one: it signs in
        assert AccountStore(app.audit.engine, settings.auth).authenticate(token, "api").username == "root"


def test_cli_sign_ins_are_throttled_per_local_user_and_account(home, monkeypatch):
    import pwd
    import socket
    from types import SimpleNamespace

    from chainproof.checkpoints.auth_log import auth_events

    monkeypatch.setenv("CHAINPROOF_AUTH__LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("CHAINPROOF_AUTH__LOGIN_MAX_FAILURES_PER_CLIENT", "5")
    runner = CliRunner()
    runner.invoke(cli, ["users", "add", "root", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")

    def login(os_user: str, name: str, password: str) -> str:
        monkeypatch.setattr(pwd, "getpwuid", lambda uid: SimpleNamespace(pw_name=os_user))
        r = runner.invoke(cli, ["login", name, "--password-stdin"], input=password + "\n", env={"COLUMNS": "300"})
        return f"{r.exit_code} {' '.join(r.output.split())}"

    for name in ("root", "root", "root", "ghost", "ghost"):  # mallory guesses: 3 for root, 5 in all
        assert login("mallory", name, "wrong password 123").startswith("2 ")
    assert "too many failed sign-ins for 'root' from this address" in login("mallory", "root", PASSWORD)
    assert "too many failed sign-ins from this address" in login("mallory", "nobody", PASSWORD)
    assert login("alice", "root", PASSWORD).startswith("0 signed in as root")  # another local user is not locked out
    with Chainproof(Settings(home=home)) as app:
        clients = {e["detail"].get("client") for e in auth_events(app.audit.engine) if e["kind"].startswith("login")}
    host = socket.gethostname()
    assert clients == {f"cli:mallory@{host}", f"cli:alice@{host}"}


def test_cli_sign_in_address_is_the_real_uids_name_not_the_user_variable(home, monkeypatch):
    """USER / LOGNAME are the caller's to set: a local user setting them to someone else's name
    still fails (and is throttled) as themself."""
    import os
    import pwd
    import socket

    from chainproof.checkpoints.auth_log import auth_events

    real = pwd.getpwuid(os.getuid()).pw_name
    runner = CliRunner()
    runner.invoke(cli, ["users", "add", "root", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
    for var in ("USER", "LOGNAME"):
        monkeypatch.setenv(var, f"other-than-{real}")
    r = runner.invoke(cli, ["login", "root", "--password-stdin"], input="wrong password 123\n")
    assert r.exit_code == 2, r.output
    with Chainproof(Settings(home=home)) as app:
        clients = {e["detail"].get("client") for e in auth_events(app.audit.engine) if e["kind"] == "login_failed"}
    assert clients == {f"cli:{real}@{socket.gethostname()}"}


def test_users_add_without_a_terminal_asks_for_password_stdin(home):
    """No terminal to prompt on (a script, a pipe from /dev/null): one line naming the way out, exit 2."""
    r = CliRunner().invoke(cli, ["users", "add", "nopw", "--role", "analyst"], input="")
    assert r.exit_code == 2 and "password: no terminal to ask on; pipe it in with --password-stdin" in r.output


def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(home):
    runner = CliRunner()
    runner.invoke(cli, ["users", "add", "root", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
    # once the store has an admin, nobody else changes accounts: not signed in, nor as a non-admin
    for args in (["users", "add", "eve", "--role", "admin", "--password-stdin"], ["users", "roles", "root", "--role", "analyst"]):
        r = runner.invoke(cli, args, input=PASSWORD + "\n")
        assert r.exit_code == 2 and "changing accounts needs an admin account" in r.output and "not signed in" in r.output
    assert runner.invoke(cli, ["login", "root", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    for args in (["users", "disable", "root"], ["users", "roles", "root", "--role", "auditor"]):
        r = runner.invoke(cli, args)
        assert r.exit_code == 2 and "'root' is the last enabled admin" in r.output, r.output
    runner.invoke(cli, ["users", "add", "ana", "--role", "analyst", "--password-stdin"], input=PASSWORD + "\n")
    assert runner.invoke(cli, ["login", "ana", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    r = runner.invoke(cli, ["users", "roles", "ana", "--role", "admin"])  # an analyst cannot promote herself
    assert r.exit_code == 2 and "signed in as 'ana', who is not an admin" in r.output, r.output
    assert runner.invoke(cli, ["login", "root", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    runner.invoke(cli, ["users", "add", "kim", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n")
    assert runner.invoke(cli, ["users", "disable", "root"]).exit_code == 0  # another admin remains
    assert runner.invoke(cli, ["login", "kim", "--password-stdin"], input=PASSWORD + "\n").exit_code == 0
    r = runner.invoke(cli, ["users", "roles", "kim", "--role", "auditor"])
    assert r.exit_code == 2 and "'kim' is the last enabled admin" in r.output
