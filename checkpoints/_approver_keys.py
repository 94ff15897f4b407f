"""Approvers' Ed25519 keys and signed decisions.

* **Key files.** ``chainproof keys create`` writes an Ed25519 private key (PEM, PKCS#8, mode 0600)
  to the user's config directory (``$XDG_CONFIG_HOME/chainproof/keys/approver.key``, else
  ``~/.config/chainproof/keys/approver.key``; XDG Base Directory spec) and its public key beside it
  (``approver.pub``, PEM SubjectPublicKeyInfo). The private key never enters the audit store.
* **Registry.** An admin registers a public key under an approver name and the approver's policy
  roles (``approver_keys`` table, :class:`ApproverKeys`); registering and removing are
  ``auth_events`` (``approver_added`` / ``approver_removed``). Keys are never deleted, so a
  signature made before a key was removed still verifies.
* **Signed decisions.** A decision is signed over :func:`decision_statement`: run id, thread,
  checkpoint id, interrupt id, request id, proposal hash, action, the hash of the edited values,
  the hash of the comment, the approver, the key id and the time. The signed bytes are
  ``b"chainproof-decision-v1\\n"`` + the statement's canonical JSON (the audit store's own
  canonical form, ``audit_hashing.canonical_json``). The key id is the SHA-256 (hex) of the raw
  32-byte public key, as Certificate Transparency names a log by the hash of its key (RFC 9162
  §4.4). Ed25519 is RFC 8032, via ``cryptography``.
* **Countersigned.** A registration is a grant: its row (approver, public key, roles, enabled) is
  countersigned by the operator key (:mod:`chainproof.checkpoints.grants`), and a key whose row
  does not verify under a trusted operator key is refused at decision time and not counted as
  registered by ``verify`` or a run's approver roles.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints import grants
from chainproof.checkpoints.audit_hashing import canonical_json, sha256_hex
from chainproof.checkpoints.auth_log import append_auth_event, aware
from chainproof.errors import ApproverNotAllowed, InputError, SigningKeyError

SIGNING_CONTEXT = b"chainproof-decision-v1\n"
SIGNED_FIELDS = ("run_id", "thread_id", "checkpoint_id", "interrupt_id", "request_id", "proposed_hash", "action",
                 "edited_hash", "comment_hash", "approver", "key_id", "decided_at")
"""The fields of a decision statement, all of which are signed."""


# ---------------------------------------------------------------------------- key files
def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/chainproof``, else ``~/.config/chainproof`` (XDG Base Directory spec)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "chainproof"


def default_key_path() -> Path:
    """Where ``chainproof keys create`` writes the private key and ``approve`` looks for it."""
    return config_dir() / "keys" / "approver.key"


def key_id_of(public_raw: bytes) -> str:
    """The key id: SHA-256 (hex) of the raw 32-byte Ed25519 public key."""
    return hashlib.sha256(public_raw).hexdigest()


def _raw(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def create_key(path: Path | None = None, *, force: bool = False) -> tuple[Path, Path, str]:
    """Write a new Ed25519 key pair: the private key to ``path`` (default
    :func:`default_key_path`; mode 0600, its folder 0700) and the public key to ``path`` with the
    suffix ``.pub``. Returns ``(private path, public path, key id)``. ``SigningKeyError`` naming
    ``--out`` when the file exists (and not ``force``) or cannot be written."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    path = path or default_key_path()
    public_path = path.with_suffix(".pub")
    if (path.exists() or public_path.exists()) and not force:
        raise SigningKeyError(f"--out {path}: a key exists there; give --force to replace it (its signatures stay "
                         "verifiable while its public key stays registered)")
    key = Ed25519PrivateKey.generate()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        public_path.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    except OSError as exc:
        raise SigningKeyError(f"--out {path}: cannot write the key ({exc.strerror or exc})") from None
    return path, public_path, key_id_of(_raw(key.public_key()))


