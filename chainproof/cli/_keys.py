"""Approver keys and the store-held approval policy: ``keys create|show``, ``approvers
add|list|remove``, ``policy import|show|set``.

``keys`` act on the caller's own key files only (``checkpoints/_approver_keys.py``). ``approvers
add/remove`` and ``policy import/set`` change who may decide and are admin-only: they need the
token ``chainproof login`` stored for an account with the ``admin`` role; each change is an
``auth_events`` row naming that account (``approver_added``, ``approver_removed``,
``policy_changed`` with the old and new version; ``store_option_changed`` for ``policy set --store``,
the store-wide ``require_signature`` default recorded when the store was created).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

import chainproof.cli as cli
from chainproof.cli import app, console
from chainproof.errors import InputError, NotPermitted

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sqlalchemy import Engine

keys_app = typer.Typer(no_args_is_help=True, help="Ed25519 keys: your approver key (signed decisions); the operator key (keys operator, keys anchor).")
approvers_app = typer.Typer(no_args_is_help=True, help="Approvers' registered public keys (admin).")
policy_app = typer.Typer(no_args_is_help=True, help="Approval policies held in the audit store (admin).")
app.add_typer(keys_app, name="keys")
app.add_typer(approvers_app, name="approvers")
app.add_typer(policy_app, name="policy")


@keys_app.command("create")
def keys_create(
    out: Annotated[Optional[Path], typer.Option(help="Private key file (default: ~/.config/chainproof/keys/approver.key).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key file.")] = False,
) -> None:
    """Create an Ed25519 key pair: the private key (mode 0600) stays with you, the .pub file goes to an admin."""
    from chainproof.checkpoints._approver_keys import create_key

    private, public, key_id = create_key(out, force=force)
    console.print(f"private key {private} (mode 0600; never share it)\npublic key  {public}\nkey id      {key_id}\n"
                  f"an admin registers it: chainproof approvers add NAME --public-key {public}", highlight=False)


@keys_app.command("show")
def keys_show(key: Annotated[Optional[Path], typer.Option(help="Private key file (default: ~/.config/chainproof/keys/approver.key).")] = None) -> None:
    """The key id of your private key (what an approver registration names)."""
    from chainproof.checkpoints._approver_keys import KeySigner, default_key_path

    path = key or default_key_path()
    console.print(f"{path}: key id {KeySigner.from_file(path).key_id}", highlight=False)


@contextmanager
def admin_store(what: str = "changes who may decide") -> Iterator[tuple[Any, str]]:
    """``(audit store, actor)`` for an admin command (``what`` it does, for the refusal): the
    signed-in account must hold ``admin`` (``NotPermitted`` otherwise)."""
    from chainproof.cli._web import stored_principal

    principal = stored_principal()
    if principal is None or not principal.has("admin"):
        who = f"signed in as {principal.username!r}, who is not an admin" if principal else "not signed in"
        raise NotPermitted(f"admin: this command {what} and needs an admin account; you are {who} "
                           "(chainproof login ADMIN)")
    s = cli.settings()
    store = cli.open_store(s, migrate=True)
    try:
        yield store, f"account:{principal.username}"
    finally:
        store.close()


@contextmanager
def _admin() -> Iterator[tuple[Engine, str]]:
    """``(audit engine, actor)`` for an admin command that changes who may decide."""
    with admin_store() as (store, actor):
        yield store.engine, actor


@approvers_app.command("add")
def approvers_add(
    name: Annotated[str, typer.Argument(help="The approver's name, as policies list it (e.g. 'Dana Approver').")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The approver's public key (the .pub file of `keys create`).")],
    role: Annotated[Optional[list[str]], typer.Option("--role", help="A policy role (as in role:ROLE); repeatable.")] = None,
) -> None:
    """Register an approver's public key (admin; recorded as approver_added)."""
    from chainproof.checkpoints._approver_keys import ApproverKeys, load_public_key

    raw = load_public_key(public_key)
    with _admin() as (engine, actor):
        key = ApproverKeys(engine).add(name, raw, role or [], actor=actor)
    console.print(f"approver {key.approver}: key {key.key_id} registered"
                  f"{' with roles ' + ', '.join(key.roles) if key.roles else ''}", highlight=False)


@approvers_app.command("remove")
def approvers_remove(name: Annotated[str, typer.Argument(help="The approver whose keys to retire.")]) -> None:
    """Retire an approver's keys (admin; recorded as approver_removed; old signatures still verify)."""
    from chainproof.checkpoints._approver_keys import ApproverKeys

    with _admin() as (engine, actor):
        ids = ApproverKeys(engine).remove(name, actor=actor)
    console.print(f"approver {name}: {len(ids)} key(s) removed", highlight=False)


@approvers_app.command("list")
def approvers_list() -> None:
    """Registered approver keys, with roles and state."""
    from rich.table import Table

    from chainproof.checkpoints._approver_keys import ApproverKeys

    s = cli.settings()
    store = cli.open_store(s, migrate=True)
    try:
        keys = ApproverKeys(store.engine).keys()
        trusted = {k.key_id for k in ApproverKeys(store.engine).keys(trusted_only=True)}
    finally:
        store.close()
    table = Table("approver", "key id", "roles", "added", "state")
    for k in keys:
        state = "active" if k.active else f"removed {k.removed_at:%Y-%m-%d}"
        table.add_row(k.approver, k.key_id[:16] + "…", ", ".join(k.roles) or "–", f"{k.added_at:%Y-%m-%d} by {k.added_by}",
                      state if k.key_id in trusted else f"{state}; REFUSED: not countersigned by a trusted operator key")
    console.print(table)


