"""Verify a run's hash chain: recompute every record's hash and every link, name the first break.

A run's chained records (all tables) form one sequence ``seq = 1, 2, …``; each stores
``prev_hash`` (its predecessor's ``record_hash``, ``GENESIS`` for the first) and ``record_hash``
(SHA-256 of its canonical content, :func:`chainproof.checkpoints.audit_hashing.record_hash`). The first
record, the ``run_started`` event, also holds the hash of the run header (``runs`` row).

Walking the records in ``seq`` order, the first break is classified as:

* ``edited``: a record's content no longer hashes to its ``record_hash`` (its link to the record
  before it is intact); or its hash was recomputed after the edit, so its successor's
  ``prev_hash`` no longer matches it.
* ``reordered``: a record's ``seq`` was changed: its content hashes correctly again once ``seq``
  is set to the position its ``prev_hash`` link names.
* ``deleted``: ``seq`` numbers are missing (a gap), or the chain starts after 1.
* ``inserted``: a record that does not belong to the chain: a second record with a ``seq`` already
  taken, or a record that neither hashes correctly nor links to the record before it.
* ``header-edited``: the ``runs`` row no longer hashes to what the ``run_started`` event recorded.
* ``signature``: a decision whose Ed25519 signature does not verify with the approver's
  registered key, whose signed fields differ from the record, or that is unsigned while the run's
  approval policy requires a signature (``checkpoints/_approver_keys.py``). Checked even when the
  chain is intact: a forger who rewrites the chain cannot sign without the approver's key.
* ``policy``: the run's recorded approval policy cannot be trusted: its ``run_started`` copy does
  not hash to the recorded ``policy_hash``, or names a stored version that is missing, not
  countersigned by a trusted operator key or of another hash, or claims a non-store policy while
  the store held one; or an approval pause (``run_paused``) names another policy hash
  (``checkpoints/_bound_policy.py``). Decisions are then checked against the stored version, so an
  unsigned decision under a stored policy requiring signatures is a ``signature`` break even when
  the copy was loosened and the chain rehashed.
* ``correction``: a correction (``record_corrected`` event, ``checkpoints/corrections.py``) that
  does not name an earlier step record of its run by that record's ``seq`` and ``record_hash``.
* ``purged``: a purged run (``chainproof purge``) whose tombstone, kept leaves or ``run_purged``
  event no longer agree (``checkpoints/purge_check.py``). An intact purged run verifies as
  "purged (N records, leaves kept)": its records are gone by design, not by tampering.
* ``undecodable``: a record (or the run header) holds a value its column cannot hold (invalid
  JSON, a timestamp that is no timestamp, text in ``seq``): only an edit outside Chainproof
  writes one. Named before any other break, with the column and the raw value; the run's other
  records, and other runs, are still read and checked.

Limits (inherent to a hash chain kept in the same database): records cut off the *end* of a
chain, or a whole chain rewritten with fresh hashes, leave a valid chain. Keep the head hash
(:attr:`VerifyResult.head_hash`, printed by ``verify`` and in every export) somewhere else to
detect that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Literal

from chainproof.checkpoints.audit_hashing import record_content, record_hash, run_header_hash, sha256_hex
from chainproof.checkpoints.audit_read import AuditReader, Record, seq_order
from chainproof.checkpoints.audit_tables import GENESIS

BreakKind = Literal["edited", "reordered", "deleted", "inserted", "header-edited", "fork-link", "undecodable",
                    "signature", "orphan", "correction", "purged", "policy"]


@dataclass(frozen=True)
class BrokenLink:
    """The first place a chain fails: ``table``/``seq``/``record_id`` name the record (for
    ``deleted``, the record after the gap), ``kind`` says what happened, ``detail`` explains it."""

    kind: BreakKind
    table: str
    seq: int | None
    record_id: int | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "seq": self.seq, "id": self.record_id, "detail": self.detail}


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_run`. ``records``: chained records checked; ``head_seq`` /
    ``head_hash``: the last record's ``seq`` and ``record_hash`` (keep them to detect truncation)."""

    run_id: str
    records: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    broken: BrokenLink | None = None
    notes: list[str] = field(default_factory=list)
    purged: dict[str, Any] | None = None  # the tombstone of a purged run

    @property
    def ok(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "ok": self.ok, "records": self.records, "head_seq": self.head_seq,
                "head_hash": self.head_hash, "broken": self.broken.as_dict() if self.broken else None,
                "notes": self.notes, "purged": _jsonable(self.purged)}