def load_private_key(path: Path, option: str = "--key") -> Any:
    """The Ed25519 private key in ``path`` (PEM PKCS#8, unencrypted). ``SigningKeyError`` naming
    ``option`` and the file when it is missing, readable by group or others, or not such a key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"{option} {path}: no such key file; create one with `chainproof keys create`") from None
    except OSError as exc:
        raise SigningKeyError(f"{option} {path}: cannot read the key ({exc.strerror or exc})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(f"{option} {path}: the private key is readable by others (mode {stat.S_IMODE(mode):o}); "
                         f"expected 600 (chmod 600 {path})")
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{option} {path}: expected an unencrypted Ed25519 private key in PEM (PKCS#8), "
                         "as `chainproof keys create` writes") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{option} {path}: expected an Ed25519 private key, got {type(key).__name__}")
    return key


def load_public_key(path: Path, option: str = "--public-key") -> bytes:
    """The raw 32-byte Ed25519 public key in ``path``: PEM SubjectPublicKeyInfo (``keys create``'s
    ``.pub``) or the raw key in base64. ``SigningKeyError`` naming ``option`` and the file otherwise
    (a private key is refused too: it must never be handed to the store)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{option} {path}: cannot read the public key ({exc.strerror or exc})") from None
    expected = (f"{option} {path}: expected an Ed25519 public key (PEM, as the .pub file `chainproof keys create` "
                "writes, or 32 bytes in base64)")
    if b"PRIVATE KEY" in data:
        raise SigningKeyError(f"{option} {path}: this is a private key; register the public key (the .pub file) "
                         "and keep the private key to yourself")
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = load_pem_public_key(data)
        except (ValueError, TypeError):
            raise SigningKeyError(expected) from None
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(f"{expected}; got {type(key).__name__}")
        return _raw(key)
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError(expected) from None
    if len(raw) != 32:
        raise SigningKeyError(f"{expected}; got {len(raw)} bytes")
    return raw


# ---------------------------------------------------------------------------- statements
def decision_statement(*, run_id: str, thread_id: str, checkpoint_id: str, interrupt_id: str, request_id: str,
                       proposed_hash: str, action: str, edited: Mapping[str, Any] | None, comment: str | None,
                       approver: str, key_id: str, decided_at: str) -> dict[str, Any]:
    """The fields a decision's signature covers (:data:`SIGNED_FIELDS`). ``edited``: the edited
    values as submitted (``--set`` applied to the proposal, or the replacement), hashed with
    :func:`~chainproof.checkpoints.audit_hashing.sha256_hex`; None for approve and reject.
    ``comment`` is hashed the same way (None: no comment). ``decided_at``: ISO 8601 in UTC."""
    return {"run_id": run_id, "thread_id": thread_id, "checkpoint_id": checkpoint_id, "interrupt_id": interrupt_id,
            "request_id": request_id, "proposed_hash": proposed_hash, "action": action,
            "edited_hash": sha256_hex(dict(edited)) if edited is not None else None,
            "comment_hash": sha256_hex(comment) if comment is not None else None,
            "approver": approver, "key_id": key_id, "decided_at": decided_at}


def signed_bytes(statement: Mapping[str, Any]) -> bytes:
    """The bytes a decision signature is made over (the module docstring)."""
    return SIGNING_CONTEXT + canonical_json({k: statement.get(k) for k in SIGNED_FIELDS}).encode("utf-8")


def sign_statement(private_key: Any, statement: Mapping[str, Any]) -> str:
    """The Ed25519 signature (base64) of ``statement`` with ``private_key``."""
    return base64.b64encode(private_key.sign(signed_bytes(statement))).decode("ascii")