def _policies_in(path: Path) -> dict[str, Any]:
    """The ``[approval_policies.GRAPH]`` tables of TOML file ``path`` (``InputError`` naming it)."""
    from chainproof.tools.input_files import read_text

    try:
        data = tomllib.loads(read_text(path, "FILE"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"FILE {path}: not valid TOML ({exc})") from None
    found = data.get("approval_policies")
    if not isinstance(found, dict) or not found:
        raise InputError(f"FILE {path}: expected [approval_policies.GRAPH] tables, found none")
    return found


def _policy(graph: str, value: Any, where: str) -> Any:
    from pydantic import ValidationError

    from chainproof.graphs.approval_policy import ApprovalPolicy

    try:
        return ApprovalPolicy.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"{where} approval_policies.{graph}: {problems}") from None


@policy_app.command("import")
def policy_import(file: Annotated[Path, typer.Argument(help="A TOML file with [approval_policies.GRAPH] tables (e.g. chainproof.toml).")]) -> None:
    """Store the file's policies as new versions (admin; each change recorded as policy_changed)."""
    from chainproof.checkpoints._policy_store import PolicyStore, store_defaults

    tables = _policies_in(file)
    policies = {g: _policy(g, v, f"FILE {file}:") for g, v in tables.items()}
    with _admin() as (engine, actor):
        store = PolicyStore(engine)
        for graph, policy in sorted(policies.items()):
            if "require_signature" not in tables[graph]:  # not said: the store's default, never a silent loosening
                policy = store_defaults(engine, policy)
            stored = store.put(graph, policy, actor=actor, source=f"import {file.name}")
            console.print(f"{graph}: {'version ' + str(stored.version) if stored else 'unchanged'}", highlight=False)


def _assign(values: dict[str, Any], assignment: list[str]) -> dict[str, Any]:
    """``values`` with each ``FIELD=VALUE`` of ``assignment`` applied (VALUE as JSON if it parses);
    ``InputError`` naming an item whose field is not one of ``values``."""
    for item in assignment:
        field, sep, raw = item.partition("=")
        if not sep or field.strip() not in values:
            raise InputError(f"FIELD=VALUE {item!r}: expected one of {', '.join(sorted(values))} = a value")
        try:
            values[field.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[field.strip()] = raw
    return values


@policy_app.command("set")
def policy_set(
    graph: Annotated[str, typer.Argument(help="The graph whose policy to change (with --store: a FIELD=VALUE).")],
    assignment: Annotated[Optional[list[str]], typer.Argument(help="FIELD=VALUE (VALUE as JSON if it parses), e.g. require_signature=true.")] = None,
    store_wide: Annotated[bool, typer.Option("--store", help="Change the store-wide default instead "
                                             "(require_signature=true|false: every graph without its own stored policy; "
                                             "require_authenticated_approvers=true|false: decisions need a signed-in account).")] = False,
) -> None:
    """Change fields of a graph's stored policy (admin; a new version, recorded as policy_changed),
    or with --store the store-wide default (recorded as store_option_changed)."""
    from chainproof.checkpoints._policy_store import STORE_OPTIONS, PolicyStore, set_store_option, store_defaults, store_option
    from chainproof.graphs.registry import get_spec

    with _admin() as (engine, actor):
        if store_wide:
            items = [graph, *(assignment or [])]
            values = _assign({name: store_option(engine, name, trusted=False)[0] for name in STORE_OPTIONS}, items)
            given = {item.partition("=")[0].strip() for item in items}
            changed = [set_store_option(engine, name, value, actor=actor) for name, value in values.items() if name in given]
            console.print("; ".join(f"store {o.name} = {json.dumps(o.value)} (version {o.version})" for o in changed if o)
                          or "store defaults unchanged", highlight=False)
            return
        if not assignment:
            raise InputError("FIELD=VALUE: give at least one, e.g. require_signature=true")
        store = PolicyStore(engine)
        current = store.current(graph)
        base = current.policy if current is not None else store_defaults(engine, get_spec(graph).approval_policy())
        values = _assign(base.model_dump(mode="json"), assignment)
        stored = store.put(graph, _policy(graph, values, "policy set"), actor=actor, source="set")
    console.print(f"{graph}: {'version ' + str(stored.version) if stored else 'unchanged'}", highlight=False)


@policy_app.command("show")
def policy_show(
    graph: Annotated[Optional[str], typer.Argument(help="One graph (default: all stored).")] = None,
    history: Annotated[bool, typer.Option("--history", help="Every version, not only the one in force.")] = False,
) -> None:
    """The stored policies in force (or every version), with version, hash and who made them."""
    from chainproof.checkpoints._policy_store import PolicyStore, store_option

    s = cli.settings()
    store = cli.open_store(s, migrate=True)
    try:
        rows = PolicyStore(store.engine).history(graph)
        value, option = store_option(store.engine, "require_signature")
    finally:
        store.close()
    if option is not None:
        console.print(f"store default: require_signature = {json.dumps(value)} (version {option.version}, "
                      f"{option.created_at:%Y-%m-%d %H:%M} UTC by {option.created_by}); it applies to every graph "
                      "without its own stored policy", highlight=False, markup=False)
    if not history:
        rows = [r for r in rows if r == max((x for x in rows if x.graph == r.graph), key=lambda x: x.version)]
    if not rows:
        console.print("No policy is stored; runs use the settings' approval_policies, else each graph's own "
                      "(chainproof policy import chainproof.toml stores them).", highlight=False)
        return
    for r in rows:
        console.print(f"{r.graph} version {r.version} ({r.policy_hash[:12]}…, {r.created_at:%Y-%m-%d %H:%M} UTC by "
                      f"{r.created_by}): {json.dumps(r.policy.model_dump(mode='json'), ensure_ascii=False)}",
                      highlight=False, markup=False)