def _link(kind: BreakKind, row: Record, detail: str) -> BrokenLink:
    seq = row.seq if isinstance(row.seq, int) else None
    return BrokenLink(kind, type(row).__tablename__, seq, row.id if isinstance(row.id, int) else None, detail)


def _undecodable(row: Any) -> str | None:
    """``column: why`` for each value of ``row`` its column cannot hold, or None."""
    found = row.undecodable
    return "; ".join(f"{column}: {why}" for column, why in found.items()) if found else None


def _original_seq(row: Record, max_seq: int) -> int | None:
    """The ``seq`` at which ``row``'s content hashes to its ``record_hash`` (None when none does)."""
    content = record_content(row)
    for seq in range(1, max_seq + 2):
        if sha256_hex({**content, "seq": seq}) == row.record_hash:
            return seq
    return None


def _genuine(rows: list[Record], prev: str, successor_prev: str | None) -> Record | None:
    """Among records sharing one ``seq``, the one that belongs to the chain: it links to ``prev``,
    hashes correctly, and (when there is a successor) is the one the successor links to."""
    fitting = [r for r in rows if r.prev_hash == prev and record_hash(r) == r.record_hash]
    if successor_prev is not None:
        named = [r for r in fitting if r.record_hash == successor_prev]
        fitting = named or fitting
    return fitting[0] if fitting else None


def check_chain(rows: list[Record]) -> BrokenLink | None:
    """The first broken link of one run's chained records (any order), or None when intact."""
    ordered = sorted(rows, key=seq_order)
    for row in ordered:
        problem = _undecodable(row)
        if problem:
            return _link("undecodable", row, f"edited outside Chainproof: {problem}")
    groups = [list(g) for _, g in groupby(ordered, key=lambda r: r.seq)]
    max_seq = ordered[-1].seq if ordered else 0
    prev, expected, last = GENESIS, 1, None
    for i, group in enumerate(groups):
        successor_prev = groups[i + 1][0].prev_hash if i + 1 < len(groups) else None
        if len(group) > 1:
            keep = _genuine(group, prev, successor_prev)
            intruder = next(r for r in group if r is not keep)
            return _link("inserted", intruder, f"a second record with seq {intruder.seq}; it is not part of the chain")
        row = group[0]
        if record_hash(row) != row.record_hash:
            original = _original_seq(row, max_seq)
            if original is not None:
                return _link("reordered", row, f"recorded at seq {original}, now at seq {row.seq}")
            if row.prev_hash == prev:
                return _link("edited", row, "its content no longer matches its record_hash")
            return _link("inserted", row, "neither its hash nor its prev_hash fits the chain")
        if row.seq > expected:
            missing = f"seq {expected}" if row.seq == expected + 1 else f"seq {expected}..{row.seq - 1}"
            return _link("deleted", row, f"{missing} missing before this record")
        if row.prev_hash != prev:
            if last is None or successor_prev is None:
                return _link("inserted", row, "its prev_hash does not link to the record before it")
            return _link("edited", last, "its record_hash was rewritten: the next record links to another hash")
        prev, expected, last = row.record_hash, row.seq + 1, row
    return None