def signature_problem(public_raw: bytes, statement: Mapping[str, Any], signature: Any) -> str | None:
    """None when ``signature`` (base64) is a valid Ed25519 signature of ``statement`` under
    ``public_raw``; else what is wrong (malformed, or does not verify)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = base64.b64decode(signature, validate=True) if isinstance(signature, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 64:
        return "signature: expected 64 bytes of Ed25519 signature in base64"
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(raw, signed_bytes(statement))
    except InvalidSignature:
        return "signature: does not verify over the signed fields with the registered key"
    return None


_DECISIONS = ("approve", "reject", "edit")


def decision_problem(row: Any, key: ApproverKey | None, required: bool) -> str | None:
    """What is wrong with decision record ``row`` (an ``approvals`` record) as a signed decision,
    or None: its signature column is malformed; its signed statement disagrees with the row
    (run, request, action, approver, proposal hash, and the payload's checkpoint and interrupt when
    kept); its key is not registered (``key`` None); the signature does not verify; or it is
    unsigned while the run's policy required a signature (``required``)."""
    if getattr(row, "action", None) not in _DECISIONS:
        return None
    sig = getattr(row, "signature", None)
    if sig is None:
        return "unsigned, but the run's approval policy requires a signature" if required else None
    signed = sig.get("signed") if isinstance(sig, dict) else None
    if not isinstance(signed, dict) or not isinstance(sig.get("key_id"), str):
        return "signature: expected {key_id, signature, signed}; the column was altered"
    payload = row.payload if isinstance(row.payload, dict) else {}
    expected = {"run_id": row.run_id, "request_id": row.request_id, "action": row.action, "approver": row.approver,
                "proposed_hash": row.proposed_hash, "key_id": sig["key_id"],
                **{k: payload[k] for k in ("checkpoint_id", "interrupt_id") if k in payload}}
    differs = [k for k, v in expected.items() if signed.get(k) != v]
    if differs:
        return f"signature: the signed {', '.join(differs)} differ from the record's (the record or its signature was edited)"
    if key is None:
        return f"signature: key {sig['key_id'][:16]}… is not registered in this store"
    if key.approver != row.approver:
        return f"signature: key {key.key_id[:16]}… is registered to {key.approver!r}, not {row.approver!r}"
    return signature_problem(key.public_key, signed, sig.get("signature"))


@dataclass(frozen=True)
class KeySigner:
    """Signs decisions with a private key the caller holds (the CLI: ``--key``, default
    :func:`default_key_path`)."""

    private_key: Any

    @classmethod
    def from_file(cls, path: Path, option: str = "--key") -> KeySigner:
        return cls(load_private_key(path, option))

    @property
    def key_id(self) -> str:
        return key_id_of(_raw(self.private_key.public_key()))

    def sign(self, statement: Mapping[str, Any]) -> str:
        return sign_statement(self.private_key, statement)


@dataclass(frozen=True)
class ClientSignature:
    """A signature a client made itself (the web API): the ``key_id``, the ``signature`` (base64)
    and the ``decided_at`` (ISO 8601) it signed."""

    key_id: str
    signature: str
    decided_at: str


# ---------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class ApproverKey:
    """A registered key: ``key_id``, the ``approver`` it speaks for, the raw ``public_key``, the
    approver's policy ``roles``, and when and by whom it was added (and removed)."""

    key_id: str
    approver: str
    public_key: bytes
    roles: tuple[str, ...]
    added_at: datetime
    added_by: str
    removed_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.removed_at is None


def _key(row: Mapping[str, Any]) -> ApproverKey:
    return ApproverKey(row["key_id"], row["approver"], base64.b64decode(row["public_key"]), tuple(row["roles"] or ()),
                       aware(row["added_at"]), row["added_by"], aware(row["removed_at"]) if row["removed_at"] else None)


