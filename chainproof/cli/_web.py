"""The web app and its accounts: ``serve``, ``login``, ``users add/list/disable/enable/roles``.

Account commands act on the audit database directly (whoever can run them can read the store
anyway); each change is recorded in ``auth_events`` with the operating-system user as the actor.
The first admin is made with ``chainproof users add NAME --role admin`` (the password is asked
for, or read from stdin with ``--password-stdin``); there is no default account or password.
``chainproof login`` checks a password and stores a new API token in
``$CHAINPROOF_HOME/credentials.json`` (mode 0600): approve / reject / edit then decide as that
account.
"""

from __future__ import annotations

import getpass
import json
import os
import pwd
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

import chainproof.cli as cli
from chainproof.cli import app, console
from chainproof.errors import InputError, NotAuthenticated, NotPermitted

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chainproof.checkpoints.accounts import AccountStore, Principal

users_app = typer.Typer(no_args_is_help=True, help="Accounts of the web app and of `chainproof login`.")
app.add_typer(users_app, name="users")


@contextmanager
def _accounts() -> Iterator[AccountStore]:
    from chainproof.checkpoints.accounts import AccountStore

    s = cli.settings()
    store = cli.open_store(s, migrate=True)
    try:
        yield AccountStore(store.engine, s.auth)
    finally:
        store.close()


def os_user() -> str:
    """The name of the process's real uid (from the password database, not the USER / LOGNAME
    variables getpass.getuser() reads first, which anyone can set), or ``uidN`` without an entry."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no passwd entry (a container)
        return f"uid{os.getuid()}"


def _actor() -> str:
    return f"os:{os_user()}"


def _account_admin(accounts: AccountStore) -> str:
    """The actor of an account change (``users add|roles|disable|enable``): a signed-in admin
    (``chainproof login``) once the store has an enabled admin account, as ``approvers add`` and
    ``policy`` require; the OS user only while it has none, to make the first admin. Raises
    ``NotPermitted`` (exit 2) otherwise."""
    if not accounts.has_admin():
        return _actor()
    principal = stored_principal()
    if principal is None or not principal.has("admin"):
        who = f"signed in as {principal.username!r}, who is not an admin" if principal else "not signed in"
        raise NotPermitted(f"admin: changing accounts needs an admin account once the store has one; you are {who} "
                           "(chainproof login ADMIN)")
    return f"account:{principal.username}"


def _no_terminal() -> None:
    if not sys.stdin.isatty():  # getpass would read an empty line or fail with EOFError
        raise InputError("password: no terminal to ask on; pipe it in with --password-stdin")


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    _no_terminal()
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InputError("password: the two entries differ")
    return first


def credentials_path() -> Path:
    return cli.store_settings().home / "credentials.json"


def stored_principal() -> Principal | None:
    """The account of the token ``chainproof login`` stored, or None when there is none;
    ``NotAuthenticated`` when it was revoked or expired."""
    path = credentials_path()
    if not path.is_file():
        return None
    token = json.loads(path.read_text(encoding="utf-8")).get("token", "")
    with _accounts() as accounts:
        try:
            return accounts.authenticate(token, "api")
        except NotAuthenticated:
            raise NotAuthenticated(f"{path}: the stored token is no longer valid; run `chainproof login` again") from None


@app.command()
def serve(host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000) -> None:
    """Run the web app's JSON API (OpenAPI schema at /openapi.json); needs chainproof[web]."""
    try:
        from chainproof.web import proxy_options
        from chainproof.web import serve as run
    except ImportError as exc:  # fastapi / uvicorn / argon2 missing
        raise InputError(f"serve: the web extra is not installed ({exc.name}); pip install 'chainproof[web]'") from None
    run(host=host, port=port, **proxy_options(cli.settings()))  # X-Forwarded-For from web.forwarded_allow_ips only


