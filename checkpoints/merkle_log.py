"""The Merkle log over the audit store: one leaf per chained record of every run, in append order.

Leaves (table ``merkle_leaves``: ``idx``, the record's table code and id) are written by the
append path (:class:`chainproof.checkpoints.audit_writer.ChainWriter`) in the transaction of the
records they cover; leaf ``i`` has index ``idx = i``. A leaf's data is the record's identity and
``record_hash`` (:func:`chainproof.checkpoints.log_verifier.leaf_data`); its hash is computed from
the record whenever the log is read (:func:`record_leaf`), never stored in the database. A run
header is covered through its ``run_started`` record, which holds the header's hash. Stores
created before revision 0005 got their records as leaves from that migration, run by run (runs by
``created_at`` then id, each run's records by ``seq``).

A purge (:mod:`chainproof.checkpoints.retention`) deletes a run's records but keeps each one's
leaf data (``purged_leaves``: run, table, seq, ``record_hash``) and its ``merkle_leaves`` row, so
a purged record's leaf hash is computed from the kept data instead, and the log still verifies.

The *stored* log (:func:`stored_leaves`, what a tree head signs) takes each record's stored
``record_hash``; checking the log against a signed tree head (:func:`check_against`) recomputes
every leaf from the record's content (hashed again), proves with an RFC 9162 consistency proof
that the head's tree is a prefix of the current one, and otherwise names the first leaf that
differs or is missing. Naming needs a copy of the leaves the head covers that hashes to the
head's root: a head sink's mirror (:mod:`chainproof.checkpoints.log_heads`) or, when an attacker
left the records' hashes alone, the stored log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _quote
from typing import Any, Literal

from sqlalchemy import Connection, Engine, Select, select, union_all

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints.audit_hashing import canonical_json, record_content, record_hash
from chainproof.checkpoints.audit_read import AuditReader
from chainproof.checkpoints.fast_sql import FastStatement, cursor_of, supported
from chainproof.checkpoints.log_verifier import leaf_data, root_of, verify_consistency
from chainproof.checkpoints.merkle import consistency_proof, inclusion_proof
from chainproof.errors import LogInconsistent

_leaves = t.merkle_leaves
_TABLE_OF_CODE = {code: name for name, code in t.LEAF_TABLE_CODES.items()}
_TABLES = {table.name: table for table in t.CHAINED}


def record_leaf(table: str, run_id: str, seq: int, rec_hash: str) -> str:
    """The hex leaf hash of one record (RFC 9162 ``SHA-256(0x00 || leaf_data)``). The usual case
    (text identity, integer ``seq``) formats the canonical JSON directly, byte for byte what
    :func:`~chainproof.checkpoints.log_verifier.leaf_data` gives (half the time: the log is read
    leaf by leaf whenever a head is signed); any other value takes ``leaf_data`` itself."""
    if type(seq) is int and type(run_id) is str and type(rec_hash) is str and type(table) is str:
        data = (f'{{"hash":{_quote(rec_hash)},"run_id":{_quote(run_id)},"seq":{seq},'
                f'"table":{_quote(table)}}}').encode()
    else:
        data = leaf_data(table, run_id, seq, rec_hash)
    return hashlib.sha256(b"\x00" + data).hexdigest()


@dataclass(frozen=True)
class Leaf:
    """One leaf: its index, hex hash and the record it covers (run, table, seq; ``record_id``, its
    id in the table, when read from the store). ``run_id`` is empty when the record is gone."""

    idx: int
    leaf_hash: str
    run_id: str
    table: str
    seq: int
    record_id: int | None = field(default=None, compare=False)

    def names(self) -> str:
        if not self.run_id:
            return f"leaf {self.idx}: {self.table} id {self.record_id}"
        return f"leaf {self.idx}: run {self.run_id}, {self.table} seq {self.seq}"


def _leaf_refs(engine: Engine) -> list[tuple[int, str, int]]:
    """``(idx, table name, record id)`` of every ``merkle_leaves`` row, by index."""
    c = _leaves.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.idx, c.record_table, c.record_id).order_by(c.idx)).all()
    return [(int(i), _TABLE_OF_CODE.get(code, f"table code {code}"), int(rid)) for i, code, rid in rows]


def _stored_statement() -> Select[Any]:
    """Every leaf whose record exists, or whose record was purged (its kept leaf data, matching
    the leaf's table and record id), with that record's identity and hash, by index."""
    c, kept = _leaves.c, t.purged_leaves.c
    parts = [select(c.idx, c.record_table, c.record_id, table.c.run_id, table.c.seq, table.c.record_hash)
             .join_from(_leaves, table, table.c.id == c.record_id).where(c.record_table == t.LEAF_TABLE_CODES[name])
             for name, table in _TABLES.items()]
    parts.append(select(c.idx, c.record_table, c.record_id, kept.run_id, kept.seq, kept.record_hash)
                 .join_from(_leaves, t.purged_leaves, (kept.idx == c.idx) & (kept.record_table == c.record_table)
                            & (kept.record_id == c.record_id)))
    rows = union_all(*parts).subquery()
    return select(rows).order_by(rows.c.idx)


_STORED = _stored_statement()


def _break_at(conn: Connection, idx: int) -> str | None:
    """Why leaf ``idx`` of the stored log cannot be computed (None: it is past the log's end)."""
    c = _leaves.c
    row = conn.execute(select(c.record_table, c.record_id).where(c.idx == idx)).first()
    if row is not None:
        return f"leaf {idx}: {_TABLE_OF_CODE.get(row[0], f'table code {row[0]}')} id {row[1]}: the record is missing"
    if conn.execute(select(c.idx).where(c.idx > idx).limit(1)).first() is not None:
        return f"leaf {idx} is missing from the store's log"
    return None


def stored_leaves(engine: Engine) -> tuple[list[Leaf], str | None]:
    """The log as stored: every leaf by index, its hash from the record's stored ``record_hash``,
    up to the first leaf that cannot be computed, and what stopped it (None: none did): an index
    missing, or a record gone. O(n): one query (the leaves joined with their records). On
    PostgreSQL both reads share one snapshot (``REPEATABLE READ``): a leaf appended by another
    process between them is past the end, not a record gone (a signer racing workers saw that)."""
    out: list[Leaf] = []
    snapshot = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**snapshot) as conn:
        if supported(engine.dialect):  # the DB-API cursor: half the time of a Core result for 10**5 rows
            rows: Iterable[Any] = FastStatement(_STORED, engine.dialect).rows(cursor_of(conn), {})
        else:
            rows = conn.execute(_STORED)
        for idx, code, rid, run_id, seq, rec_hash in rows:
            if idx != len(out):
                break
            name = _TABLE_OF_CODE[code]
            out.append(Leaf(idx, record_leaf(name, run_id, seq, rec_hash), run_id, name, seq, rid))
        return out, _break_at(conn, len(out))


def leaf_rows(engine: Engine) -> list[Leaf]:
    """The stored log's leaves (:func:`stored_leaves`) up to the first that cannot be computed."""
    return stored_leaves(engine)[0]


def signable_leaves(engine: Engine) -> list[Leaf]:
    """Every leaf of the stored log, for signing a tree head over it. Raises
    :class:`~chainproof.errors.LogInconsistent` (nothing may be signed) when a leaf cannot be
    computed: a leaf index missing or a logged record deleted."""
    leaves, broken = stored_leaves(engine)
    if broken is not None:
        raise LogInconsistent(f"the audit log is broken ({broken}): nothing was signed; run "
                              f"`chainproof verify --against` on a kept head to find what changed")
    return leaves


def stored_tree(engine: Engine) -> tuple[int, bytes]:
    """``(tree size, root)`` of the stored log: what a tree head signs (O(n) hashes). Raises
    :class:`~chainproof.errors.LogInconsistent` as :func:`signable_leaves`."""
    hashes = [bytes.fromhex(row.leaf_hash) for row in signable_leaves(engine)]
    return len(hashes), root_of(hashes)


def _purged_leaves(engine: Engine) -> dict[int, tuple[str, int, str, int, str]]:
    """Leaf index -> ``(table, record id, run id, seq, record_hash)`` of every purged record."""
    kept = t.purged_leaves.c
    with engine.connect() as conn:
        rows = conn.execute(select(kept.idx, kept.record_table, kept.record_id, kept.run_id, kept.seq, kept.record_hash))
        return {int(i): (_TABLE_OF_CODE.get(code, f"table code {code}"), int(rid), run_id, int(seq), h)
                for i, code, rid, run_id, seq, h in rows}


def _all_records(reader: AuditReader) -> dict[tuple[str, int], Any]:
    """Every chained record of the store by ``(table name, id)``."""
    found: dict[tuple[str, int], Any] = {}
    for table in t.CHAINED:
        for rec in reader._records(select(table), table):
            found[(table.name, rec.id)] = rec
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
        where = {"leaf_index": leaf.idx, "run_id": leaf.run_id or None, "table": leaf.table,
                 "seq": leaf.seq if leaf.run_id else None, "record_id": leaf.record_id} if leaf else {}
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
    """The log as the records are now: each leaf recomputed from its record's content, up to the
    first leaf whose record (or index) is missing, which is returned as the difference; a record
    that has no leaf is an ``unlogged`` difference."""
    records = _all_records(reader)
    out: list[Leaf] = []
    covered: set[tuple[str, int]] = set()
    purged = _purged_leaves(reader.engine)
    for expected, (idx, table_name, rid) in enumerate(_leaf_refs(reader.engine)):
        if idx != expected:
            gap = Leaf(expected, "", "", "?", 0)
            return out, LogDifference("missing", f"leaf {expected} is missing from the store's log", gap)
        rec = records.get((table_name, rid))
        kept = purged.get(idx)
        if rec is None and kept is not None and kept[:2] == (table_name, rid):  # a purged record: its kept leaf data
            out.append(Leaf(idx, record_leaf(table_name, kept[2], kept[3], kept[4]), kept[2], table_name, kept[3], rid))
            continue
        if rec is None:
            gone = Leaf(idx, "", "", table_name, 0, rid)
            return out, LogDifference("missing", f"{gone.names()}: the record is missing", gone)
        covered.add((table_name, rid))
        out.append(Leaf(idx, record_leaf(table_name, rec.run_id, rec.seq, record_hash(rec)),
                        rec.run_id, table_name, rec.seq, rid))
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
           "leaf_rows", "record_leaf", "signable_leaves", "stored_leaves", "stored_tree"]
