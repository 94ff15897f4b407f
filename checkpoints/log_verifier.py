"""Standalone verifier of Chainproof's signed tree heads and inclusion proofs.

Imports only the standard library and ``cryptography``: an auditor copies this one file and checks
a proof from ``chainproof prove`` with the log's public key alone, without Chainproof or database
access::

    python log_verifier.py PROOF.json --public-key LOG_KEY.pem

Exit code 0 when every record of the proof is in the log under the signed head, 1 otherwise (the
reason on one line). Chainproof itself verifies with these same functions.

Formats (RFC 9162, Certificate Transparency v2, section 2.1; SHA-256):

* leaf hash ``SHA-256(0x00 || d)``, node hash ``SHA-256(0x01 || left || right)``; the tree of ``n``
  leaves splits at the largest power of two smaller than ``n``; the empty tree's root is ``SHA-256("")``.
* a leaf's data ``d`` (:func:`leaf_data`): the UTF-8 canonical JSON (keys sorted, no white space) of
  ``{"hash": RECORD_HASH, "run_id": RUN_ID, "seq": SEQ, "table": TABLE}`` of one audit record.
* a record's ``record_hash`` is the SHA-256 (hex) of its content's canonical JSON (the ``content``
  string a proof carries).
* a signed tree head: ``{"tree_size", "root_hash" (hex), "timestamp" (ISO 8601 UTC), "key_id",
  "signature" (base64 Ed25519)}``; the signature covers :func:`head_message`. The key id is the first
  16 hex digits of the SHA-256 of the raw 32-byte Ed25519 public key.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEAD_FIELDS = ("key_id", "root_hash", "timestamp", "tree_size")
"""The fields of a tree head the signature covers."""
HEAD_CONTEXT = b"chainproof-tree-head-v1\n"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 2.1.1: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 2.1.1: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def leaf_data(table: str, run_id: str, seq: int, record_hash: str) -> bytes:
    """The leaf data ``d`` of one audit record (see the module docstring)."""
    return canonical({"hash": record_hash, "run_id": run_id, "seq": seq, "table": table}).encode("utf-8")


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of ``leaves`` (leaf hashes), RFC 9162 2.1.1. Pairs level by level, an
    unpaired last node moving up unchanged: the same tree as the RFC's split at the largest power of
    two smaller than n. O(n) hashes."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def verify_inclusion(leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2: whether ``leaf`` (a leaf hash) is leaf ``index`` of the tree of
    ``tree_size`` leaves whose root is ``root``, by its audit ``path``."""
    if index < 0 or index >= tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       path: Sequence[bytes]) -> bool:
    """RFC 9162 2.1.4.2: whether the tree of ``second`` leaves (root ``second_root``) extends the
    tree of ``first`` leaves (root ``first_root``), by the consistency ``path``. Equal sizes need an
    empty path and equal roots; every tree extends the empty one."""
    if first < 0 or second < first:
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    proof = list(path)
    if first & (first - 1) == 0:  # an exact power of 2
        proof.insert(0, first_root)
    if not proof:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def head_message(head: dict[str, Any]) -> bytes:
    """The bytes a tree head's signature covers: a context line, then the canonical JSON of
    :data:`HEAD_FIELDS`."""
    return HEAD_CONTEXT + canonical({k: head[k] for k in HEAD_FIELDS}).encode("utf-8")


def head_problem(head: Any, public_key: Ed25519PublicKey) -> str | None:
    """Why ``head`` (a parsed tree head) is not a head signed by ``public_key``, or None when it is."""
    if not isinstance(head, dict):
        return "a tree head must be a JSON object"
    missing = [k for k in (*HEAD_FIELDS, "signature") if k not in head]
    if missing:
        return f"the tree head has no {', '.join(missing)}"
    if not isinstance(head["tree_size"], int) or isinstance(head["tree_size"], bool) or head["tree_size"] < 0:
        return f"tree_size: expected a non-negative integer, got {head['tree_size']!r}"
    for name in ("key_id", "timestamp", "signature"):
        if not isinstance(head[name], str) or not head[name]:
            return f"the tree head's {name}: expected a non-empty string, got {head[name]!r}"
    root = head["root_hash"]
    if not isinstance(root, str) or len(root) != 64 or any(c not in "0123456789abcdef" for c in root):
        return f"the tree head's root_hash: expected 64 lowercase hex digits, got {root!r}"
    if head["key_id"] != key_id(public_key):
        return f"signed by key {head['key_id']}, not by the given public key {key_id(public_key)}"
    try:
        public_key.verify(base64.b64decode(head["signature"], validate=True), head_message(head))
    except (InvalidSignature, ValueError, TypeError):
        return f"the signature does not verify with key {head['key_id']}"
    return None


def proof_problem(proof: dict[str, Any], public_key: Ed25519PublicKey) -> str | None:
    """Why the inclusion proof file ``proof`` (from ``chainproof prove``) does not hold, or None."""
    head = proof.get("head")
    problem = head_problem(head, public_key)
    if problem:
        return problem
    assert isinstance(head, dict)
    root = bytes.fromhex(head["root_hash"])
    records = proof.get("records") or []
    if not records:
        return "the proof holds no records"
    for rec in records:
        where = f"{rec.get('table')} seq {rec.get('seq')}"
        content = rec["content"]
        if hashlib.sha256(content.encode("utf-8")).hexdigest() != rec["record_hash"]:
            return f"{where}: its content does not hash to its record_hash"
        fields = json.loads(content)
        if (fields.get("run_id"), fields.get("seq"), fields.get("table")) != (proof["run_id"], rec["seq"], rec["table"]):
            return f"{where}: its content names another run, seq or table"
        if fields.get("step_no") != proof.get("step") or not isinstance(proof.get("step"), int):
            return (f"{where}: its content says step_no {fields.get('step_no')!r}, not the proof's step "
                    f"{proof.get('step')!r}")
        leaf = leaf_hash(leaf_data(rec["table"], proof["run_id"], rec["seq"], rec["record_hash"]))
        path = [bytes.fromhex(h) for h in rec["audit_path"]]
        if not verify_inclusion(leaf, rec["leaf_index"], head["tree_size"], path, root):
            return f"{where}: not included at leaf {rec['leaf_index']} of the tree of {head['tree_size']} leaves"
    return None


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a Chainproof inclusion proof with the log's public key.")
    parser.add_argument("proof", type=Path, help="the JSON file written by `chainproof prove`")
    parser.add_argument("--public-key", type=Path, required=True, help="the log's Ed25519 public key (PEM)")
    args = parser.parse_args(argv)
    try:
        proof = json.loads(args.proof.read_text(encoding="utf-8"))
        problem = proof_problem(proof, load_public_key(args.public_key))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        problem = f"cannot read the proof or key: {type(exc).__name__}: {exc}"
    if problem:
        print(f"FAIL: {problem}")
        return 1
    head = proof["head"]
    print(f"OK: {len(proof['records'])} records of run {proof['run_id']} step {proof['step']} are in the log of "
          f"{head['tree_size']} leaves signed by key {head['key_id']} at {head['timestamp']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