@app.command()
def login(username: Annotated[str, typer.Argument(help="Your account.")],
          password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
          label: Annotated[Optional[str], typer.Option(help="A label for the token.")] = None) -> None:
    """Sign in and store an API token for the CLI (approve / reject / edit use it) in
    $CHAINPROOF_HOME/credentials.json (mode 0600); only the token's public prefix is printed."""
    with _accounts() as accounts:
        who = accounts.login(username, _password_once(password_stdin), client=cli_client())
        token, cid = accounts.issue_token(who, label or f"cli {os.uname().nodename}")
    from chainproof._private_files import private_dir

    path = credentials_path()
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"username": who.username, "credential_id": cid, "token": token}, handle)
    console.print(f"signed in as {who.username}; API token {token_prefix(token)} (credential {cid}; revoke with "
                  f"DELETE /api/tokens/{cid}) stored in {path} (mode 0600)", highlight=False, markup=False)


def token_prefix(token: str) -> str:
    """The public part of an API token (``cpt_CREDENTIALID_…``): enough to tell it apart and revoke
    it, without the secret after the second ``_``."""
    kind, cid, _secret = token.split("_", 2)
    return f"{kind}_{cid}_…"


def cli_client() -> str:
    """The sign-in address of ``chainproof login``: ``cli:USER@HOST`` (the real uid's user name,
    :func:`os_user`, and hostname), so one local user's failed sign-ins throttle that user only, not every CLI
    user; the per-username limit still holds for each."""
    return f"cli:{os_user()}@{socket.gethostname()}"


def _password_once(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    _no_terminal()
    return getpass.getpass("password: ")


@users_app.command("add")
def users_add(username: str,
              role: Annotated[list[str], typer.Option("--role", help="analyst, approver, auditor, admin, or a policy role; repeatable.")],
              department: Annotated[Optional[str], typer.Option(help="Analysts see this department's runs.")] = None,
              display_name: Annotated[Optional[str], typer.Option("--name", help="Full name.")] = None,
              password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False) -> None:
    """Add an account: the first admin (there is no default one) by whoever runs it; after that,
    only a signed-in admin."""
    with _accounts() as accounts:
        actor = _account_admin(accounts)
        a = accounts.add(username, _password(password_stdin), role, display_name=display_name, department=department,
                         actor=actor)
    console.print(f"account {a.username} added: {', '.join(a.roles)}", highlight=False)


@users_app.command("list")
def users_list() -> None:
    """Accounts with their roles, department and state."""
    from rich.table import Table
    from sqlalchemy import select

    from chainproof.checkpoints import audit_tables as t
    from chainproof.checkpoints.grants import is_trusted

    with _accounts() as accounts:
        rows = accounts.accounts()
        with accounts.engine.connect() as conn:
            trusted = {r["account_id"] for r in conn.execute(select(t.accounts)).mappings()
                       if is_trusted(accounts.engine, "accounts", dict(r))}
    table = Table("username", "name", "roles", "department", "state")
    for a in rows:
        state = "disabled" if a.disabled else "active"
        table.add_row(a.username, a.display_name, ", ".join(a.roles), a.department or "–",
                      state if a.account_id in trusted else f"{state}; REFUSED: not countersigned by a trusted operator key")
    console.print(table)


def _set(username: str, disabled: bool) -> None:
    with _accounts() as accounts:
        a = accounts.set_disabled(username, disabled, actor=_account_admin(accounts))
    console.print(f"account {a.username} {'disabled' if a.disabled else 'enabled'}", highlight=False)


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable an account: its sessions and tokens stop working at once."""
    _set(username, True)


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled account."""
    _set(username, False)


@users_app.command("roles")
def users_roles(username: str, role: Annotated[list[str], typer.Option("--role", help="The new roles; repeatable.")]) -> None:
    """Replace an account's roles."""
    with _accounts() as accounts:
        a = accounts.set_roles(username, role, actor=_account_admin(accounts))
    console.print(f"account {a.username}: {', '.join(a.roles)}", highlight=False)
