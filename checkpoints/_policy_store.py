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

Store-wide defaults (``store_settings``, revision 0010): ``require_signature``, recorded when the
store is created from its creator's ``approvals.require_signature`` (default true; false for a
store that existed before), is applied to every policy that is not a stored version (the graph's
own, or the settings'), so only an admin's stored policy for a graph (``policy set GRAPH
require_signature=false``) or an admin's change of the default (``policy set --store``, a
``store_option_changed`` auth event) lets a run take unsigned decisions.

Policy versions and store settings are grants: written countersigned by the operator key, and the
version in force (the newest) is refused (``GrantNotTrusted``) when its countersignature does not
verify under a trusted operator key (:mod:`chainproof.checkpoints.grants`), so a database writer
can neither add a looser version nor flip ``require_signature`` or the retention.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints import grants
from chainproof.checkpoints.auth_log import append_auth_event, append_auth_event_on, aware
from chainproof.errors import GrantNotTrusted, InputError
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


@dataclass(frozen=True)
class StoredOption:
    """Version ``version`` of store-wide default ``name`` (``store_settings``): its ``value``, when
    and by whom it was set (version 1: at the store's creation, or by migration 0010)."""

    name: str
    version: int
    value: Any
    created_at: datetime
    created_by: str


def _trusted(read: Callable[[], Any]) -> bool:
    """Whether ``read()`` (a read of the grant in force) passes its countersignature check."""
    try:
        read()
    except GrantNotTrusted:
        return False
    return True


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
        """The newest version of ``graph``'s policy, or None; ``GrantNotTrusted`` when that version
        is not countersigned by a trusted operator key."""
        c = t.approval_policies.c
        with self.engine.connect() as conn:
            found = conn.execute(select(t.approval_policies).where(c.graph == graph).order_by(c.version.desc()).limit(1)).first()
        if found is None:
            return None
        row = dict(found._mapping)
        grants.require(self.engine, "approval_policies", row)
        return _stored(row)

    def history(self, graph: str | None = None) -> list[StoredPolicy]:
        """Every version (of ``graph``, or of all graphs), by graph and version."""
        c = t.approval_policies.c
        stmt = select(t.approval_policies).order_by(c.graph, c.version)
        if graph is not None:
            stmt = stmt.where(c.graph == graph)
        with self.engine.connect() as conn:
            return [_stored(dict(r._mapping)) for r in conn.execute(stmt)]

    def _newest(self, graph: str) -> StoredPolicy | None:
        """The newest version of ``graph``'s policy whether or not it is trusted (what a new version follows)."""
        c = t.approval_policies.c
        with self.engine.connect() as conn:
            found = conn.execute(select(t.approval_policies).where(c.graph == graph).order_by(c.version.desc()).limit(1)).first()
        return _stored(dict(found._mapping)) if found else None

    def put(self, graph: str, policy: ApprovalPolicy, *, actor: str, source: str) -> StoredPolicy | None:
        """Store ``policy`` as the next version of ``graph``'s (None, and nothing written, when it
        equals the current one) and record a ``policy_changed`` auth event naming ``actor``, the
        ``source`` (a file, ``set``) and the old and new version and hash."""
        digest = policy.digest()
        c = t.approval_policies.c
        for attempt in range(_ATTEMPTS):
            before = self._newest(graph)
            if before is not None and before.policy_hash == digest and _trusted(lambda: self.current(graph)):
                return None
            row = {"graph": graph, "version": (before.version + 1) if before else 1,
                   "policy": policy.model_dump(mode="json"), "policy_hash": digest,
                   "created_at": datetime.now(UTC), "created_by": actor}
            row.update(grants.countersigned(self.engine, "approval_policies", row))
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


STORE_OPTIONS = ("require_signature", "require_authenticated_approvers")
"""The store-wide defaults an admin sets with ``policy set --store`` (:func:`set_store_option`;
``require_authenticated_approvers``: every decision needs a signed-in account, a typed ``--as``
name is refused; a store without the row does not require it, and a caller's
``auth.require_authenticated_approvers`` can only add the requirement, never lift the store's);
``store_settings`` also holds the retention (:mod:`chainproof.checkpoints.retention`)."""


def store_option(engine: Engine, name: str, *, trusted: bool = True) -> tuple[Any, StoredOption | None]:
    """``(value, newest version)`` of store-held setting ``name``: the newest ``store_settings``
    row; ``(False, None)`` when there is none (a scratch store made from the models, never migrated).
    ``GrantNotTrusted`` when that row is not countersigned by a trusted operator key (``trusted``
    False: read it anyway, to write the next version)."""
    c = t.store_settings.c
    with engine.connect() as conn:
        row = conn.execute(select(t.store_settings).where(c.name == name).order_by(c.version.desc()).limit(1)).first()
    if row is None:
        return False, None
    if trusted:
        grants.require(engine, "store_settings", dict(row._mapping))
    found = StoredOption(row.name, int(row.version), row.value, aware(row.created_at), row.created_by)
    return found.value, found


