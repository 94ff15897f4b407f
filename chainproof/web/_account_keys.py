"""Server-held approver keys, one per account: how the web app signs its sessions' decisions.

A browser cannot keep an Ed25519 key the way ``chainproof keys create`` does, so the server holds
one for every approver account that decides through it (a session or an API token) and signs the
decision with it; a client that signs itself (``signature`` in ``POST /api/runs/ID/decisions``)
is used as before instead.

* **Where the key is.** ``$CHAINPROOF_HOME/keys/accounts/ACCOUNT_ID.key`` of the server (PEM,
  PKCS#8, mode 0600, folder 0700; ``ACCOUNT_ID`` is the account's id, never a name a person
  typed), its public key beside it (``.pub``). It never enters the database.
* **Registration.** The first decision of an account creates its key and registers the public key
  under the account's username, with the account's roles, as any approver key is registered
  (``approver_keys``; an ``approver_added`` auth event by ``server:USER@HOST`` for the account,
  its detail saying the server holds the key and for which account). ``verify`` then checks the
  decision's signature against it like any other.
* **One account, one key.** The key file is chosen by the signed-in account's id, and the key is
  registered to that account's username; :func:`chainproof._decisions.record_decision` refuses a
  key whose approver is not the signed-in account, so no account signs as another.
* **Retiring it.** ``chainproof approvers remove USERNAME`` (an admin) retires the account's keys:
  its next decision in the browser is refused ("was removed") until the server's key file for the
  account is deleted, after which its next decision makes and registers a new key.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from chainproof.checkpoints._approver_keys import ApproverKeys, KeySigner, create_key, load_public_key
from chainproof.checkpoints.accounts import Principal
from chainproof.errors import InputError, SigningKeyError


def account_key_path(home: Path, account_id: str) -> Path:
    """The private key file the server holds for account ``account_id`` under its ``home``."""
    return home / "keys" / "accounts" / f"{account_id}.key"


def account_signer(engine: Engine, home: Path, who: Principal) -> KeySigner:
    """The signer of ``who``'s decisions: its server-held key, created (0600) and registered on
    first use (module docstring). ``SigningKeyError`` when the key file cannot be written or read
    (e.g. made readable by others)."""
    path = account_key_path(home, who.account_id)
    if not path.exists():
        try:
            create_key(path)
        except SigningKeyError:
            if not path.exists():  # not a concurrent first decision of the same account
                raise
    signer = KeySigner.from_file(path, "server-held key")
    registry = ApproverKeys(engine)
    if registry.get(signer.key_id) is None:
        try:
            registry.add(who.username, load_public_key(path.with_suffix(".pub"), "server-held public key"),
                         sorted(who.roles), actor=f"server:{getpass.getuser()}@{os.uname().nodename}",
                         note={"held_by": "server", "account_id": who.account_id, "key_file": str(path)})
        except (InputError, IntegrityError):
            if registry.get(signer.key_id) is None:  # not registered by a concurrent decision either
                raise
    return signer


__all__ = ["account_key_path", "account_signer"]
