"""Approval policies held in the audit store: versioned rows, changed only by an admin.

Each change (``chainproof policy import`` / ``policy set``) adds version N+1 of a graph's policy
(``approval_policies`` table, revision 0007) and an ``auth_events`` row ``policy_changed`` with
the old and new version and hash and who made it; rows are never updated or deleted. The newest
version of a graph is in force (:meth:`PolicyStore.current`).

Which policy a new run binds to (:func:`policy_in_force`): once the store holds any policy, the
store's version of the graph, or the graph's own policy when the store has none for it; the
caller's ``chainproof.toml`` and environment (``approval_policies``) are then ignored. A store
without any stored policy keeps the earlier behaviour (settings, else the graph's own), until an
admin imports the policies once. The run records the policy, its version and hash at its start;
decisions on it are checked against that record, never against what is in force later
(``chainproof/_wiring.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints.auth_log import append_auth_event, aware
from chainproof.graphs.approval_policy import ApprovalPolicy

_ATTEMPTS = 5  # two admins adding a version at once: the unique (graph, version) refuses one, which retries


@dataclass(frozen=True)
class StoredPolicy:
    """Version ``version`` of ``graph``'s policy, its ``policy_hash`` (``ApprovalPolicy.digest``),
    when and by whom it was made."""

    graph: str
    version: int
    policy: ApprovalPolicy
    policy_hash: str
    created_at: datetime
    created_by: str


def _stored(row: Mapping[str, Any]) -> StoredPolicy:
    return StoredPolicy(row["graph"], int(row["version"]), ApprovalPolicy.model_validate(row["policy"]),
                        row["policy_hash"], aware(row["created_at"]), row["created_by"])


class PolicyStore:
    """The versioned approval policies on ``engine``."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def holds_any(self) -> bool:
        """Whether any policy was ever stored (from then on the settings' policies are ignored)."""
        with self.engine.connect() as conn:
            return bool(conn.scalar(select(func.count()).select_from(t.approval_policies)))

    def current(self, graph: str) -> StoredPolicy | None:
        """The newest version of ``graph``'s policy, or None."""
        c = t.approval_policies.c
        with self.engine.connect() as conn:
            found = conn.execute(select(t.approval_policies).where(c.graph == graph).order_by(c.version.desc()).limit(1)).first()
        return _stored(dict(found._mapping)) if found else None

    def history(self, graph: str | None = None) -> list[StoredPolicy]:
        """Every version (of ``graph``, or of all graphs), by graph and version."""
        c = t.approval_policies.c
        stmt = select(t.approval_policies).order_by(c.graph, c.version)
        if graph is not None:
            stmt = stmt.where(c.graph == graph)
        with self.engine.connect() as conn:
            return [_stored(dict(r._mapping)) for r in conn.execute(stmt)]

    def put(self, graph: str, policy: ApprovalPolicy, *, actor: str, source: str) -> StoredPolicy | None:
        """Store ``policy`` as the next version of ``graph``'s (None, and nothing written, when it
        equals the current one) and record a ``policy_changed`` auth event naming ``actor``, the
        ``source`` (a file, ``set``) and the old and new version and hash."""
        digest = policy.digest()
        c = t.approval_policies.c
        for attempt in range(_ATTEMPTS):
            before = self.current(graph)
            if before is not None and before.policy_hash == digest:
                return None
            row = {"graph": graph, "version": (before.version + 1) if before else 1,
                   "policy": policy.model_dump(mode="json"), "policy_hash": digest,
                   "created_at": datetime.now(UTC), "created_by": actor}
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(t.approval_policies).values(**row))
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            append_auth_event(self.engine, "policy_changed", username=None, actor=actor, detail={
                "graph": graph, "source": source, "old_version": before.version if before else None,
                "old_hash": before.policy_hash if before else None, "new_version": row["version"], "new_hash": digest})
            with self.engine.connect() as conn:
                found = conn.execute(select(t.approval_policies).where(c.graph == graph, c.version == row["version"])).first()
            return _stored(dict(found._mapping)) if found else None
        raise AssertionError("unreachable")  # pragma: no cover


def policy_in_force(engine: Engine | None, configured: Mapping[str, ApprovalPolicy], graph: str,
                    own: ApprovalPolicy) -> tuple[ApprovalPolicy, dict[str, Any]]:
    """The policy a new run of ``graph`` binds to and where it came from: ``(policy, {"source":
    "store" | "settings" | "graph", "version": N | None, "policy_hash": …})`` (rules in the module
    docstring). ``configured``: the settings' ``approval_policies``; ``own``: the graph's own."""
    store = PolicyStore(engine) if engine is not None else None
    if store is not None and store.holds_any():
        stored = store.current(graph)
        if stored is not None:
            return stored.policy, {"source": "store", "version": stored.version, "policy_hash": stored.policy_hash}
        return own, {"source": "graph", "version": None, "policy_hash": own.digest()}
    policy = configured.get(graph)
    if policy is not None:
        return policy, {"source": "settings", "version": None, "policy_hash": policy.digest()}
    return own, {"source": "graph", "version": None, "policy_hash": own.digest()}


__all__ = ["PolicyStore", "StoredPolicy", "policy_in_force"]
