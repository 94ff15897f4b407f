"""The approval policy a run's decisions are checked against, read so a database writer cannot
change it (:func:`bound_policy`).

A run records at its start (``run_started``) the policy it binds to (``approval_policy``) and
where it came from (``approval_policy_version``: ``source``, ``version``, ``policy_hash``). That
copy is only as good as the row it sits in, so neither a decision (``chainproof/_decisions.py``),
a resume (``chainproof/_resume.py``) nor ``verify`` takes it on trust:

* the ``run_started`` record must still hash to its ``record_hash`` and open the chain (``seq`` 1,
  linked to ``GENESIS``);
* the kept policy must hash (``ApprovalPolicy.digest``) to the recorded ``policy_hash``;
* a run bound to a stored version (``source: "store"``) is checked against *that stored version*,
  read from ``approval_policies`` and refused unless its operator countersignature verifies
  (:mod:`chainproof.checkpoints.grants`) and its hash is the recorded one; the policy used is the
  stored one, not the copy;
* a run that says it was bound to the graph's own policy or the settings' while the store already
  held a version for the graph (created before the run started) is refused;
* a policy that is not a stored version gets the store's defaults (``store_defaults``: signatures
  required when the store requires them).

Limit: a writer who edits the copy *and* rewrites the whole chain with fresh hashes passes the
first check; the later ones still hold for stored versions, and the Merkle log's signed heads
(``verify --log``) catch the rewrite.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, select

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints import grants
from chainproof.checkpoints._policy_store import _stored, store_defaults
from chainproof.checkpoints.audit_hashing import record_hash
from chainproof.checkpoints.audit_tables import GENESIS
from chainproof.checkpoints.auth_log import aware
from chainproof.errors import GrantNotTrusted
from chainproof.graphs.approval_policy import ApprovalPolicy


def _stored_version(engine: Engine, graph: str, version: Any) -> tuple[ApprovalPolicy | None, str | None]:
    """``(policy, None)`` of stored version ``version`` of ``graph``'s policy when its countersignature
    verifies and its content hashes to its ``policy_hash``, else ``(None, why)``."""
    c = t.approval_policies.c
    if not isinstance(version, int) or isinstance(version, bool):
        return None, f"approval_policy_version.version: expected a stored version number, got {version!r}"
    with engine.connect() as conn:
        found = conn.execute(select(t.approval_policies).where(c.graph == graph, c.version == version)).first()
    if found is None:
        return None, f"stored policy version {version} of {graph} is missing from approval_policies"
    row = dict(found._mapping)
    try:
        grants.require(engine, "approval_policies", row)
        stored = _stored(row)
    except (GrantNotTrusted, ValidationError) as exc:
        return None, f"stored policy version {version} of {graph} is not trusted: {exc}"
    if stored.policy.digest() != stored.policy_hash:
        return None, f"stored policy version {version} of {graph} does not hash to its policy_hash"
    return stored.policy, None


def bound_policy(engine: Engine, graph: str, started: Any) -> tuple[ApprovalPolicy | None, str | None]:
    """``(policy, None)``: the policy ``started`` (the run's ``run_started`` record) bound the run
    of ``graph`` to, checked as the module docstring says; ``(None, None)`` for a run recorded
    before runs kept their policy (the caller's fallback applies); ``(None, why)`` when the record
    or the policy fails a check."""
    if started is None:
        return None, "the run has no run_started record"
    if started.seq != 1 or started.prev_hash != GENESIS or record_hash(started) != started.record_hash:
        return None, (f"its run_started record (events id {started.id}) no longer hashes to its record_hash "
                      "or does not open the chain: the recorded approval policy cannot be trusted")
    detail = started.detail if isinstance(started.detail, dict) else {}
    kept, bound = detail.get("approval_policy"), detail.get("approval_policy_version")
    if kept is None and bound is None:
        return None, None
    if not isinstance(bound, dict) or not isinstance(bound.get("policy_hash"), str):
        return None, "run_started approval_policy_version: missing or malformed (expected source, version, policy_hash)"
    try:
        policy = ApprovalPolicy.model_validate(kept)
    except ValidationError:
        return None, "run_started approval_policy: not a valid approval policy"
    if policy.digest() != bound["policy_hash"]:
        return None, (f"run_started approval_policy does not hash to its approval_policy_version.policy_hash "
                      f"({bound['policy_hash'][:12]}…): the recorded policy was edited")
    if bound.get("source") == "store":
        stored, problem = _stored_version(engine, graph, bound.get("version"))
        if stored is None:
            return None, problem
        if stored.digest() != bound["policy_hash"]:
            return None, (f"run_started approval_policy_version.policy_hash {bound['policy_hash'][:12]}… is not the hash "
                          f"of stored version {bound.get('version')} of {graph} ({stored.digest()[:12]}…)")
        return stored, None
    earlier = _version_before(engine, graph, started.created_at)
    if earlier is not None:
        return None, (f"run_started says the run bound to the {bound.get('source')!r} policy, but the store held "
                      f"version {earlier} of {graph}'s policy when it started")
    return store_defaults(engine, policy), None


def _version_before(engine: Engine, graph: str, when: Any) -> int | None:
    """The first stored version of ``graph``'s policy created at or before ``when``, or None."""
    c = t.approval_policies.c
    if when is None:
        return None
    with engine.connect() as conn:
        rows = conn.execute(select(c.version, c.created_at).where(c.graph == graph).order_by(c.version)).all()
    return next((int(r.version) for r in rows if aware(r.created_at) <= aware(when)), None)


__all__ = ["bound_policy"]
