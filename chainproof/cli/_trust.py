"""The operator key, the trust anchor outside the database: ``keys operator`` and ``keys anchor``.

``keys operator`` creates (or, with ``--rotate``, replaces) the operator's Ed25519 key
(``trust.key_file``) and keeps its public key in ``trust.public_keys_dir``; ``keys anchor``
countersigns, once, the grant rows of a store upgraded to schema revision 0011, which have no
countersignature yet (:mod:`chainproof.checkpoints.grants`; README "Threat model"). Neither needs a
signed-in account: holding the operator key is what makes someone the operator, and an upgraded
store's accounts are refused until they are anchored.
"""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

import chainproof.cli as cli
from chainproof.cli import console
from chainproof.cli._keys import keys_app
from chainproof.errors import InputError


@keys_app.command("operator")
def keys_operator(
    out: Annotated[Optional[Path], typer.Option(help="Also copy the operator public key (PEM) to this file, for "
                                                "the trust.public_keys_dir of other hosts.")] = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace the operator key; the old public key stays "
                                         "trusted, so rows countersigned with it still verify.")] = False,
) -> None:
    """Create the operator key (trust.key_file, mode 0600) if there is none, or rotate it; print its key id."""
    s = cli.settings()
    trust = s.operator_trust()
    old, kid, changed = trust.create(rotate=rotate)
    public = trust.public_dir / f"{kid}.pub"
    if out is not None:
        if out.exists():
            raise InputError(f"--out {out}: a file exists there; choose another path")
        shutil.copyfile(public, out)
    what = f"rotated (old key {old} stays trusted)" if old else "created" if changed else "already present"
    console.print(f"operator key {trust.key_file} ({what})\nkey id       {kid}\npublic key   {public}"
                  f"{f' (copied to {out})' if out else ''}\nprocesses that read grants on other hosts trust it by "
                  "holding this public key in their trust.public_keys_dir", highlight=False)


@keys_app.command("anchor")
def keys_anchor(
    yes: Annotated[bool, typer.Option("--yes", help="Countersign without asking (after reviewing the list).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Anchor a store whose grants are already anchored (DANGEROUS: "
                                        "a row without a countersignature there was not written through Chainproof).")] = False,
) -> None:
    """Countersign, with the operator key, every grant row of the store that has no countersignature
    (once, after `chainproof db upgrade` to revision 0011). Review the rows it lists: it vouches for them.
    A store already anchored is refused unless --force."""
    from chainproof.checkpoints.grants import FORGED_HINT, anchor, anchored, describe, grant_rows, row_id, unanchored

    s = cli.settings()
    s.operator_trust().private_key()  # OperatorKeyMissing naming trust.key_file before anything is read
    store = cli.open_store(s, migrate="check")
    try:
        bare, bad = unanchored(store.engine)
        for table, row, problem in bad:
            console.print(f"[red]not signed[/red] {table}, row {escape(row)}: {escape(problem)} (a row changed "
                          "outside Chainproof; remove or rewrite it through Chainproof)", highlight=False)
        if not bare:
            console.print("every grant row is countersigned; nothing to do", highlight=False)
            raise typer.Exit(1 if bad else 0)
        already = anchored(store.engine)
        rows = {(table, row_id(table, row)): row for table, row in grant_rows(store.engine)}
        for table, ident in bare:
            console.print(f"to countersign: {table}, row {escape(ident)}: {escape(describe(table, rows[table, ident]))}",
                          highlight=False)
        if already and not force:
            console.print(f"[red]refused[/red]: {FORGED_HINT}. `keys anchor` anchors a store once, after its upgrade "
                          "to schema revision 0011; --force countersigns these rows anyway", highlight=False)
            raise typer.Exit(1)
        if already:
            console.print("[red]WARNING[/red]: this store is already anchored; the rows above were not written through "
                          "Chainproof and may be forged by a database writer. Countersigning them vouches for them",
                          highlight=False)
        if not yes and not typer.confirm(f"countersign these {len(bare)} row(s) with the operator key?"):
            raise typer.Exit(1)
        signed = anchor(store.engine, set(bare), actor=f"operator:os:{getpass.getuser()}", forced=already)
    finally:
        store.close()
    console.print(f"countersigned {len(signed)} grant row(s) with the operator key", highlight=False)
    if bad:
        raise typer.Exit(1)

