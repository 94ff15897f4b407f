"""Retention of finished runs, held in the audit store, and purges that keep the log verifiable.

**Retention** (``chainproof retention set``): how long a finished run's records are kept after its
last lifecycle event, as ``N days|months|years``. It is held in the store (``store_settings``,
name ``retention``, versioned; :class:`RetentionStore`), never in a caller's settings, and only an
admin changes it; each change is an ``auth_events`` row ``retention_changed`` (old and new value,
who). The floor is 6 months (:data:`FLOOR`: EU AI Act Art. 19(1) and 26(6) keep logs at least six
months); a shorter or negative value is refused naming ``retention``, as is one over the ceiling
of 100 years (:data:`CEILING_YEARS`). While none is set, nothing is purged.

**Purge** (:func:`plan_purge`, :func:`purge_run`; ``chainproof purge``): deletes the records of a
completed or failed run whose last lifecycle event is older than the retention (or than
``--before``, which may not be later), with its run header and its crash journal rows, in one
transaction that also writes

* a ``purged_leaves`` row per record (run, table, seq, ``record_hash``: the leaf's data), so every
  leaf hash is still computed and ``verify --against`` an earlier head still proves consistency;
  the ``merkle_leaves`` rows stay, so leaf indexes never move;
* the run's tombstone (``purged_runs``): counts, the chain's last ``seq`` and hash, the RFC 9162
  root of its leaves, the retention in force, when and by whom;
* an ``auth_events`` row ``run_purged`` with the same facts (the audit event of the purge).

Never purged: runs that are started, paused or resumed, runs younger than the retention, and runs
whose chain does not verify (a purge keeps hashes only, so it would erase the evidence).
:mod:`chainproof.checkpoints.purge_check` checks what a purge kept.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, delete, func, insert, select, text, union_all
from sqlalchemy.exc import IntegrityError

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints._policy_store import set_store_setting, store_option
from chainproof.checkpoints.audit_read import AuditReader
from chainproof.checkpoints.auth_log import append_auth_event_on, aware
from chainproof.checkpoints.log_verifier import root_of
from chainproof.checkpoints.merkle_log import record_leaf
from chainproof.errors import InputError

Unit = Literal["days", "months", "years"]
_UNITS: dict[str, Unit] = {"d": "days", "day": "days", "days": "days", "month": "months", "months": "months",
                           "y": "years", "year": "years", "years": "years"}
FLOOR_DAYS = 184
"""The floor in days: the longest span of six calendar months (1 July to 1 January)."""
CEILING_YEARS = 100
"""The ceiling: 100 years (:data:`CEILING_DAYS` days); longer is refused as too large (no record
rule asks for more, and dates that far out leave the calendar's range)."""
CEILING_DAYS = 36_525
FINISHED = ("completed", "failed")
_ATTEMPTS = 5  # PostgreSQL: two auth-event writers may pick one seq; the loser's transaction is retried


def _shift(at: datetime, months: int) -> datetime:
    """``at`` moved by ``months`` calendar months (the day clamped to the target month's length)."""
    y, m = divmod(at.year * 12 + at.month - 1 + months, 12)
    return at.replace(year=y, month=m + 1, day=min(at.day, calendar.monthrange(y, m + 1)[1]))


@dataclass(frozen=True)
class Retention:
    """``amount`` ``unit`` (days, months or years), at least :data:`FLOOR`."""

    amount: int
    unit: Unit

    @classmethod
    def parse(cls, value: str) -> Retention:
        """``'6 months'``, ``'7 years'``, ``'400 days'`` (``d`` and ``y`` abbreviate; a bare ``m``
        could mean minutes, so months are spelt out). Raises ``InputError`` naming ``retention``
        for anything else, for a negative amount or less than 6 months (the floor), and for more
        than 100 years (the ceiling, "too large")."""
        found = re.fullmatch(r"\s*([-+]?)\s*(\d+)\s*([a-z]+)\s*", value.lower()[:200])
        unit = _UNITS.get(found.group(3)) if found else None
        if found is None or unit is None:
            raise InputError(f"retention: expected N days|months|years (e.g. '6 months', '7 years'), got {value!r}")
        digits = found.group(2).lstrip("0") or "0"
        if found.group(1) == "-" and digits != "0":
            raise InputError(f"retention: a negative retention is not allowed, got {value.strip()!r}; "
                             f"at least 6 months ({FLOOR_DAYS} days; EU AI Act Art. 19(1) and 26(6) keep logs at "
                             "least six months)")
        if len(digits) > 6:  # more than 999,999 of any unit is over the ceiling; int() not asked for 4,300 digits
            raise InputError(f"retention: too large, got {value.strip()[:40]!r}; at most {CEILING_YEARS} years "
                             f"({CEILING_DAYS:,} days)")
        return cls(int(digits), unit).checked()

    def checked(self) -> Retention:
        """This retention, or ``InputError`` naming ``retention`` and the floor when shorter or the
        ceiling when longer."""
        months = self.amount * 12 if self.unit == "years" else self.amount if self.unit == "months" else None
        if (months is not None and months < 6) or (months is None and self.amount < FLOOR_DAYS):
            raise InputError(f"retention: at least 6 months ({FLOOR_DAYS} days; EU AI Act Art. 19(1) and 26(6) keep "
                             f"logs at least six months), got {self}")
        if (months is not None and months > CEILING_YEARS * 12) or (months is None and self.amount > CEILING_DAYS):
            raise InputError(f"retention: too large, got {self}; at most {CEILING_YEARS} years ({CEILING_DAYS:,} days)")
        return self

    def cutoff(self, now: datetime) -> datetime:
        """The time before which a run must have ended to be purged at ``now``."""
        return self.after(now, -1)

    def after(self, at: datetime, sign: int = 1) -> datetime:
        """``at`` plus (``sign=-1``: minus) this retention."""
        if self.unit == "days":
            return at + sign * timedelta(days=self.amount)
        return _shift(at, sign * self.amount * (12 if self.unit == "years" else 1))

    def as_dict(self) -> dict[str, Any]:
        return {"amount": self.amount, "unit": self.unit}

    def __str__(self) -> str:
        return f"{self.amount} {self.unit[:-1] if self.amount == 1 else self.unit}"


FLOOR = Retention(6, "months")


@dataclass(frozen=True)
class StoredRetention:
    """The retention in force: version, when and by whom it was set."""

    retention: Retention
    version: int
    created_at: datetime
    created_by: str


class RetentionStore:
    """The store-held retention on ``engine`` (see the module docstring)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def current(self) -> StoredRetention | None:
        """The newest version, or None when no retention was ever set."""
        value, row = store_option(self.engine, "retention")
        if row is None:
            return None
        return StoredRetention(Retention(int(value["amount"]), value["unit"]), row.version, row.created_at, row.created_by)

    def set(self, retention: Retention, *, actor: str) -> StoredRetention | None:
        """Store ``retention`` (checked against the floor) as the next version and record a
        ``retention_changed`` auth event naming ``actor``, in one transaction; None (nothing
        written) when it equals the one in force."""
        retention.checked()
        new = retention.as_dict()
        written = set_store_setting(self.engine, "retention", new, actor=actor, event="retention_changed",
                                    detail=lambda old: {"old": old, "new": new})
        return self.current() if written is not None else None


@dataclass(frozen=True)
class Candidate:
    """A run a purge considered: ``kept`` says why it is not purged (None: it is purged)."""

    run_id: str
    graph: str
    status: str | None
    created_at: datetime
    ended_at: datetime | None
    records: int
    kept: str | None = None


def _counts(reader: AuditReader) -> dict[str, int]:
    parts = [select(tb.c.run_id, func.count().label("n")).group_by(tb.c.run_id) for tb in t.CHAINED]
    rows = union_all(*parts).subquery()
    with reader.engine.connect() as conn:
        return {r: int(n) for r, n in conn.execute(select(rows.c.run_id, func.sum(rows.c.n)).group_by(rows.c.run_id))}


def plan_purge(reader: AuditReader, retention: Retention, *, now: datetime, before: datetime | None = None,
               run_ids: list[str] | None = None) -> list[Candidate]:
    """Every run (or ``run_ids``), oldest first, each with why it is kept or None when a purge at
    ``now`` deletes it. ``before``: purge only runs that ended before it; ``InputError`` naming
    ``--before`` when it is later than the retention allows, and naming ``--run`` for a given run
    that is unknown or is kept."""
    from chainproof.checkpoints.verify import verify_run

    cutoff = retention.cutoff(now)
    if before is not None and before > cutoff:
        raise InputError(f"--before {before:%Y-%m-%d}: later than the retention of {retention} allows; runs that "
                         f"ended before {cutoff:%Y-%m-%d %H:%M} UTC may be purged now")
    limit = before or cutoff
    counts = _counts(reader)
    listed = sorted(reader.list_runs(limit=2**31 - 1), key=lambda row: (aware(row[0].created_at), row[0].run_id))
    known = {run.run_id for run, _, _ in listed}
    for wanted in run_ids or []:
        if wanted not in known:
            raise InputError(f"--run {wanted}: no such run in the audit store (a purged run is purged once)")
    out = []
    for run, status, at in listed:
        if run_ids is not None and run.run_id not in run_ids:
            continue
        ended = aware(at) if at is not None else None
        kept = None
        if status not in FINISHED:
            kept = f"{status or 'no status'}: only completed or failed runs are purged"
        elif ended is None or ended >= limit:
            kept = (f"ended {ended:%Y-%m-%d}, within the retention of {retention} (purgeable from "
                    f"{retention.after(ended):%Y-%m-%d})" if ended is not None and ended >= cutoff
                    else f"ended {ended:%Y-%m-%d}, not before --before {limit:%Y-%m-%d}")
        else:
            checked = verify_run(reader, run.run_id)
            if not checked.ok and checked.broken is not None:
                kept = f"its chain does not verify ({checked.broken.kind}: {checked.broken.detail}); investigate first"
        out.append(Candidate(run.run_id, run.graph, status, aware(run.created_at), ended,
                             counts.get(run.run_id, 0), kept))
    for c in out:
        if run_ids is not None and c.kept is not None:
            raise InputError(f"--run {c.run_id}: not purged: {c.kept}")
    return out


def _leaves_of(conn: Any, run_id: str) -> list[dict[str, Any]]:
    """The leaf data of every record of ``run_id``, by leaf index."""
    ml = t.merkle_leaves.c
    parts = [select(ml.idx, ml.record_table, ml.record_id, tb.c.seq, tb.c.record_hash)
             .join_from(t.merkle_leaves, tb, (tb.c.id == ml.record_id) & (ml.record_table == t.LEAF_TABLE_CODES[tb.name]))
             .where(tb.c.run_id == run_id) for tb in t.CHAINED]
    rows = union_all(*parts).subquery()
    return [{"idx": int(i), "record_table": int(code), "record_id": int(rid), "run_id": run_id, "seq": int(seq),
             "record_hash": h} for i, code, rid, seq, h in conn.execute(select(rows).order_by(rows.c.idx))]


def purge_run(engine: Engine, candidate: Candidate, retention: Retention, *, actor: str,
              before: datetime | None = None) -> dict[str, Any]:
    """Purge one run :func:`plan_purge` cleared (see the module docstring); returns its tombstone
    as a dict. Raises ``InputError`` naming the run when it changed since it was planned (resumed,
    a record added) or its records are not all in the log: nothing is then deleted."""
    run_id = candidate.run_id
    tables = {code: name for name, code in t.LEAF_TABLE_CODES.items()}
    for attempt in range(_ATTEMPTS):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":  # the lock every append to the run takes
                    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:r))"), {"r": run_id})
                e = t.events.c
                status = conn.scalar(select(e.kind).where(e.run_id == run_id, e.kind.startswith("run_"))
                                     .order_by(e.seq.desc()).limit(1))
                leaves = _leaves_of(conn, run_id)
                if status != f"run_{candidate.status}" or len(leaves) != candidate.records or not leaves:
                    raise InputError(f"run {run_id}: changed while it was being purged, or not every record of it "
                                     f"is in the Merkle log ({len(leaves)} leaves, {candidate.records} records); "
                                     "nothing was purged")
                head = max(leaves, key=lambda x: x["seq"])
                hashes = [bytes.fromhex(record_leaf(tables[x["record_table"]], run_id, x["seq"], x["record_hash"]))
                          for x in leaves]
                stone = {"run_id": run_id, "graph": candidate.graph, "status": candidate.status,
                         "run_created_at": candidate.created_at, "ended_at": candidate.ended_at,
                         "records": len(leaves), "head_seq": head["seq"], "head_hash": head["record_hash"],
                         "leaves_root": root_of(hashes).hex(), "retention": retention.as_dict(),
                         "purged_at": datetime.now(UTC), "purged_by": actor}
                conn.execute(insert(t.purged_leaves), leaves)
                for table in (*t.CHAINED, t.effect_journal):
                    conn.execute(delete(table).where(table.c.run_id == run_id))
                conn.execute(delete(t.runs).where(t.runs.c.run_id == run_id))
                conn.execute(insert(t.purged_runs).values(**stone))
                detail = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in stone.items()
                          if k not in ("purged_by", "purged_at")}
                append_auth_event_on(conn, "run_purged", actor=actor, detail={
                    **detail, "first_leaf": leaves[0]["idx"], "last_leaf": leaves[-1]["idx"],
                    "before": before.isoformat() if before else None})
            return stone
        except IntegrityError:
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["FLOOR", "FLOOR_DAYS", "Candidate", "Retention", "RetentionStore", "StoredRetention", "plan_purge",
           "purge_run"]
