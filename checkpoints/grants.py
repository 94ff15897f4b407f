"""Grants countersigned by the operator key: the trust anchor outside the database.

Whoever can write the audit database could otherwise grant themselves anything the database
holds: an approver key, an admin account, a session or API token, a looser approval policy, a
store setting such as ``require_signature``. So every **grant row** carries the operator's
Ed25519 countersignature (columns ``countersignature``, ``operator_key_id``; revision 0011), and
every use of a grant checks it against the operator public keys this host trusts
(``trust.public_keys_dir``), never against anything in the database. A row whose countersignature
is missing or does not verify is refused (:class:`~chainproof.errors.GrantNotTrusted`).

* **Operator key** (:class:`OperatorTrust`): an Ed25519 private key in a PEM file
  (``trust.key_file``, default ``$CHAINPROOF_HOME/keys/operator.key``, mode 0600; the log's
  :class:`~chainproof.checkpoints.log_heads.LogKeys` handling, so a too-open file is refused). Key
  id: the first 16 hex digits of the SHA-256 of the raw public key. ``chainproof keys operator
  --rotate`` replaces it and keeps the old public key in ``trust.public_keys_dir``, so rows
  countersigned before still verify.
* **Signed bytes**: ``b"chainproof-grant-v1\\n"`` + the canonical JSON
  (:func:`~chainproof.checkpoints.audit_hashing.canonical_json`) of ``{"table", "row", "fields"}``:
  the table name and row id bind a countersignature to its row (it cannot be moved to another), and
  ``fields`` are the row's security-relevant columns (:data:`GRANT_TABLES`). Timestamps are ISO 8601
  in UTC with microseconds.
* **Binding**: an engine opened from settings is bound to its :class:`OperatorTrust`
  (:func:`bind`); the account, approver-key, policy and store-setting code find it with
  :func:`trust_of`. An engine bound to nothing trusts no key: every grant is refused and none can
  be written (fail closed).

What this does not protect (README "Threat model"): a database writer can delete a grant row, or
put back an earlier countersigned version of it (e.g. a revoked token's row before revocation);
and whoever holds the operator key can grant anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import weakref
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, select, update

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints.audit_hashing import canonical_json
from chainproof.checkpoints.auth_log import aware
from chainproof.checkpoints.log_heads import LogKeys
from chainproof.checkpoints.log_verifier import key_id
from chainproof.errors import GrantNotTrusted, OperatorKeyMissing, SigningKeyError

GRANT_CONTEXT = b"chainproof-grant-v1\n"
ANCHOR_HINT = ("if this store was upgraded to schema revision 0011 and never anchored, the operator countersigns its "
               "existing grants once with `chainproof keys anchor` (after reviewing each row it lists); otherwise the "
               "row was written or changed outside Chainproof")
FORGED_HINT = ("this store's grants are already anchored (countersigned by the operator key), so this row was not "
               "written through Chainproof and may be forged: do not countersign it; remove it, and re-create the "
               "grant through Chainproof if it is genuine")
ANCHORED_EVENT = "grants_anchored"
"""The ``auth_events`` kind ``keys anchor`` records once it has countersigned a store's grants."""


