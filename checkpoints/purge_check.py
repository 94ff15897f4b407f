"""Checking what a purge kept: a purged run's tombstone against its kept leaves and its audit event.

A purge (:mod:`chainproof.checkpoints.retention`) deletes a run's records and keeps, per record,
its leaf data (``purged_leaves``), plus a tombstone (``purged_runs``) and an ``auth_events`` row
``run_purged`` with the same facts. :func:`purged_problems` checks one run:

* kept leaves without a tombstone (the tombstone was deleted), or a tombstone whose counts, seqs
  ``1..N``, last hash or leaves root no longer match the kept leaves (a kept leaf deleted or edited);
* a kept leaf whose ``merkle_leaves`` row is gone or names another record;
* records or a run header of the purged run back in the store;
* no ``run_purged`` event for it, or one that says something else than the tombstone.

Editing a kept leaf's hash also changes the Merkle log: ``verify --against`` an earlier head names
it. Deleting the tombstone *and* its event breaks the ``auth_events`` hash chain.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints.audit_read import AuditReader
from chainproof.checkpoints.auth_log import aware
from chainproof.checkpoints.log_verifier import root_of
from chainproof.checkpoints.merkle_log import record_leaf

_TABLE_OF_CODE = {code: name for name, code in t.LEAF_TABLE_CODES.items()}
_COMPARED = ("records", "head_seq", "head_hash", "leaves_root")


def tombstone(reader: AuditReader, run_id: str) -> dict[str, Any] | None:
    """The tombstone of ``run_id`` (a ``purged_runs`` row as a dict), or None."""
    with reader.engine.connect() as conn:
        row = conn.execute(select(t.purged_runs).where(t.purged_runs.c.run_id == run_id)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    for key in ("run_created_at", "ended_at", "purged_at"):
        out[key] = aware(out[key])
    return out


def _purge_events(conn: Connection) -> dict[str, dict[str, Any]]:
    """run id -> the detail of its ``run_purged`` auth event."""
    e = t.auth_events.c
    return {d["run_id"]: d for (d,) in conn.execute(select(e.detail).where(e.kind == "run_purged").order_by(e.seq))
            if isinstance(d, dict) and isinstance(d.get("run_id"), str)}


def purged_run_ids(reader: AuditReader) -> list[str]:
    """Every run with a tombstone, kept leaves or a ``run_purged`` event, by purge time, then the
    others by id."""
    with reader.engine.connect() as conn:
        stones = list(conn.scalars(select(t.purged_runs.c.run_id).order_by(t.purged_runs.c.purged_at)))
        others = set(conn.scalars(select(t.purged_leaves.c.run_id).distinct())) | set(_purge_events(conn))
    return stones + sorted(others - set(stones))


def kept_hashes(reader: AuditReader, run_id: str) -> set[str]:
    """The ``record_hash`` of every kept (purged) record of ``run_id``."""
    with reader.engine.connect() as conn:
        return set(conn.scalars(select(t.purged_leaves.c.record_hash).where(t.purged_leaves.c.run_id == run_id)))


def purged_problems(reader: AuditReader, run_id: str) -> tuple[dict[str, Any] | None, list[str]]:
    """``(tombstone, problems)`` of ``run_id`` (checks in the module docstring); ``(None, [])``
    when the run was never purged."""
    stone = tombstone(reader, run_id)
    pl, ml = t.purged_leaves.c, t.merkle_leaves.c
    with reader.engine.connect() as conn:
        kept = [dict(r._mapping) for r in conn.execute(
            select(t.purged_leaves, ml.record_table.label("logged_table"), ml.record_id.label("logged_id"))
            .join_from(t.purged_leaves, t.merkle_leaves, ml.idx == pl.idx, isouter=True)
            .where(pl.run_id == run_id).order_by(pl.idx))]
        event = _purge_events(conn).get(run_id)
        back = sum(conn.scalar(select(func.count()).select_from(tb).where(tb.c.run_id == run_id)) or 0
                   for tb in (t.runs, *t.CHAINED))
    if stone is None and not kept and event is None:
        return None, []
    problems: list[str] = []
    if stone is None:
        problems.append(f"{len(kept)} leaves of run {run_id} are kept as purged"
                        f"{' and the auth log records its purge' if event else ''}, but its tombstone "
                        "(purged_runs) is missing")
    for leaf in kept:
        if (leaf["logged_table"], leaf["logged_id"]) != (leaf["record_table"], leaf["record_id"]):
            problems.append(f"leaf {leaf['idx']} is kept as purged ({_TABLE_OF_CODE.get(leaf['record_table'])} seq "
                            f"{leaf['seq']}) but the log's leaf {leaf['idx']} is missing or names another record")
            break
    if stone is not None:
        seqs = sorted(x["seq"] for x in kept)
        if len(kept) != stone["records"]:
            problems.append(f"the tombstone counts {stone['records']} purged records, {len(kept)} leaves are kept "
                            "(a kept leaf was deleted or added)")
        elif seqs != list(range(1, len(kept) + 1)):
            problems.append(f"the kept leaves' seqs are not 1..{len(kept)}")
        else:
            last = max(kept, key=lambda x: x["seq"])
            hashes = [bytes.fromhex(record_leaf(_TABLE_OF_CODE.get(x["record_table"], "?"), run_id, x["seq"],
                                                x["record_hash"])) for x in kept]
            if last["record_hash"] != stone["head_hash"] or last["seq"] != stone["head_seq"]:
                problems.append(f"the tombstone's last chain hash {stone['head_hash'][:12]}… is not the kept leaf of "
                                f"seq {last['seq']} ({last['record_hash'][:12]}…)")
            elif root_of(hashes).hex() != stone["leaves_root"]:
                problems.append("the kept leaves no longer hash to the tombstone's leaves root (a kept leaf was edited)")
        if event is None:
            problems.append(f"the purge of run {run_id} is not in the auth log (no run_purged event)")
        elif any(event.get(k) != stone[k] for k in _COMPARED):
            diff = next(k for k in _COMPARED if event.get(k) != stone[k])
            problems.append(f"the tombstone's {diff} ({stone[diff]}) differs from its run_purged event's "
                            f"({event.get(diff)})")
    if back:
        problems.append(f"{back} records or a run header of the purged run {run_id} are in the store again")
    return stone, problems


def store_purge_problems(reader: AuditReader) -> list[str]:
    """The problems of every purged run of the store (:func:`purged_problems`), each naming its run."""
    out = []
    for run_id in purged_run_ids(reader):
        out += [f"run {run_id}: {p}" for p in purged_problems(reader, run_id)[1]]
    return out


__all__ = ["kept_hashes", "purged_problems", "purged_run_ids", "store_purge_problems", "tombstone"]
