"""The Merkle log over the audit store: one leaf per chained record of every run, in append order.

Leaves (table ``merkle_leaves``) are written by the append path
(:class:`chainproof.checkpoints.audit_writer.ChainWriter`) in the transaction of the records they
cover; leaf ``i`` has index ``idx = i``. A leaf's data is the record's identity and ``record_hash``
(:func:`chainproof.checkpoints.log_verifier.leaf_data`); a run header is covered through its
``run_started`` record, which holds the header's hash. Stores created before revision 0005 got
their records as leaves from that migration, run by run (runs by ``created_at`` then id, each
run's records by ``seq``).

Checking the log against a signed tree head (:func:`check_against`) recomputes every leaf from the
record as it is now (its content hashed again, not its stored ``record_hash``), proves with an
RFC 9162 consistency proof that the head's tree is a prefix of the current one, and otherwise
names the first leaf that differs or is missing. Naming needs a copy of the leaves the head
covers that hashes to the head's root: a head sink's mirror (:mod:`chainproof.checkpoints.log_heads`)
or, when an attacker left it alone, the store's own ``merkle_leaves`` rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine, select

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints.audit_hashing import canonical_json, record_content, record_hash
from chainproof.checkpoints.audit_read import AuditReader
from chainproof.checkpoints.log_verifier import leaf_data, leaf_hash, root_of, verify_consistency
from chainproof.checkpoints.merkle import consistency_proof, inclusion_proof

_leaves = t.merkle_leaves


def record_leaf(table: str, run_id: str, seq: int, rec_hash: str) -> str:
    """The hex leaf hash of one record (RFC 9162 ``SHA-256(0x00 || leaf_data)``)."""
    return leaf_hash(leaf_data(table, run_id, seq, rec_hash)).hex()


@dataclass(frozen=True)
class Leaf:
    """One leaf: its index, hex hash and the record it covers (run, table, seq)."""

    idx: int
    leaf_hash: str
    run_id: str
    table: str
    seq: int

    def names(self) -> str:
        return f"leaf {self.idx}: run {self.run_id}, {self.table} seq {self.seq}"


def leaf_rows(engine: Engine, start: int = 0) -> list[Leaf]:
    """The stored leaves from index ``start`` on, by index (as written; an attacker may have changed them)."""
    c = _leaves.c
    stmt = select(c.idx, c.leaf_hash, c.run_id, c.record_table, c.seq).where(c.idx >= start).order_by(c.idx)
    with engine.connect() as conn:
        return [Leaf(int(i), h, r, tb, int(s)) for i, h, r, tb, s in conn.execute(stmt)]


def stored_tree(engine: Engine) -> tuple[int, bytes]:
    """``(tree size, root)`` of the stored leaves: what a tree head signs (O(n) hashes)."""
    hashes = [bytes.fromhex(row.leaf_hash) for row in leaf_rows(engine)]
    return len(hashes), root_of(hashes)


def _all_records(reader: AuditReader) -> dict[tuple[str, int], Any]:
    """Every chained record of the store by ``(run_id, seq)`` (a seq taken twice keeps the first)."""
    found: dict[tuple[str, int], Any] = {}
    for table in t.CHAINED:
        for rec in reader._records(select(table).order_by(table.c.id), table):
            found.setdefault((rec.run_id, rec.seq), rec)
    return found


DifferenceKind = Literal["missing", "differs", "unlogged", "truncated", "rewritten"]


@dataclass(frozen=True)
class LogDifference:
    """The first place the current log departs from a head: ``kind`` (``missing``: the record a
    leaf covers is gone; ``differs``: it is not the record the head covers; ``truncated``: the log
    is shorter than the head; ``unlogged``: a record with no leaf; ``rewritten``: the head's leaves
    changed but no copy of them names which), the leaf index and the record, when known."""

    kind: DifferenceKind
    detail: str
    leaf: Leaf | None = None

    def as_dict(self) -> dict[str, Any]:
        leaf = self.leaf
        where = {"leaf_index": leaf.idx, "run_id": leaf.run_id, "table": leaf.table, "seq": leaf.seq} if leaf else {}
        return {"kind": self.kind, "detail": self.detail, **where}


@dataclass
class LogCheck:
    """Outcome of :func:`check_against`: the head's size and root, the current log's, the
    consistency proof (hex hashes) and the first difference (None when the log extends the head)."""

    head_size: int
    head_root: str
    size: int = 0
    root: str = ""
    proof: list[str] = field(default_factory=list)
    difference: LogDifference | None = None

    @property
    def ok(self) -> bool:
        return self.difference is None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "head_size": self.head_size, "head_root": self.head_root, "size": self.size,
                "root": self.root, "consistency_proof": self.proof,
                "difference": self.difference.as_dict() if self.difference else None}


def current_leaves(reader: AuditReader) -> tuple[list[Leaf], LogDifference | None]:
    """The log as the records are now: each stored leaf's position recomputed from its record's
    content, up to the first leaf whose record (or index) is missing, which is returned as the
    difference; a record that has no leaf is an ``unlogged`` difference."""
    records = _all_records(reader)
    out: list[Leaf] = []
    covered: set[tuple[str, int]] = set()
    for expected, row in enumerate(leaf_rows(reader.engine)):
        if row.idx != expected:
            gap = Leaf(expected, "", "?", "?", 0)
            return out, LogDifference("missing", f"leaf {expected} is missing from the store's log", gap)
        rec = records.get((row.run_id, row.seq))
        if rec is None or rec.__tablename__ != row.table:
            return out, LogDifference("missing", f"{row.names()}: the record is missing", row)
        covered.add((row.run_id, row.seq))
        out.append(Leaf(row.idx, record_leaf(row.table, row.run_id, row.seq, record_hash(rec)),
                        row.run_id, row.table, row.seq))
    stray = sorted(set(records) - covered)
    if stray:
        rec = records[stray[0]]
        return out, LogDifference("unlogged", f"run {rec.run_id}, {rec.__tablename__} seq {rec.seq} (id {rec.id}): "
                                  f"a record that is in no leaf of the log (not written by Chainproof's writer)")
    return out, None


def check_against(reader: AuditReader, head_size: int, head_root: bytes,
                  references: Iterable[Sequence[Leaf]] = ()) -> LogCheck:
    """Check that the current log extends the tree of ``head_size`` leaves with root ``head_root``
    (an RFC 9162 consistency proof over the recomputed leaves), naming the first difference
    otherwise. ``references``: copies of the log's leaves (a sink's mirror, …); the first whose
    first ``head_size`` leaves hash to ``head_root`` names the difference exactly. The store's own
    leaf rows are tried last. The head's signature is checked by the caller."""
    result = LogCheck(head_size, head_root.hex())
    now, broken = current_leaves(reader)
    hashes = [bytes.fromhex(leaf.leaf_hash) for leaf in now]
    result.size, result.root = len(hashes), root_of(hashes).hex()
    if broken is None and len(hashes) >= head_size:
        proof = consistency_proof(hashes, head_size)
        result.proof = [p.hex() for p in proof]
        if verify_consistency(head_size, len(hashes), head_root, root_of(hashes), proof):
            return result
    elif broken is not None and broken.kind == "unlogged" and len(hashes) >= head_size:
        if root_of(hashes[:head_size]) == head_root:  # the head's part holds; a stray record after it
            result.difference = broken
            return result
    result.difference = _locate(now, broken, head_size, head_root, [*references, leaf_rows(reader.engine)])
    return result