def set_store_setting(engine: Engine, name: str, value: Any, *, actor: str, event: str,
                      detail: Callable[[Any], dict[str, Any]]) -> StoredOption | None:
    """Record ``value`` as the next version of store-held setting ``name`` and, in the same
    transaction, an auth event ``event`` naming ``actor`` with ``detail(old value or None)`` and the
    version; None (nothing written) when ``value`` is the one in force. Rows are never updated."""
    for attempt in range(_ATTEMPTS):
        before, found = store_option(engine, name, trusted=False)
        if found is not None and before == value and _trusted(lambda: store_option(engine, name)):
            return None
        version, now = found.version + 1 if found else 1, datetime.now(UTC)
        row = {"name": name, "version": version, "value": value, "created_at": now, "created_by": actor}
        row.update(grants.countersigned(engine, "store_settings", row))
        try:
            with engine.begin() as conn:
                conn.execute(insert(t.store_settings).values(**row))
                append_auth_event_on(conn, event, actor=actor,
                                     detail={**detail(before if found else None), "version": version})
        except IntegrityError:  # PostgreSQL: a racing writer took the version or the auth event's seq
            if attempt == _ATTEMPTS - 1:
                raise
            continue
        return StoredOption(name, version, value, now, actor)
    raise AssertionError("unreachable")  # pragma: no cover


def set_store_option(engine: Engine, name: str, value: Any, *, actor: str) -> StoredOption | None:
    """Record ``value`` as the next version of store-wide default ``name`` (None, and nothing
    written, when it is the value in force) with a ``store_option_changed`` auth event naming
    ``actor`` and the old and new value. ``InputError`` naming the field for an unknown name or a
    value of the wrong type (``require_signature``: true or false)."""
    if name not in STORE_OPTIONS:
        raise InputError(f"--store FIELD=VALUE {name!r}: expected one of {', '.join(STORE_OPTIONS)}")
    if not isinstance(value, bool):
        raise InputError(f"--store {name}={value!r}: expected true or false")
    return set_store_setting(engine, name, value, actor=actor, event="store_option_changed",
                             detail=lambda old: {"name": name, "old_value": old, "new_value": value})


def signed_in_required(engine: Engine | None, caller_requires: bool) -> str | None:
    """Why a decision needs a signed-in approver, or None: the store requires it (its
    ``require_authenticated_approvers``, set by an admin), or the caller's own settings do.
    ``GrantNotTrusted`` when the store's row is not countersigned by a trusted operator key."""
    if engine is not None and store_option(engine, "require_authenticated_approvers")[0] is True:
        return ("this store requires a signed-in approver (store setting require_authenticated_approvers, set by an "
                "admin with `chainproof policy set --store`)")
    if caller_requires:
        return "your settings require a signed-in approver (auth.require_authenticated_approvers)"
    return None


def store_defaults(engine: Engine | None, policy: ApprovalPolicy) -> ApprovalPolicy:
    """``policy`` (a graph's own, or one from a caller's settings) with the store's defaults
    applied: signatures required when the store requires them, whatever the policy says."""
    if engine is None or policy.require_signature or not store_option(engine, "require_signature")[0]:
        return policy
    return policy.model_copy(update={"require_signature": True})


def policy_in_force(engine: Engine | None, configured: Mapping[str, ApprovalPolicy], graph: str,
                    own: ApprovalPolicy) -> tuple[ApprovalPolicy, dict[str, Any]]:
    """The policy a new run of ``graph`` binds to and where it came from: ``(policy, {"source":
    "store" | "settings" | "graph", "version": N | None, "policy_hash": …})`` (rules in the module
    docstring). ``configured``: the settings' ``approval_policies``; ``own``: the graph's own. A
    policy that is not the store's own version gets the store's defaults (:func:`store_defaults`):
    a caller's settings can never loosen a store that requires signatures."""
    store = PolicyStore(engine) if engine is not None else None
    if store is not None and store.holds_any():
        stored = store.current(graph)
        if stored is not None:
            return stored.policy, {"source": "store", "version": stored.version, "policy_hash": stored.policy_hash}
        policy, source = own, "graph"
    else:
        policy, source = (configured[graph], "settings") if graph in configured else (own, "graph")
    policy = store_defaults(engine, policy)
    return policy, {"source": source, "version": None, "policy_hash": policy.digest()}


__all__ = ["STORE_OPTIONS", "PolicyStore", "StoredOption", "StoredPolicy", "policy_in_force", "set_store_option", "set_store_setting", "signed_in_required",
           "store_defaults", "store_option"]
