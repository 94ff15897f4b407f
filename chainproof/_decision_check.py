"""A recorded decision is checked again before a resume applies it (:func:`check_recorded`).

A decision row is what continues a paused run, so ``chainproof resume``, ``POST
/api/runs/ID/resume`` and the workers (all through ``chainproof/_resume.py``) do not take it on
trust from the database: before it is applied,

* it must be a properly chained record: its content hashes to its ``record_hash`` and the run's
  chain up to it is intact (``check_chain``, the function ``verify`` uses);
* the run's approval policy is the one its ``run_started`` record bound it to, checked against
  the countersigned stored version (:func:`chainproof._wiring.trusted_policy`);
* its signature verifies under a key whose registration is countersigned by a trusted operator
  key, and it is signed when that policy requires it (``decision_problem``, as ``verify``);
* its approver is allowed by that policy.

A failed check raises ``RecordTampered`` naming the ``approvals`` row; nothing is applied.
"""

from __future__ import annotations

from typing import Any

from chainproof import _wiring
from chainproof.checkpoints._approver_keys import ApproverKeys, decision_problem
from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.verify import check_chain
from chainproof.errors import RecordTampered
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.settings import Settings


def _refuse(record: Any, why: str) -> RecordTampered:
    return RecordTampered(f"approvals row id {record.id} ({record.action} by {record.approver!r} on request "
                          f"{record.request_id} of run {record.run_id}): {why}; it was not applied and the run was not "
                          f"resumed (chainproof verify {record.run_id})")


def check_recorded(audit: AuditStore, settings: Settings, run_id: str, graph: str, record: Any,
                   fallback: ApprovalPolicy) -> None:
    """Raise ``RecordTampered`` unless decision ``record`` of ``run_id`` passes the checks of the
    module docstring (``fallback``: the policy of a run recorded before runs kept theirs)."""
    if record.run_id != run_id or not isinstance(record.seq, int) or isinstance(record.seq, bool):
        raise _refuse(record, "it is not a chained record of this run (no seq)")
    prefix = [r for r in audit.records(run_id) if isinstance(r.seq, int) and r.seq <= record.seq]
    if not any(r.__tablename__ == "approvals" and r.id == record.id for r in prefix):
        raise _refuse(record, "it is not in the run's chain")
    broken = check_chain(prefix)
    if broken is not None:
        raise _refuse(record, f"the run's chain up to it is broken ({broken.kind} {broken.table} seq {broken.seq}: "
                              f"{broken.detail})")
    try:
        policy = _wiring.trusted_policy(audit, run_id, graph, fallback)
    except RecordTampered as exc:
        raise _refuse(record, str(exc)) from None
    sig = record.signature if isinstance(record.signature, dict) else {}
    keys = ApproverKeys(audit.engine)
    key = keys.get(sig["key_id"], trusted_only=True) if isinstance(sig.get("key_id"), str) else None
    problem = decision_problem(record, key, policy.require_signature)
    if problem is not None:
        raise _refuse(record, problem)
    roles = {name: set(r) for name, r in _wiring.recorded_roles(audit, run_id, settings).items()}
    account = (record.payload or {}).get("account") if isinstance(record.payload, dict) else None
    extra = set(key.roles) if key is not None else set()
    if isinstance(account, dict) and isinstance(account.get("roles"), list):
        extra |= {str(r) for r in account["roles"]}
    roles.setdefault(record.approver, set()).update(extra)
    if not policy.allows(record.approver, {k: sorted(v) for k, v in roles.items()}):
        raise _refuse(record, f"{record.approver!r} is not allowed by the run's approval policy "
                              f"(approvers: {', '.join(policy.approvers)})")


__all__ = ["check_recorded"]