def _locate(now: list[Leaf], broken: LogDifference | None, head_size: int, head_root: bytes,
            references: list[Sequence[Leaf]]) -> LogDifference:
    """The first leaf below ``head_size`` where ``now`` departs from an authenticated reference."""
    for ref in references:
        if len(ref) < head_size or root_of([bytes.fromhex(x.leaf_hash) for x in ref[:head_size]]) != head_root:
            continue
        for i in range(head_size):
            want = ref[i]
            if i >= len(now):
                return LogDifference("missing", f"{want.names()}: the record is missing (the head covers it)", want)
            if now[i].leaf_hash != want.leaf_hash:
                same_place = (now[i].run_id, now[i].seq) == (want.run_id, want.seq)
                what = "the record was changed" if same_place else \
                    f"another record is there now (run {now[i].run_id}, {now[i].table} seq {now[i].seq})"
                return LogDifference("differs", f"{want.names()}: {what}", want)
    if broken is not None and broken.kind != "unlogged":
        return broken
    if len(now) < head_size:
        last = now[-1].names() if now else "no leaf"
        return LogDifference("truncated", f"the log holds {len(now)} leaves, the head covers {head_size}: leaves "
                             f"{len(now)}..{head_size - 1} are missing (the log now ends at {last})")
    return LogDifference("rewritten", f"the first {head_size} leaves no longer hash to the head's root, and no copy "
                         f"of the head's leaves (a head sink) is at hand to name the first that changed")


def inclusion(reader: AuditReader, run_id: str, step: int, tree_size: int) -> list[dict[str, Any]]:
    """The records of ``run_id`` with ``step_no == step``, each with its leaf index, its canonical
    content (which hashes to its ``record_hash``) and its RFC 9162 audit path in the tree of the
    first ``tree_size`` stored leaves. Raises ``LookupError`` when the step has no record in that tree."""
    leaves = leaf_rows(reader.engine)[:tree_size]
    hashes = [bytes.fromhex(x.leaf_hash) for x in leaves]
    where = {(x.run_id, x.seq): x for x in leaves}
    out = []
    for rec in reader.records(run_id):
        if getattr(rec, "step_no", None) != step or (run_id, rec.seq) not in where:
            continue
        leaf = where[(run_id, rec.seq)]
        out.append({"table": rec.__tablename__, "seq": rec.seq, "record_hash": rec.record_hash,
                    "content": canonical_json(record_content(rec)), "leaf_index": leaf.idx,
                    "audit_path": [p.hex() for p in inclusion_proof(hashes, leaf.idx, tree_size)]})
    if not out:
        raise LookupError(f"run {run_id} has no record of step {step} in the log's first {tree_size} leaves")
    return out


__all__ = ["Leaf", "LogCheck", "LogDifference", "check_against", "current_leaves", "inclusion",
           "leaf_rows", "record_leaf", "stored_tree"]
