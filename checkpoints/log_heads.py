"""Signed tree heads of the audit log: the Ed25519 signing key, its public keys, and the head sinks.

* **Key** (:class:`LogKeys`): an Ed25519 private key in a PEM file outside the database
  (``log.key_file``, default ``$CHAINPROOF_HOME/keys/log-signing.key``), created with mode 0600 on
  first use and refused when group or others can read it (as ssh refuses an open private key).
  Its key id is the first 16 hex digits of the SHA-256 of the raw public key. Every public key
  ever used is kept in ``log.public_keys_dir`` as ``KEY_ID.pub``, so heads signed before a
  rotation (:meth:`LogKeys.rotate`) still verify.
* **Head** (RFC 9162 4.10's signed tree head, with an ISO 8601 timestamp): ``tree_size``,
  ``root_hash``, ``timestamp``, ``key_id``, ``signature``; signed bytes:
  :func:`chainproof.checkpoints.log_verifier.head_message`.
* **Sinks** (:class:`FileSink`): append-only JSON-lines files (``log.head_sinks``, default
  ``$CHAINPROOF_HOME/heads/heads.jsonl``, a directory apart from the database), opened with
  ``O_APPEND`` only and never rewritten. Each publication appends the leaves added since the
  sink's last head (``{"leaves": [[idx, leaf_hash, run_id, table, seq], …]}``: the mirror that lets
  ``verify --against`` name the first record that changed even when the records' hashes in the
  database were rewritten, since the database stores no leaf hash) and then ``{"head": {…}}``. Before signing, the current log must extend the
  sink's last head; otherwise nothing is signed (:class:`~chainproof.errors.LogInconsistent`).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine

from chainproof.checkpoints import log_verifier
from chainproof.checkpoints.log_verifier import head_message, head_problem, key_id, root_of
from chainproof.checkpoints.merkle import roots
from chainproof.checkpoints.merkle_log import Leaf, signable_leaves
from chainproof.errors import HeadRefused, LogInconsistent, SigningKeyError

MIRROR_CHUNK = 1000
"""Leaves per mirror line of a sink."""


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new file ``path`` created with ``mode`` (never widened by the umask's absence)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class LogKeys:
    """The log's signing key (``key_file``) and the public keys of every key id (``public_dir``)."""

    SETTING = "log.key_file"
    CREATED_BY = "`chainproof log head`"

    def __init__(self, key_file: Path, public_dir: Path):
        self.key_file = Path(key_file).expanduser()
        self.public_dir = Path(public_dir).expanduser()

    def _keep_public(self, key: Ed25519PrivateKey) -> str:
        public = key.public_key()
        kid = key_id(public)
        path = self.public_dir / f"{kid}.pub"
        if not path.exists():
            self.public_dir.mkdir(parents=True, exist_ok=True)
            pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            _write_new(path, pem, 0o644)
        return kid

    def _create(self, path: Path) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        _write_new(path, pem, 0o600)
        return key

    def private_key(self, *, create: bool = True) -> Ed25519PrivateKey:
        """The signing key; created (0600) when the file does not exist and ``create``. Raises
        :class:`SigningKeyError` for a file group or others can access, or one that is not an
        Ed25519 private key in PEM."""
        path = self.key_file
        if not path.exists():
            if not create:
                raise self._missing(path)
            key = self._create(path)
        else:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise SigningKeyError(f"{self.SETTING} {path}: permissions {mode:04o} let others read the signing key; "
                                      f"expected 0600 (chmod 600 {path})")
            try:
                loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (ValueError, TypeError) as exc:
                raise SigningKeyError(f"{self.SETTING} {path}: not a PEM private key ({exc})") from None
            if not isinstance(loaded, Ed25519PrivateKey):
                raise SigningKeyError(f"{self.SETTING} {path}: expected an Ed25519 key, got {type(loaded).__name__}")
            key = loaded
        self._keep_public(key)
        return key

    def _missing(self, path: Path) -> SigningKeyError:
        return SigningKeyError(f"{self.SETTING} {path}: no such file ({self.CREATED_BY} creates one)")

    def public_key(self, kid: str) -> Ed25519PublicKey:
        """The public key of key id ``kid`` from ``public_dir``. Raises :class:`HeadRefused` for an
        unknown key id (a head signed by a key this log never used)."""
        path = self.public_dir / f"{kid}.pub"
        if not isinstance(kid, str) or not kid.isalnum() or not path.is_file():
            raise HeadRefused(f"the head is signed by key {kid!r}, which is not one of this log's keys "
                              f"(log.public_keys_dir {self.public_dir})")
        return load_public_key(path)

    def rotate(self) -> tuple[str, str]:
        """Replace the signing key by a new one; the old public key stays in ``public_dir``.
        Returns ``(old key id, new key id)``."""
        old = key_id(self.private_key().public_key())
        fresh = self.key_file.with_name(self.key_file.name + ".new")
        fresh.unlink(missing_ok=True)
        key = self._create(fresh)
        os.replace(fresh, self.key_file)
        return old, self._keep_public(key)

    def sign(self, tree_size: int, root: bytes) -> dict[str, Any]:
        """A signed tree head of ``tree_size`` leaves with ``root``, timestamped now (UTC)."""
        key = self.private_key()
        head = {"tree_size": tree_size, "root_hash": root.hex(), "key_id": key_id(key.public_key()),
                "timestamp": datetime.now(UTC).isoformat(timespec="microseconds")}
        head["signature"] = base64.b64encode(key.sign(head_message(head))).decode("ascii")
        return head


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file. Raises :class:`SigningKeyError` naming the file."""
    try:
        return log_verifier.load_public_key(Path(path))
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"{path}: cannot read an Ed25519 public key (PEM): {exc}") from None


def checked_head(head: Any, public_key: Ed25519PublicKey, where: str = "the head") -> dict[str, Any]:
    """``head`` when it is a tree head signed by ``public_key``; else :class:`HeadRefused`."""
    problem = head_problem(head, public_key)
    if problem:
        raise HeadRefused(f"{where}: {problem}")
    return head


class FileSink:
    """An append-only JSON-lines file of published heads and the leaves they cover (see the module
    docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path).expanduser()

    def _lines(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash: skipped, the next publication re-mirrors
        return out

    def heads(self, lines: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Every head published here, oldest first (``lines``: the file's lines, read once by the caller)."""
        return [entry["head"] for entry in (self._lines() if lines is None else lines)
                if isinstance(entry, dict) and "head" in entry]

    def leaves(self, lines: list[dict[str, Any]] | None = None) -> list[Leaf]:
        """The mirrored leaves by index, up to the first gap (``lines`` as :meth:`heads`)."""
        found: dict[int, Leaf] = {}
        for entry in self._lines() if lines is None else lines:
            for row in entry.get("leaves", ()) if isinstance(entry, dict) else ():
                found.setdefault(int(row[0]), Leaf(int(row[0]), str(row[1]), str(row[2]), str(row[3]), int(row[4])))
        out: list[Leaf] = []
        while len(out) in found:
            out.append(found[len(out)])
        return out

    def _state(self) -> _SinkState:
        return _read_state(self.path)

    def _refusal(self, last: dict[str, Any]) -> LogInconsistent:
        return LogInconsistent(f"the audit log no longer extends the head of {last['tree_size']} leaves published at "
                               f"{last['timestamp']} in {self.path}: nothing was signed; run "
                               f"`chainproof verify --against` on a kept head to find what changed")

    def publish(self, engine: Engine, keys: LogKeys) -> dict[str, Any]:
        """Sign the store's current tree and append it (with the leaves this sink lacks), holding the
        sink's lock so concurrent publishers append whole entries. Raises :class:`LogInconsistent`
        (nothing signed) when the log no longer extends this sink's last head."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with os.fdopen(fd, "ab") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                leaves = signable_leaves(engine)
                hashes = [bytes.fromhex(x.leaf_hash) for x in leaves]
                state = self._state()  # what the file holds, read from where this process last stopped
                mirrored, last = state.mirrored, state.last_head
                size = int(last["tree_size"]) if last is not None else 0
                if last is not None and size > len(hashes):
                    raise self._refusal(last)
                before, root = roots(hashes, size)
                if last is not None and before.hex() != last["root_hash"]:
                    raise self._refusal(last)
                head = keys.sign(len(hashes), root)
                handle.write(b"".join(_mirror_lines(leaves[mirrored:])))
                handle.write(json.dumps({"head": head}, separators=(",", ":")).encode() + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return head


@dataclass
class _SinkState:
    """What a sink file held when this process last read it: the file's identity, the offset after
    its last whole line, the last head, the number of leaves mirrored from index 0 without a gap
    and the indexes mirrored beyond a gap."""

    ident: tuple[int, int]
    offset: int = 0
    last_head: dict[str, Any] | None = None
    mirrored: int = 0
    beyond: set[int] = field(default_factory=set)

    def take(self, entry: Any) -> None:
        if not isinstance(entry, dict):
            return
        if "head" in entry:
            self.last_head = entry["head"]
        for row in entry.get("leaves", ()):
            idx = int(row[0])
            if idx >= self.mirrored:
                self.beyond.add(idx)
        while self.mirrored in self.beyond:
            self.beyond.discard(self.mirrored)
            self.mirrored += 1


_states: dict[str, _SinkState] = {}
_states_guard = threading.Lock()


def _read_state(path: Path) -> _SinkState:
    """The sink file's state (see :class:`_SinkState`), reading only the lines appended since this
    process last read it (the file is append-only; another identity or a shorter file is read
    again from the start). A line that is not JSON is skipped, as :meth:`FileSink._lines` does; a
    last line without its newline yet is left for the next read. Call holding the file's lock."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return _SinkState((0, 0))
    ident = (info.st_dev, info.st_ino)
    with _states_guard:
        state = _states.get(str(path))
        if state is None or state.ident != ident or state.offset > info.st_size:
            state = _states[str(path)] = _SinkState(ident)
    with open(path, "rb") as handle:
        handle.seek(state.offset)
        data = handle.read()
    whole = data[:data.rfind(b"\n") + 1]
    for line in whole.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash, as _lines skips it
        state.take(entry)
    state.offset += len(whole)
    return state


def _mirror_lines(leaves: Sequence[Leaf]) -> list[bytes]:
    rows = [[x.idx, x.leaf_hash, x.run_id, x.table, x.seq] for x in leaves]
    return [json.dumps({"leaves": rows[i:i + MIRROR_CHUNK]}, separators=(",", ":")).encode() + b"\n"
            for i in range(0, len(rows), MIRROR_CHUNK)]


def publish_head(engine: Engine, keys: LogKeys, sinks: Sequence[FileSink]) -> dict[str, Any]:
    """Sign the current tree head and publish it to every sink; returns the last head signed (one
    signed now without publishing when there is no sink)."""
    head = None
    for sink in sinks:
        head = sink.publish(engine, keys)
    if head is None:
        hashes = [bytes.fromhex(x.leaf_hash) for x in signable_leaves(engine)]
        head = keys.sign(len(hashes), root_of(hashes))
    return head


__all__ = ["FileSink", "LogKeys", "checked_head", "load_public_key", "publish_head"]
