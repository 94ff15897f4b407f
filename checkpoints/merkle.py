"""Merkle audit and consistency proofs over a list of leaf hashes (RFC 9162 2.1.3.1 and 2.1.4.1).

The hashing and the verification algorithms live in :mod:`chainproof.checkpoints.log_verifier`
(the auditor's standalone file); this module builds the proofs. Leaves are 32-byte leaf hashes
in log order. Each proof costs O(n) hashes (subtree roots are recomputed, none is stored).
"""

from __future__ import annotations

from collections.abc import Sequence

from chainproof.checkpoints.log_verifier import EMPTY_ROOT, node_hash, root_of


def split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` > 1): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    return root_of(leaves[lo:hi]) if hi > lo else EMPTY_ROOT


def inclusion_proof(leaves: Sequence[bytes], index: int, tree_size: int | None = None) -> list[bytes]:
    """RFC 9162 2.1.3.1 ``PATH(index, D[tree_size])``: the audit path of leaf ``index`` in the tree
    of the first ``tree_size`` (default: all) ``leaves``. Raises ``ValueError`` for an index outside it."""
    n = len(leaves) if tree_size is None else tree_size
    if not 0 <= index < n <= len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {n} leaves")
    path: list[bytes] = []
    lo, hi, m = 0, n, index
    while hi - lo > 1:
        k = split(hi - lo)
        if m < k:
            path.append(_mth(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(_mth(leaves, lo, lo + k))
            lo, m = lo + k, m - k
    return path[::-1]  # built from the root down; the RFC lists it from the leaf up


def consistency_proof(leaves: Sequence[bytes], first: int, second: int | None = None) -> list[bytes]:
    """RFC 9162 2.1.4.1 ``PROOF(first, D[second])``: the consistency proof that the tree of the first
    ``second`` (default: all) ``leaves`` extends the tree of the first ``first``. Empty when
    ``first`` is 0 or equals ``second``. Raises ``ValueError`` when ``first`` > ``second``."""
    n = len(leaves) if second is None else second
    if not 0 <= first <= n <= len(leaves):
        raise ValueError(f"no consistency proof from {first} to {n} leaves")
    if first in (0, n):
        return []
    path: list[bytes] = []
    lo, hi, m, whole = 0, n, first, True  # SUBPROOF(m, D[lo:hi], whole)
    while m != hi - lo:
        k = split(hi - lo)
        if m <= k:
            path.append(_mth(leaves, lo + k, hi))
            hi = lo + k
        else:
            path.append(_mth(leaves, lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(_mth(leaves, lo, hi))
    return path[::-1]


def roots(leaves: Sequence[bytes], prefix: int) -> tuple[bytes, bytes]:
    """``(root of the first prefix leaves, root of all leaves)`` in one pass (RFC 9162 2.1.1 tree
    hashes, as :func:`root_of` twice but with n hashes instead of n + prefix): the leaves are added
    to a compact range (the roots of the perfect subtrees that make up the tree so far, largest
    first); a tree's root folds that range from the right. Raises ``ValueError`` when ``prefix`` is
    outside ``0..len(leaves)``."""
    if not 0 <= prefix <= len(leaves):
        raise ValueError(f"no prefix of {prefix} leaves in a tree of {len(leaves)}")
    stack: list[tuple[int, bytes]] = []  # (subtree size, root), sizes strictly decreasing
    first = EMPTY_ROOT
    for i, leaf in enumerate(leaves):
        if i == prefix:
            first = _fold(stack)
        size, node = 1, leaf
        while stack and stack[-1][0] == size:
            node = node_hash(stack.pop()[1], node)
            size *= 2
        stack.append((size, node))
    if prefix == len(leaves):
        first = _fold(stack)
    return first, _fold(stack)


def _fold(stack: list[tuple[int, bytes]]) -> bytes:
    if not stack:
        return EMPTY_ROOT
    node = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        node = node_hash(left, node)
    return node


__all__ = ["consistency_proof", "inclusion_proof", "roots", "split"]
