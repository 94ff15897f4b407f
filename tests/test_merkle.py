"""RFC 9162 Merkle proofs: tree hashes, audit paths and consistency proofs at sizes 1-9 and 1,000,
checked against the RFC's recursive definitions (section 2.1.1, 2.1.3.1, 2.1.4.1) written out
literally here, and against its verification algorithms (2.1.3.2, 2.1.4.2)."""

from __future__ import annotations

import hashlib

import pytest

from chainproof.checkpoints.log_verifier import (
    EMPTY_ROOT,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from chainproof.checkpoints.merkle import consistency_proof, inclusion_proof, split

SIZES = [*range(1, 10), 1000]


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(f"record {i}".encode()) for i in range(n)]


def _k(n: int) -> int:  # "the largest power of two smaller than n", by counting
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth(d: list[bytes]) -> bytes:  # RFC 9162 2.1.1, recursively; d holds leaf hashes
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + _mth(d[:k]) + _mth(d[k:])).digest()


def _path(m: int, d: list[bytes]) -> list[bytes]:  # RFC 9162 2.1.3.1
    if len(d) == 1:
        return []
    k = _k(len(d))
    return _path(m, d[:k]) + [_mth(d[k:])] if m < k else _path(m - k, d[k:]) + [_mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:  # RFC 9162 2.1.4.1
    n = len(d)
    if m == n:
        return [] if b else [_mth(d)]
    k = _k(n)
    return _subproof(m, d[:k], b) + [_mth(d[k:])] if m <= k else _subproof(m - k, d[k:], False) + [_mth(d[:k])]


def test_split_is_the_largest_power_of_two_smaller_than_n():
    assert [split(n) for n in range(2, 10)] == [1, 2, 2, 4, 4, 4, 4, 8]
    assert split(1000) == 512 and split(1024) == 512 and split(1025) == 1024


@pytest.mark.parametrize("n", SIZES)
def test_root_matches_the_rfc_definition(n):
    leaves = _leaves(n)
    assert root_of(leaves) == _mth(leaves)
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_leaf_and_node_hashes_use_the_rfc_prefixes():
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    a, b = _leaves(2)
    assert root_of([a, b]) == hashlib.sha256(b"\x01" + a + b).digest()
    # a leaf can never pass for an inner node: the prefixes keep the two domains apart
    assert root_of([a, b]) != leaf_hash(a + b)


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_proofs_match_the_rfc_and_verify(n):
    leaves = _leaves(n)
    root = root_of(leaves)
    indexes = range(n) if n < 10 else [0, 1, 255, 511, 512, 767, 998, 999]
    for m in indexes:
        path = inclusion_proof(leaves, m)
        assert path == _path(m, leaves), (n, m)
        assert verify_inclusion(leaves[m], m, n, path, root)
        assert not verify_inclusion(leaf_hash(b"forged"), m, n, path, root)
        assert not verify_inclusion(leaves[m], m, n, path, leaf_hash(b"other root"))
        if n > 1:
            assert not verify_inclusion(leaves[m], (m + 1) % n, n, path, root)
            assert not verify_inclusion(leaves[m], m, n, path[:-1], root)


@pytest.mark.parametrize("n", SIZES)
def test_consistency_proofs_match_the_rfc_and_verify(n):
    leaves = _leaves(n)
    root = root_of(leaves)
    firsts = range(0, n + 1) if n < 10 else [0, 1, 2, 3, 7, 8, 9, 500, 511, 512, 513, 999, 1000]
    for m in firsts:
        proof = consistency_proof(leaves, m)
        assert proof == ([] if m in (0, n) else _subproof(m, leaves, True)), (n, m)
        old_root = root_of(leaves[:m])
        assert verify_consistency(m, n, old_root, root, proof), (n, m)
        if 0 < m < n:  # a different old tree, or a changed new leaf, breaks the proof
            assert not verify_consistency(m, n, leaf_hash(b"other"), root, proof)
            changed = [*leaves[:-1], leaf_hash(b"changed")]
            assert not verify_consistency(m, n, old_root, root_of(changed), proof)
            changed_old = [leaf_hash(b"changed"), *leaves[1:]]
            assert not verify_consistency(m, n, old_root, root_of(changed_old), consistency_proof(changed_old, m))


def test_proofs_refuse_indexes_outside_the_tree():
    leaves = _leaves(4)
    with pytest.raises(ValueError, match="not in a tree of 4"):
        inclusion_proof(leaves, 4)
    with pytest.raises(ValueError, match="from 5 to 4"):
        consistency_proof(leaves, 5)
    assert not verify_consistency(3, 2, EMPTY_ROOT, EMPTY_ROOT, [])


@pytest.mark.parametrize("n", SIZES)
def test_roots_gives_a_prefixs_root_and_the_whole_trees_in_one_pass(n):
    from chainproof.checkpoints.merkle import roots

    leaves = _leaves(n)
    for prefix in range(n + 1) if n < 50 else (0, 1, 511, 512, 513, n - 1, n):
        assert roots(leaves, prefix) == (_mth(leaves[:prefix]), _mth(leaves))
    with pytest.raises(ValueError, match="no prefix"):
        roots(leaves, n + 1)
