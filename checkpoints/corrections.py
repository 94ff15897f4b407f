"""Corrections: appended records that correct a field of a recorded step; nothing is updated in place.

A correction is an ``events`` record of kind ``record_corrected`` in the corrected run's chain
(hashed, chained and a Merkle leaf like any record), whose ``detail`` is::

    {"corrects": {"table": "steps", "seq": N, "record_hash": H, "step_no": S, "node": NODE},
     "field": "output.summary", "original": <the value in the record>, "value": <the correction>,
     "reason": TEXT, "by": USERNAME, "account": {account_id, username, via, credential_id, roles}}

It names the corrected record by its ``seq`` and ``record_hash`` (the step's last execution),
keeps the prior contents (``original``; the record itself stays as written), says why and who.
``show`` displays the corrected value with a mark and the original, exports carry both, ``verify``
checks that each correction names an earlier record of its run with that hash
(:func:`correction_problem`), and ``replay`` ignores it (events are not replayed; the original
is). MiFID II Delegated Regulation 2017/565 Art. 72(1)(b) and SEC Rule 17a-4(f)(2)(i)(A): changes
recorded with the prior contents, when and by whom.

Who may correct: a signed-in account with the ``admin`` or ``approver`` role (:data:`CORRECTORS`).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chainproof.errors import InputError, NotPermitted, RunPurged

KIND = "record_corrected"
CORRECTORS = ("admin", "approver")
CORRECTABLE = ("title", "status", "effort", "effort_reason", "model", "inputs", "output", "input_tokens",
               "cached_input_tokens", "output_tokens", "reasoning_tokens", "cost_usd")
"""Columns of a step that may be corrected; ``inputs`` and ``output`` also by a dotted path inside."""
MARK = "✎"
TEXT_COLUMNS = {"title": (300, False), "effort_reason": (300, True), "model": (200, True)}
"""Text columns: ``(most characters, may be null)``, as ``steps`` declares them."""
CHOICES = {"status": ("ok", "error"), "effort": ("low", "medium", "high", None)}
"""Columns holding one of a few values (None: null)."""
COUNTS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens")
"""Token counts: whole numbers >= 0."""


def parse_value(raw: str, field: str = "") -> Any:
    """``--value``: for a text column of ``field`` (title, status, effort, effort_reason, model)
    the text itself (``null`` is null); otherwise JSON when it parses (``42``, ``true``,
    ``{"a": 1}``), else the text itself."""
    if field in TEXT_COLUMNS or field in CHOICES:
        return None if raw == "null" else raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _path(field: str) -> list[str]:
    parts = field.split(".")
    if parts[0] not in CORRECTABLE or any(not p for p in parts) or (len(parts) > 1 and parts[0] not in ("inputs", "output")):
        raise InputError(f"--field {field!r}: expected one of {', '.join(CORRECTABLE)}, or inputs.KEY / output.KEY "
                         "(a dotted path into the step's inputs or output)")
    return parts


def field_value(step: Any, field: str) -> Any:
    """The value of ``field`` (a column or a dotted path) in ``step``; ``InputError`` naming
    ``--field`` and the keys there are when the path is not in the record."""
    parts = _path(field)
    value = getattr(step, parts[0])
    for i, key in enumerate(parts[1:], start=1):
        if not isinstance(value, dict) or key not in value:
            where = ".".join(parts[:i])
            keys = ", ".join(sorted(map(str, value))) if isinstance(value, dict) else f"a {type(value).__name__}"
            raise InputError(f"--field {field!r}: step {step.step_no} has no {key!r} in {where} (there: {keys})")
        value = value[key]
    return value


def check_value(field: str, value: Any) -> None:
    """Refuse ``value`` for column ``field`` when the column cannot hold it: ``InputError`` naming
    ``--field`` and what it expects (a dotted path into ``inputs``/``output`` takes any JSON value)."""
    def refuse(expected: str) -> None:
        shown = json.dumps(value, ensure_ascii=False, default=str)[:80]
        raise InputError(f"--value {shown}: --field {field} expects {expected}")

    if field in CHOICES:
        allowed = CHOICES[field]
        if value not in allowed or isinstance(value, bool):
            refuse("one of " + ", ".join("null" if a is None else a for a in allowed))
    elif field in TEXT_COLUMNS:
        most, nullable = TEXT_COLUMNS[field]
        if value is None and nullable:
            return
        if not isinstance(value, str) or not value.strip() or len(value) > most:
            refuse(f"text of 1 to {most} characters" + (" (or null)" if nullable else ""))
    elif field in COUNTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            refuse("a whole number >= 0 (a token count)")
    elif field == "cost_usd":
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            refuse("a number of USD >= 0 (or null: unknown)")
    elif field in ("inputs", "output") and not isinstance(value, dict):
        refuse('a JSON object such as {"key": "value"} (or correct one key: ' + field + ".KEY)")


def _with(values: dict[str, Any], parts: list[str], value: Any) -> dict[str, Any]:
    """``values`` (a step's columns) with ``parts`` set to ``value`` (copies, the input untouched)."""
    if len(parts) == 1:
        return {**values, parts[0]: value}
    inner = copy.deepcopy(values[parts[0]])
    node = inner
    for key in parts[1:-1]:
        node = node[key]
    node[parts[-1]] = value
    return {**values, parts[0]: inner}


def correction_detail(store: Any, run_id: str, *, step: int, field: str, value: Any, reason: str,
                      principal: Any) -> dict[str, Any]:
    """The ``detail`` of a correction of ``field`` of step ``step`` of ``run_id`` (module
    docstring). Raises ``NotPermitted`` when ``principal`` (a signed-in
    :class:`~chainproof.checkpoints.accounts.Principal`) holds neither ``admin`` nor ``approver``,
    ``RunPurged``/``RunNotFound`` for a purged or unknown run, ``InputError`` naming ``--step``,
    ``--field`` or ``--reason``."""
    from chainproof.checkpoints.purge_check import tombstone
    from chainproof.errors import RunNotFound

    if principal is None or not principal.has(*CORRECTORS):
        who = f"{principal.username!r} holds {', '.join(sorted(principal.roles)) or 'no role'}" if principal else \
            "nobody is signed in (chainproof login NAME)"
        raise NotPermitted(f"correct: needs a signed-in account with the admin or approver role; {who}")
    if not reason or not reason.strip():
        raise InputError("--reason: say why the record is corrected (kept with the correction)")
    if store.get_run(run_id) is None:
        stone = tombstone(store, run_id)
        if stone is not None:
            raise RunPurged(f"run {run_id} was purged on {stone['purged_at']:%Y-%m-%d} by {stone['purged_by']}: "
                            "there is no record left to correct")
        raise RunNotFound(f"no run {run_id!r} in the audit store")
    rows = [s for s in store.records_of(run_id, "steps") if s.step_no == step]
    if not rows:
        numbers = sorted({s.step_no for s in store.records_of(run_id, "steps")})
        span = f"{numbers[0]}..{numbers[-1]}" if numbers else "none"
        raise InputError(f"--step {step}: run {run_id} has no step {step} (its steps: {span})")
    target = rows[-1]  # the step's final execution (earlier ones failed or were repeated after a crash)
    original = field_value(target, field)
    check_value(field, value)
    if original == value:
        raise InputError(f"--value: step {step} {field} already holds {json.dumps(value, default=str)[:80]}")
    return {"corrects": {"table": "steps", "seq": target.seq, "record_hash": target.record_hash, "step_no": step,
                         "node": target.node},
            "field": field, "original": original, "value": value, "reason": reason.strip(),
            "by": principal.username, "account": principal.as_record()}


def correct(store: Any, run_id: str, *, step: int, field: str, value: Any, reason: str, principal: Any) -> Any:
    """Append a correction to ``run_id`` (:func:`correction_detail` says what is checked and
    raised) through ``store`` (an :class:`~chainproof.checkpoints.audit.AuditStore`, which
    redacts secrets and chains it); returns the written ``events`` record."""
    from chainproof.checkpoints.audit_hashing import zdr_minimise
    from chainproof.checkpoints.audit_schema import EventRecord

    detail = correction_detail(store, run_id, step=step, field=field, value=value, reason=reason, principal=principal)
    if store.get_run(run_id).zdr and field.split(".")[0] in ("inputs", "output"):
        detail["value"] = zdr_minimise(detail["value"], store.redactor)  # as the step's own text was kept
    return store.append(run_id, EventRecord(kind=KIND, detail=detail))[0]


@dataclass(frozen=True)
class Correction:
    """One correction as read back: its own ``seq`` and time, the corrected record's ``seq``,
    ``step_no`` and hash, ``field``, ``value``, ``original``, ``reason`` and ``by``."""

    seq: int
    at: datetime
    target_seq: int
    target_hash: str
    step_no: int
    field: str
    value: Any
    original: Any
    reason: str
    by: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "corrects_seq": self.target_seq, "corrects_hash": self.target_hash,
                "step_no": self.step_no, "field": self.field, "value": self.value, "original": self.original,
                "reason": self.reason, "by": self.by}


