"""Grant rows the audit record does not account for: ``chainproof verify`` flags them.

Chainproof records every grant it writes in ``auth_events`` (one hash chain): registering an
approver key is an ``approver_added`` event naming the key id; adding an account or changing its
roles is an ``account_added`` / ``roles_changed`` event with the roles. A registration or a role
set with no such event was not written through Chainproof, even when it carries a countersignature
(e.g. one an operator was talked into giving with ``keys anchor``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from chainproof.checkpoints import audit_tables as t
from chainproof.checkpoints.auth_log import auth_events_of_kind


def _roles(value: Any) -> list[str]:
    return sorted(str(r) for r in value) if isinstance(value, list | tuple) else []


def unrecorded(engine: Engine) -> list[tuple[str, str, str]]:
    """``(table, row id, problem)`` of every approver key with no ``approver_added`` event for its
    key id, and every account whose roles are not the ones its last ``account_added`` /
    ``roles_changed`` event recorded (or that has no such event)."""
    registered = {(e["detail"] or {}).get("key_id") for e in auth_events_of_kind(engine, "approver_added")}
    recorded: dict[str, tuple[int, list[str]]] = {}
    for kind, field in (("account_added", "roles"), ("roles_changed", "after")):
        for e in auth_events_of_kind(engine, kind):
            name = str(e["username"] or "").casefold()
            if name not in recorded or recorded[name][0] < e["seq"]:
                recorded[name] = (int(e["seq"]), _roles((e["detail"] or {}).get(field)))
    found: list[tuple[str, str, str]] = []
    with engine.connect() as conn:
        for row in conn.execute(select(t.approver_keys)):
            if row.key_id not in registered:
                found.append(("approver_keys", row.key_id, f"approver {row.approver!r}: no approver_added auth event "
                              "registers this key; it was not added through Chainproof"))
        for row in conn.execute(select(t.accounts)):
            seen = recorded.get(row.username.casefold())
            if seen is None:
                found.append(("accounts", row.account_id, f"account {row.username!r}: no account_added auth event; "
                              "it was not added through Chainproof"))
            elif seen[1] != _roles(row.roles):
                found.append(("accounts", row.account_id, f"account {row.username!r}: roles {_roles(row.roles)} are not "
                              f"the roles last recorded in the audit ({seen[1]}); changed outside Chainproof"))
    return found


__all__ = ["unrecorded"]