def _check_header(store: AuditReader, run_id: str, first: Record | None) -> tuple[BrokenLink | None, str | None]:
    run = store.get_run(run_id)
    if run is None:
        return BrokenLink("deleted", "runs", None, None, f"the run header of {run_id} is missing"), None
    problem = _undecodable(run)
    if problem:
        return BrokenLink("undecodable", "runs", None, None, f"the run header was edited outside Chainproof: "
                          f"{problem}"), None
    if first is None:
        return BrokenLink("orphan", "runs", None, None,
                          f"run {run_id} has a header and no records, not even run_started (a process stopped while "
                          "starting it, before run headers and run_started were written together); "
                          f"`chainproof resume {run_id}` marks it abandoned"), None
    if first.__tablename__ != "events" or first.kind != "run_started":
        return None, "the chain does not start with run_started; the run header is not covered"
    recorded = (first.detail or {}).get("run_header_hash")
    if recorded is None:
        return None, "written before run headers were hashed; the run header is not covered"
    if run_header_hash(run) != recorded:
        return BrokenLink("header-edited", "runs", None, None,
                          "the runs row no longer matches the hash in its run_started event"), None
    return None, None


def verify_run(store: AuditReader, run_id: str) -> VerifyResult:
    """Recompute ``run_id``'s chain and run header; for a purged run, check what the purge kept
    (:attr:`VerifyResult.purged` holds its tombstone). Raises ``LookupError`` for an unknown run
    (no header, no records, never purged)."""
    rows = store.records(run_id)
    if not rows and store.get_run(run_id) is None:
        purged = _verify_purged(store, run_id)
        if purged is None:
            raise LookupError(f"no run {run_id!r} in the audit store")
        return purged
    result = VerifyResult(run_id, records=len(rows))
    chained = [r for r in rows if isinstance(r.seq, int)]
    if chained:
        head = max(chained, key=seq_order)
        result.head_seq, result.head_hash = head.seq, head.record_hash
    result.broken = check_chain(rows)
    first = min(rows, key=seq_order) if rows else None
    header_break, note = _check_header(store, run_id, first)
    result.broken = result.broken or header_break
    if note:
        result.notes.append(note)
    fork_break, note = _check_fork_link(store, run_id, rows)
    policy_break, required = _check_policy(store, run_id, rows)
    result.broken = (result.broken or fork_break or policy_break or _check_signatures(store, rows, required)
                     or _check_corrections(rows))
    if note:
        result.notes.append(note)
    return result


def _check_fork_link(store: AuditReader, run_id: str, rows: list[Any]) -> tuple[BrokenLink | None, str | None]:
    """For a fork: its ``run_started`` event names the parent's record it continues from
    (``fork.parent_record_hash``); that record must still be in the parent's chain. A parent that
    is not in this store is noted, not failed (it may live in another store)."""
    run = store.get_run(run_id)
    if run is None or not run.parent_run_id:
        return None, None
    started = next((r for r in rows if r.__tablename__ == "events" and r.kind == "run_started"), None)
    link = ((started.detail or {}).get("fork") or {}) if started is not None else {}
    wanted = link.get("parent_record_hash")
    if store.get_run(run.parent_run_id) is None:
        from chainproof.checkpoints.purge_check import kept_hashes

        if wanted and wanted in kept_hashes(store, run.parent_run_id):
            return None, f"fork of run {run.parent_run_id} (purged) after its step {run.forked_at_step}: link " \
                         "verified against the parent's kept leaves"
        return None, f"fork of run {run.parent_run_id}, which is not in this store: the link was not checked"
    if wanted and any(r.record_hash == wanted for r in store.records(run.parent_run_id)):
        return None, f"fork of run {run.parent_run_id} after its step {run.forked_at_step}: link verified"
    return BrokenLink("fork-link", "runs", None, None,
                      f"the parent run {run.parent_run_id} no longer holds the record this fork continues from "
                      f"({str(wanted)[:12]}…)"), None