def corrections_of(records: list[Any]) -> list[Correction]:
    """The corrections among a run's ``records`` (any chained records; the events are read), in order."""
    out = []
    for r in records:
        if r.__tablename__ != "events" or r.kind != KIND or not isinstance(r.detail, dict) \
                or not isinstance(r.detail.get("corrects"), dict):
            continue  # verify names a correction that names no record
        d: dict[str, Any] = r.detail
        target: dict[str, Any] = d.get("corrects") or {}
        out.append(Correction(r.seq, r.created_at, target.get("seq", 0), str(target.get("record_hash")),
                              target.get("step_no", 0), str(d.get("field")), d.get("value"), d.get("original"),
                              str(d.get("reason")), str(d.get("by"))))
    return sorted(out, key=lambda c: c.seq)


def corrected_steps(steps: list[Any], corrections: list[Correction]) -> list[Any]:
    """``steps`` (records) with each correction applied to a copy of the record it names (the
    latest correction of a field wins) and the title marked with :data:`MARK`; the records read
    from the store are untouched."""
    by_seq: dict[int, list[Correction]] = {}
    for c in corrections:
        by_seq.setdefault(c.target_seq, []).append(c)
    out = []
    for s in steps:
        found = by_seq.get(s.seq)
        if not found:
            out.append(s)
            continue
        values = s.as_dict()
        for c in found:
            try:
                values = _with(values, _path(c.field), c.value)
            except (InputError, KeyError, TypeError):
                continue  # a field this version cannot place; the correction is still listed
        out.append(type(s)({**values, "title": f"{MARK} {values['title']}"}))
    return out