class ApproverKeys:
    """The ``approver_keys`` registry on ``engine`` (schema revision 0007 or later)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def add(self, approver: str, public_raw: bytes, roles: list[str], *, actor: str,
            note: Mapping[str, Any] | None = None) -> ApproverKey:
        """Register ``public_raw`` for ``approver`` (1-100 characters) with policy ``roles``; an
        ``approver_added`` auth event (its detail: key id, roles, and ``note``, e.g. who holds the
        private key). ``InputError`` for a bad name or a key already registered."""
        name = approver.strip()
        if not name or len(name) > 100:
            raise InputError(f"NAME: expected an approver name of 1-100 characters, got {approver!r}")
        kid = key_id_of(public_raw)
        found = self.get(kid)
        if found is not None:
            raise InputError(f"--public-key: key {kid[:16]}… is already registered (to {found.approver!r}"
                             f"{', removed' if not found.active else ''}); a key speaks for one approver only")
        clean = sorted({r.strip().removeprefix("role:") for r in roles if r.strip()})
        row = {"key_id": kid, "approver": name, "public_key": base64.b64encode(public_raw).decode("ascii"),
               "roles": clean, "added_at": datetime.now(UTC), "added_by": actor, "removed_at": None}
        row.update(grants.countersigned(self.engine, "approver_keys", row))
        with self.engine.begin() as conn:
            conn.execute(insert(t.approver_keys).values(**row))
        append_auth_event(self.engine, "approver_added", username=name, actor=actor,
                          detail={"key_id": kid, "roles": clean, **(note or {})})
        return _key(row)

    def remove(self, approver: str, *, actor: str) -> list[str]:
        """Retire every active key of ``approver`` (an ``approver_removed`` auth event); their
        key ids. ``InputError`` when the approver has no active key."""
        keys = [k for k in self.keys() if k.approver == approver.strip() and k.active]
        if not keys:
            known = ", ".join(sorted({k.approver for k in self.keys() if k.active})) or "none"
            raise InputError(f"NAME: no registered approver {approver!r}; registered: {known}")
        c, now = t.approver_keys.c, datetime.now(UTC)
        signed = {k.key_id: grants.countersigned(self.engine, "approver_keys",
                                                 {**(self._row(k.key_id) or {}), "removed_at": now}) for k in keys}
        with self.engine.begin() as conn:
            for kid, columns in signed.items():
                conn.execute(update(t.approver_keys).where(c.key_id == kid).values(removed_at=now, removed_by=actor, **columns))
        ids = [k.key_id for k in keys]
        append_auth_event(self.engine, "approver_removed", username=keys[0].approver, actor=actor, detail={"key_ids": ids})
        return ids

    def keys(self, *, trusted_only: bool = False) -> list[ApproverKey]:
        """Every registered key (removed ones too), by approver and date; with ``trusted_only``,
        only those whose row is countersigned by a trusted operator key."""
        c = t.approver_keys.c
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(t.approver_keys).order_by(c.approver, c.added_at))]
        return [_key(r) for r in rows if not trusted_only or grants.is_trusted(self.engine, "approver_keys", r)]

    def _row(self, key_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            found = conn.execute(select(t.approver_keys).where(t.approver_keys.c.key_id == key_id)).first()
        return dict(found._mapping) if found else None

    def get(self, key_id: str, *, trusted_only: bool = False) -> ApproverKey | None:
        """The key ``key_id`` (active or removed), or None (also, with ``trusted_only``, when its
        row is not countersigned by a trusted operator key)."""
        row = self._row(key_id)
        if row is None or (trusted_only and not grants.is_trusted(self.engine, "approver_keys", row)):
            return None
        return _key(row)

    def active(self, key_id: str) -> ApproverKey:
        """The active key ``key_id``; ``ApproverNotAllowed`` when it is unknown, removed, or its
        registration is not countersigned by a trusted operator key (the message says so)."""
        row = self._row(key_id)
        problem = grants.grant_problem(self.engine, "approver_keys", row) if row is not None else None
        if row is not None and problem is not None:
            raise ApproverNotAllowed(f"signature: {grants.refusal('approver_keys', row, problem, self.engine)}; nothing was decided")
        found = _key(row) if row is not None else None
        if found is None:
            raise ApproverNotAllowed(f"signature: key {key_id[:16]}… is not registered to any approver; an admin "
                                     "registers it with `chainproof approvers add NAME --public-key FILE`; nothing was decided")
        if not found.active:
            raise ApproverNotAllowed(f"signature: key {key_id[:16]}… of {found.approver!r} was removed; nothing was decided")
        return found


__all__ = ["SIGNED_FIELDS", "ApproverKey", "ApproverKeys", "ClientSignature", "KeySigner", "config_dir",
           "create_key", "decision_problem", "decision_statement", "default_key_path", "key_id_of", "load_private_key",
           "load_public_key", "sign_statement", "signature_problem", "signed_bytes"]