def _check_policy(store: AuditReader, run_id: str, rows: list[Any]) -> tuple[BrokenLink | None, bool | None]:
    """``(break, require_signature)``: the first problem of the run's approval policy
    (``checkpoints/_bound_policy.py``; an approval pause naming another policy hash), and whether
    the trusted policy requires signatures (None: no trusted policy, the copy decides)."""
    from chainproof.checkpoints._bound_policy import bound_policy

    run = store.get_run(run_id)
    started = next((r for r in rows if r.__tablename__ == "events" and r.kind == "run_started"), None)
    if run is None or started is None or started.undecodable or (started.detail or {}).get("recovered") == "orphan":
        return None, None
    policy, problem = bound_policy(store.engine, run.graph, started)
    if problem is not None:
        return _link("policy", started, problem), None
    bound = ((started.detail or {}).get("approval_policy_version") or {}).get("policy_hash")
    for row in rows:
        named = (row.detail or {}).get("approval_policy") if row.__tablename__ == "events" and row.kind == "run_paused" \
            and isinstance(row.detail, dict) else None
        if isinstance(named, dict) and bound is not None and named.get("policy_hash") != bound:
            return _link("policy", row, f"the approval pause names policy {str(named.get('policy_hash'))[:12]}…, not the "
                                        f"{bound[:12]}… the run was bound to"), None
    return None, policy.require_signature if policy is not None else None


def _check_signatures(store: AuditReader, rows: list[Any], trusted_required: bool | None = None) -> BrokenLink | None:
    """The first decision of ``rows`` whose signature fails (:func:`decision_problem`); unsigned
    decisions fail when the trusted policy (``trusted_required``), else the recorded copy, requires signatures."""
    from chainproof.checkpoints._approver_keys import ApproverKeys, decision_problem

    decisions = [r for r in rows if r.__tablename__ == "approvals" and r.action in ("approve", "reject", "edit")
                 and not r.undecodable]
    if not decisions:
        return None
    started = next((r for r in rows if r.__tablename__ == "events" and r.kind == "run_started"), None)
    policy = ((started.detail or {}).get("approval_policy") or {}) if started is not None else {}
    required = isinstance(policy, dict) and policy.get("require_signature") is True
    if trusted_required is not None:
        required = trusted_required or required
    keys = ApproverKeys(store.engine)
    for row in sorted(decisions, key=seq_order):
        sig = row.signature if isinstance(row.signature, dict) else {}
        key = keys.get(sig["key_id"], trusted_only=True) if isinstance(sig.get("key_id"), str) else None
        problem = decision_problem(row, key, required)
        if problem is not None:
            return _link("signature", row, f"decision {row.action} by {row.approver!r} on request {row.request_id} of "
                                           f"run {row.run_id}: {problem}")
    return None


def _jsonable(stone: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in stone.items()} if stone else None


def _check_corrections(rows: list[Any]) -> BrokenLink | None:
    from chainproof.checkpoints.corrections import correction_problem

    found = correction_problem(rows)
    return _link("correction", found[0], found[1]) if found else None


def _verify_purged(store: AuditReader, run_id: str) -> VerifyResult | None:
    """The result of a purged run (None: it was never purged): its tombstone's counts and head,
    and the first problem of what the purge kept (``checkpoints/purge_check.py``)."""
    from chainproof.checkpoints.purge_check import purged_problems

    stone, problems = purged_problems(store, run_id)
    if stone is None and not problems:
        return None
    result = VerifyResult(run_id, purged=stone)
    if stone is not None:
        result.records, result.head_seq, result.head_hash = stone["records"], stone["head_seq"], stone["head_hash"]
    if problems:
        result.broken = BrokenLink("purged", "purged_runs", None, None, problems[0])
        result.notes.extend(problems[1:])
    return result


def verify_all(store: AuditReader) -> list[VerifyResult]:
    """:func:`verify_run` for every run in the store, oldest first, then every purged run."""
    from chainproof.checkpoints.purge_check import purged_run_ids

    ids = store.run_ids()
    return [verify_run(store, run_id) for run_id in ids + [r for r in purged_run_ids(store) if r not in set(ids)]]


__all__ = ["BrokenLink", "VerifyResult", "check_chain", "verify_all", "verify_run"]