def correction_problem(rows: list[Any]) -> tuple[Any, str] | None:
    """The first correction among a run's ``rows`` that does not name an earlier ``steps``
    record of the run by its ``seq`` and ``record_hash``: ``(its events record, why)``; None."""
    by_seq = {r.seq: r for r in rows}
    for r in sorted((r for r in rows if r.__tablename__ == "events" and r.kind == KIND), key=lambda r: r.seq):
        target = (r.detail or {}).get("corrects") if isinstance(r.detail, dict) else None
        if not isinstance(target, dict):
            return r, "a correction that names no corrected record"
        named = by_seq.get(target.get("seq"))
        if named is None or named.__tablename__ != target.get("table") or target.get("table") != "steps":
            return r, f"corrects {target.get('table')} seq {target.get('seq')}, which is not a step record of this run"
        if named.record_hash != target.get("record_hash") or named.seq >= r.seq:
            return r, (f"corrects steps seq {named.seq} by hash {str(target.get('record_hash'))[:12]}…, but that "
                       "record's hash differs or it comes after the correction")
    return None


__all__ = ["CORRECTABLE", "CORRECTORS", "KIND", "MARK", "Correction", "check_value", "correct", "correction_detail",
           "correction_problem", "corrected_steps", "corrections_of", "field_value", "parse_value"]