def _ts(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return aware(value).astimezone(UTC).isoformat(timespec="microseconds")


def _roles(value: Any) -> Any:
    return sorted(value) if isinstance(value, list | tuple) else value


GRANT_TABLES: dict[str, tuple[Callable[[Mapping[str, Any]], str], Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    "accounts": (lambda r: str(r["account_id"]), lambda r: {
        "username": r["username"], "roles": _roles(r["roles"]), "department": r["department"],
        "enabled": not r["disabled"], "password_hash": r["password_hash"]}),
    "credentials": (lambda r: str(r["credential_id"]), lambda r: {
        "account_id": r["account_id"], "kind": r["kind"], "token_hash": r["secret_hash"], "csrf_hash": r["csrf_hash"],
        "expires_at": _ts(r["expires_at"]), "revoked_at": _ts(r["revoked_at"])}),
    "approver_keys": (lambda r: str(r["key_id"]), lambda r: {
        "approver": r["approver"], "public_key": r["public_key"], "roles": _roles(r["roles"]),
        "enabled": r["removed_at"] is None}),
    "approval_policies": (lambda r: f"{r['graph']}/{r['version']}", lambda r: {
        "graph": r["graph"], "version": int(r["version"]), "policy": r["policy"], "policy_hash": r["policy_hash"]}),
    "store_settings": (lambda r: f"{r['name']}/{r['version']}", lambda r: {
        "name": r["name"], "version": int(r["version"]), "value": r["value"]}),
}
"""Per grant table: its row id (the primary key, or the unique ``name/version`` of versioned rows)
and the fields a countersignature covers (``enabled``: not disabled, not removed)."""


def row_id(table: str, row: Mapping[str, Any]) -> str:
    """How messages and the signed bytes name grant ``row`` of ``table``."""
    return GRANT_TABLES[table][0](row)


def signed_bytes(table: str, row: Mapping[str, Any]) -> bytes:
    """The bytes a countersignature of ``row`` (a row of grant table ``table``, as a mapping of
    its columns) is made over (module docstring)."""
    ident, fields = GRANT_TABLES[table]
    return GRANT_CONTEXT + canonical_json({"table": table, "row": ident(row), "fields": fields(row)}).encode("utf-8")


class OperatorKeys(LogKeys):
    """The operator's key file and its public keys (the log key's file handling, other names)."""

    SETTING = "trust.key_file"
    CREATED_BY = "`chainproof keys operator`"

    def _missing(self, path: Path) -> SigningKeyError:
        return OperatorKeyMissing(
            f"trust.key_file {path}: no operator key here; commands that write accounts, tokens, approver keys, "
            "policies or store settings countersign them with it. Create it with `chainproof keys operator` (or set "
            "trust.key_file / CHAINPROOF_TRUST__KEY_FILE to the operator key's file)")


class OperatorTrust:
    """The operator key (``key_file``, for writing grants) and the trusted operator public keys
    (every ``*.pub`` file in ``public_dir``, PEM or raw base64, by key id)."""

    def __init__(self, key_file: Path, public_dir: Path):
        self.keys = OperatorKeys(key_file, public_dir)
        self._trusted: tuple[Any, dict[str, Ed25519PublicKey]] | None = None

    @property
    def key_file(self) -> Path:
        return self.keys.key_file

    @property
    def public_dir(self) -> Path:
        return self.keys.public_dir

    def private_key(self, *, create: bool = False) -> Ed25519PrivateKey:
        """The operator key; ``OperatorKeyMissing`` naming ``trust.key_file`` when there is none
        (and not ``create``), ``SigningKeyError`` when it is too open or not an Ed25519 key."""
        key = self.keys.private_key(create=create)
        self._trusted = None
        return key

    def create(self, *, rotate: bool = False) -> tuple[str | None, str, bool]:
        """Make sure an operator key exists: ``(old key id or None, key id, created)``; with
        ``rotate``, a new key replaces the existing one (its public key stays trusted)."""
        existed = self.key_file.exists()
        if rotate and existed:
            old, new = self.keys.rotate()
            self._trusted = None
            return old, new, True
        return None, key_id(self.private_key(create=True).public_key()), not existed

    def trusted(self) -> dict[str, Ed25519PublicKey]:
        """The trusted operator public keys by key id (reread when ``public_dir`` changes)."""
        from chainproof.checkpoints._approver_keys import load_public_key

        try:
            stamp: Any = (os.stat(self.public_dir).st_mtime_ns, sorted(os.listdir(self.public_dir)))
        except OSError:
            return {}
        if self._trusted is not None and self._trusted[0] == stamp:
            return self._trusted[1]
        found: dict[str, Ed25519PublicKey] = {}
        for name in stamp[1]:
            if name.endswith(".pub"):
                try:
                    key = Ed25519PublicKey.from_public_bytes(load_public_key(self.public_dir / name, "trust.public_keys_dir"))
                except SigningKeyError:
                    continue
                found[key_id(key)] = key
        self._trusted = (stamp, found)
        return found

    def countersign(self, table: str, row: Mapping[str, Any]) -> dict[str, str]:
        """``{"countersignature", "operator_key_id"}`` for ``row`` of grant ``table``, made with
        the operator key (``OperatorKeyMissing`` when there is none)."""
        key = self.private_key()
        return {"countersignature": base64.b64encode(key.sign(signed_bytes(table, row))).decode("ascii"),
                "operator_key_id": key_id(key.public_key())}

    def problem(self, table: str, row: Mapping[str, Any]) -> str | None:
        """None when ``row`` carries a valid countersignature by a trusted operator key; else what
        is wrong (not countersigned, unknown key, does not verify)."""
        sig, kid = row.get("countersignature"), row.get("operator_key_id")
        if sig is None:
            return "not countersigned"
        key = self.trusted().get(kid) if isinstance(kid, str) else None
        if key is None:
            # no path: the message reaches web clients, signed in or not (the setting names where to look)
            return f"countersigned by key {kid!r}, which is not a trusted operator key (none in trust.public_keys_dir)"
        try:
            raw = base64.b64decode(sig, validate=True) if isinstance(sig, str) else b""
            key.verify(raw, signed_bytes(table, row))
        except (binascii.Error, ValueError, InvalidSignature):
            return "the countersignature does not verify (the row was changed after it was countersigned)"
        return None


_BOUND: weakref.WeakKeyDictionary[Engine, OperatorTrust] = weakref.WeakKeyDictionary()


def bind(engine: Engine, trust: OperatorTrust | None) -> None:
    """Make ``trust`` the operator trust of ``engine`` (None: none; every grant is refused)."""
    if trust is None:
        _BOUND.pop(engine, None)
    else:
        _BOUND[engine] = trust


def trust_of(engine: Engine) -> OperatorTrust | None:
    """The operator trust ``engine`` was bound to, or None."""
    return _BOUND.get(engine)


def countersigned(engine: Engine, table: str, row: Mapping[str, Any]) -> dict[str, str]:
    """The countersignature columns for ``row`` of grant ``table`` written on ``engine``.
    ``OperatorKeyMissing`` when the engine has no operator trust or the key file is missing."""
    trust = trust_of(engine)
    if trust is None:
        raise OperatorKeyMissing(f"trust.key_file: this audit store ({table}) was opened without an operator key, "
                                 "so grants cannot be written; open it from settings (trust.key_file)")
    return trust.countersign(table, row)


def grant_problem(engine: Engine, table: str, row: Mapping[str, Any]) -> str | None:
    """What is wrong with grant ``row`` of ``table`` on ``engine`` (None: countersigned by a trusted key)."""
    trust = trust_of(engine)
    if trust is None:
        return "no trusted operator key is configured for this store (trust.public_keys_dir)"
    return trust.problem(table, row)


def anchored(engine: Engine) -> bool:
    """Whether the store's grants are anchored: ``keys anchor`` recorded a ``grants_anchored``
    auth event, or some grant row carries a countersignature (a store created at revision 0011 or
    later is countersigned from its first grant). Only a store upgraded to 0011 and not yet
    anchored answers False (or one whose every countersignature a database writer removed)."""
    from chainproof.checkpoints.auth_log import auth_events_of_kind

    if auth_events_of_kind(engine, ANCHORED_EVENT):
        return True
    with engine.connect() as conn:
        return any(conn.execute(select(table.c.countersignature).where(table.c.countersignature.is_not(None))
                                .limit(1)).first() is not None for table in _tables().values())


def hint(engine: Engine | None) -> str:
    """What to tell the operator about an untrusted grant row on ``engine``: on an anchored store
    that the row may be forged (never to countersign it), else how an upgraded store is anchored."""
    return FORGED_HINT if engine is None or anchored(engine) else ANCHOR_HINT


def refusal(table: str, row: Mapping[str, Any], problem: str, engine: Engine | None = None) -> GrantNotTrusted:
    """The error for an untrusted grant row (the message names the table, the row and the fix:
    :func:`hint` of ``engine``; None: the store is taken as anchored)."""
    ident = row_id(table, row)
    return GrantNotTrusted(f"grant not countersigned by a trusted operator key: {table}, row {ident} ({problem}); "
                           f"refused. {hint(engine)}", table, ident)


def require(engine: Engine, table: str, row: Mapping[str, Any]) -> None:
    """Raise :class:`GrantNotTrusted` unless ``row`` of ``table`` is countersigned by a trusted key."""
    problem = grant_problem(engine, table, row)
    if problem is not None:
        raise refusal(table, row, problem, engine)


def _fingerprint(public_key: Any) -> str:
    """SHA-256 (hex) of the raw public key: the key id ``approvers list`` and ``keys show`` print."""
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        return f"not an Ed25519 public key ({str(public_key)[:40]!r})"
    return hashlib.sha256(raw).hexdigest()


def describe(table: str, row: Mapping[str, Any]) -> str:
    """The security-relevant contents of grant ``row`` of ``table``, for the operator to review
    before countersigning it: who it names, the roles, whether enabled, the public key's
    fingerprint (key id), who added it and when."""
    fields = GRANT_TABLES[table][1](row)
    parts: list[str] = []
    if table == "approver_keys":
        parts += [f"approver {fields['approver']!r}", f"public key fingerprint {_fingerprint(fields['public_key'])}",
                  f"roles {fields['roles']}", "enabled" if fields["enabled"] else "removed"]
    elif table == "accounts":
        parts += [f"username {fields['username']!r}", f"roles {fields['roles']}", f"department {fields['department']!r}",
                  "enabled" if fields["enabled"] else "disabled"]
    elif table == "credentials":
        parts += [f"{fields['kind']} of account {fields['account_id']}", f"expires {fields['expires_at']}",
                  f"revoked {fields['revoked_at']}" if fields["revoked_at"] else "not revoked"]
    elif table == "approval_policies":
        parts += [f"graph {fields['graph']!r} version {fields['version']}", f"policy {canonical_json(fields['policy'])}"]
    else:
        parts += [f"{fields['name']} = {canonical_json(fields['value'])} (version {fields['version']})"]
    by = row.get("added_by", row.get("created_by", row.get("changed_by", row.get("actor"))))
    at = row.get("added_at", row.get("created_at", row.get("changed_at")))
    parts.append(f"added by {by!r} at {_ts(at)}")
    return "; ".join(parts)


def is_trusted(engine: Engine, table: str, row: Mapping[str, Any]) -> bool:
    """Whether ``row`` of ``table`` is countersigned by a trusted operator key."""
    return grant_problem(engine, table, row) is None


def _tables() -> dict[str, Any]:
    return {"accounts": t.accounts, "credentials": t.credentials, "approver_keys": t.approver_keys,
            "approval_policies": t.approval_policies, "store_settings": t.store_settings}


def _rows(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    out = []
    with engine.connect() as conn:
        for name, table in _tables().items():
            out += [(name, dict(r._mapping)) for r in conn.execute(select(table))]
    return out


def grant_rows(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    """``(table, row)`` of every grant row on ``engine``."""
    return _rows(engine)


def problems(engine: Engine) -> list[tuple[str, str, str]]:
    """``(table, row id, problem)`` of every grant row on ``engine`` that is not countersigned by a
    trusted operator key (revoked sessions and tokens are left out: they grant nothing)."""
    return [(name, row_id(name, row), problem) for name, row in _rows(engine)
            if not (name == "credentials" and row["revoked_at"] is not None)
            and (problem := grant_problem(engine, name, row)) is not None]


def unanchored(engine: Engine) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """``(rows without a countersignature, rows whose countersignature is present but fails)``
    on ``engine``: what :func:`anchor` would sign, and what it refuses to."""
    bare, bad = [], []
    for name, row in _rows(engine):
        if row.get("countersignature") is None:
            bare.append((name, row_id(name, row)))
        elif (problem := grant_problem(engine, name, row)) is not None:
            bad.append((name, row_id(name, row), problem))
    return bare, bad


def anchor(engine: Engine, only: Collection[tuple[str, str]] | None = None, *, actor: str = "operator",
           forced: bool = False) -> list[tuple[str, str]]:
    """Countersign every grant row on ``engine`` that has no countersignature (the upgrade to
    revision 0011) with the bound operator key (``only``: just those ``(table, row id)``, the ones
    the operator reviewed); rows with a countersignature (valid or not) are left as they are.
    Records a ``grants_anchored`` auth event (``actor``; ``forced``: anchored again with
    ``--force``), after which :func:`anchored` is true. Returns ``(table, row id)`` of the rows signed."""
    signed = []
    tables = _tables()
    for name, row in _rows(engine):
        if row.get("countersignature") is not None or (only is not None and (name, row_id(name, row)) not in only):
            continue
        table = tables[name]
        pk = list(table.primary_key.columns)[0]
        with engine.begin() as conn:
            conn.execute(update(table).where(pk == row[pk.name], table.c.countersignature.is_(None))
                         .values(**countersigned(engine, name, row)))
        signed.append((name, row_id(name, row)))
    from chainproof.checkpoints.auth_log import append_auth_event

    append_auth_event(engine, ANCHORED_EVENT, actor=actor,
                      detail={"rows": [f"{n}/{r}" for n, r in signed], "forced": forced})
    return signed


__all__ = ["ANCHORED_EVENT", "ANCHOR_HINT", "FORGED_HINT", "GRANT_CONTEXT", "GRANT_TABLES", "OperatorKeys", "OperatorTrust", "anchor", "anchored", "bind",
           "countersigned", "describe", "grant_rows", "hint", "grant_problem", "is_trusted", "problems", "refusal", "require", "row_id", "signed_bytes",
           "trust_of", "unanchored"]
