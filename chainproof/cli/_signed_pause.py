"""What a pause under a policy that requires signed decisions prints about signing: only the
steps still missing for this store and this user (``approve``/``run``/``resume``/``fork`` print it
after the pause panel, :func:`chainproof.cli._views.print_pause`).

The steps, each left out once done: a key file (``chainproof keys create``, checked at
:func:`~chainproof.checkpoints._approver_keys.default_key_path`); an account (``users add ... --role
admin`` only while the store has no enabled admin; else ``login`` when nobody is signed in and
the key is not registered yet, or as the key's approver when another account is signed in); the
key's registration (``approvers add``, by an admin: the
signed-in one, else "by an admin"); then the signed ``approve``. Read-only: nothing is created.
"""

from __future__ import annotations

import json
from typing import Any

from chainproof.cli._views import _cmd

FRESH = ("This run's approval policy requires a signed decision (the default for a new store). With no registered "
         "key yet, on a fresh store where you are the first admin (README, \"Signed decisions\"):")
MISSING = ("This run's approval policy requires a signed decision. Still to do for this store and this user "
           "(README, \"Signed decisions\"):")


def signed_pause(engine: Any, result: Any) -> list[str] | None:
    """None unless ``result`` is a pause for approval under a policy that requires signed
    decisions (the policy its run was bound to: the ``run_started`` record in ``engine``'s audit
    store); else the lines to print: a heading, then one copyable command per missing step (module
    docstring) and the signed ``approve``."""
    if result.status != "paused" or not result.requests:
        return None
    started = engine.audit.last_event(result.run_id, "run_started")
    policy = (started.detail or {}).get("approval_policy") if started is not None else None
    if not (isinstance(policy, dict) and policy.get("require_signature") is True):
        return None
    return signing_steps(engine, result.run_id)


def _signed_in(engine: Any, accounts: Any) -> Any:
    """The account of the token ``chainproof login`` stored, or None (none, or no longer valid)."""
    from chainproof.errors import GrantNotTrusted, NotAuthenticated

    path = engine.settings.home / "credentials.json"
    try:
        token = json.loads(path.read_text(encoding="utf-8")).get("token", "")
        return accounts.authenticate(token, "api")
    except (OSError, ValueError, AttributeError, NotAuthenticated, GrantNotTrusted):
        return None


def _registered(engine: Any, public: Any) -> Any:
    """The active registration of the public key file ``public`` (countersigned by a trusted
    operator key), or None."""
    from chainproof.checkpoints._approver_keys import ApproverKeys, key_id_of, load_public_key
    from chainproof.errors import UserError

    try:
        found = ApproverKeys(engine.audit.engine).get(key_id_of(load_public_key(public)), trusted_only=True)
    except (OSError, UserError):
        return None
    return found if found is not None and found.active else None


def _signed_in_required(engine: Any) -> bool:
    from chainproof.checkpoints._policy_store import signed_in_required
    from chainproof.errors import GrantNotTrusted

    try:
        return signed_in_required(engine.audit.engine, engine.settings.auth.require_authenticated_approvers) is not None
    except GrantNotTrusted:
        return True


def signing_steps(engine: Any, run_id: str) -> list[str]:
    """The heading and the commands still needed to sign a decision on ``run_id`` (module docstring)."""
    from chainproof.checkpoints._approver_keys import default_key_path
    from chainproof.checkpoints.accounts import AccountStore

    accounts = AccountStore(engine.audit.engine, engine.settings.auth)
    fresh, principal = not accounts.has_admin(), _signed_in(engine, accounts)
    key = default_key_path()
    public = key.with_suffix(".pub")
    registered = _registered(engine, public) if key.exists() else None
    name = registered.approver if registered is not None else principal.username if principal else \
        "me" if fresh else "YOUR_ACCOUNT"
    steps = [] if key.exists() else [f"chainproof keys create   # your key: {key}"]
    if fresh:
        steps += ["chainproof users add me --role admin --role approver --password-stdin", "chainproof login me --password-stdin"]
    elif principal is None and (registered is None or _signed_in_required(engine)):
        steps.append(_cmd("chainproof", "login", name, "--password-stdin") + "   # your account on this store")
    elif principal is not None and registered is not None and principal.username.casefold() != name.casefold():
        steps.append(_cmd("chainproof", "login", name, "--password-stdin") +
                     f"   # your key is registered to {name}, not to {principal.username}, who is signed in")
    if registered is None:
        add = _cmd("chainproof", "approvers", "add", name, "--public-key", str(public))
        by_admin = fresh or (principal is not None and principal.has("admin"))
        steps.append(add if by_admin else add + "   # by an admin (chainproof login ADMIN first)")
    approve = _cmd("chainproof", "approve", run_id, "--comment", "optional note") + f"   # signed, as {name}"
    if not steps:
        return [f"This run's approval policy requires a signed decision; your key {key} is registered to {name}:", approve]
    return [FRESH if fresh else MISSING, *steps, approve]


__all__ = ["signed_pause", "signing_steps"]
