"""How a decision on an approval request is checked and recorded (:meth:`Chainproof.decide`).

Everything here happens before LangGraph sees the answer (why: ``chainproof/app.py``'s module
docstring). :func:`record_decision` checks the binding (request id, checkpoint, proposal hash), the
approver against the run's approval policy, and the answer against the request's schema, then
writes the decision row and its ``run_resumed`` event in one append transaction that refuses a
second decision. It returns the resume map that names exactly the answered interrupt.

The approver is a typed name, or a signed-in :class:`~chainproof.checkpoints.accounts.Principal`
(the web app, or the CLI with a stored token). For a principal the policy's ``approvers`` names
are matched against its username and its ``role:`` entries against the account's roles (not the
``approver_roles`` setting), and the decision records ``payload.account``. With
``auth.require_authenticated_approvers`` a typed name is refused.

A decision may be signed (``signer``: a :class:`~chainproof.checkpoints._approver_keys.KeySigner`
holding the approver's private key, or a client's
:class:`~chainproof.checkpoints._approver_keys.ClientSignature`); with the run's policy's
``require_signature`` it must be. A signed decision's approver is the name the key is registered
to (a typed name or signed-in account must match it, case aside); a signed-in account's roles
are its current ones (plus those an admin registered its key with), a key's alone its registered
ones (:func:`_deciding_roles`); the signature, key id and signed statement are stored in the decision row's ``signature``
column, and ``verify`` checks them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chainproof import _wiring
from chainproof._boundaries import restore_model
from chainproof.checkpoints._approver_keys import ApproverKey, ApproverKeys, ClientSignature, KeySigner, decision_statement
from chainproof.checkpoints.audit import AlreadyDecided, AuditStore
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import ApprovalRecord, EventRecord
from chainproof.errors import ApprovalRefused, ApproverNotAllowed, InputError
from chainproof.graphs._engine import approvals
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs.approval import ApprovalAction, ApprovalAnswer, apply_changes, check_answer
from chainproof.graphs.view import ChainView
from chainproof.settings import Settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chainproof.checkpoints.accounts import Principal


def approver_of(settings: Settings, approver: str | None, principal: Principal | None, engine: Any = None) -> str:
    """The name a decision is recorded under: the principal's username, or the typed name.
    ``ApproverNotAllowed`` for a typed name where signed-in approvers are required, or a typed name
    that differs from the principal's; ``InputError`` for neither or a blank name."""
    if principal is not None:
        if approver is not None and approver.strip().casefold() != principal.username.casefold():
            raise ApproverNotAllowed(f"approver: signed in as {principal.username!r}, not {approver!r}; "
                                     "a decision is recorded under the signed-in account")
        return principal.username
    from chainproof.checkpoints._policy_store import signed_in_required

    why = signed_in_required(engine, settings.auth.require_authenticated_approvers)
    if why is not None:
        raise ApproverNotAllowed(f"approver: {why}; sign in with `chainproof login` or decide in the web app")
    if approver is None or not approver.strip():
        raise InputError("approver (--as): a name is required")
    return approver


def record_decision(audit: AuditStore, settings: Settings, run: Any, snapshot: Any, ctx: ChainContext, *,
                    action: ApprovalAction, approver: str | None, principal: Principal | None,
                    comment: str | None, edited: dict[str, Any] | None, changes: list[str] | None,
                    request_id: str | None, proposed_hash: str | None,
                    queue: str | None = None,
                    signer: KeySigner | ClientSignature | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check and record one decision on ``run``'s paused thread (``snapshot``: its current state);
    return ``({interrupt_id: answer}, event detail)``: the resume map to continue it with, and the
    detail of the event recorded with the decision (``run_resumed``; ``run_queued`` with the
    ``queue`` and the ``workflow_id`` that wakes it when the run was submitted to workers).
    Refusals (``ApprovalRefused``, with ``ApproverNotAllowed`` for who) record and run nothing.
    ``proposed_hash``: the SHA-256 of the proposal the approver saw (the request's
    ``proposed_hash``); refused when it differs. ``signer``: signs the decision (module docstring);
    required by a policy with ``require_signature`` (``ApproverNotAllowed`` naming ``signature``).
    The caller holds the run's lock."""
    run_id, spec = run.run_id, ctx.spec
    policy = _wiring.trusted_policy(audit, run_id, run.graph, ctx.approval_policy)  # not the run_started copy on trust
    key = _signing_key(audit, policy.require_signature, signer, approver, principal, run)
    name = key.approver if key is not None else approver_of(settings, approver, principal, audit.engine)
    pending = approvals.approvals_of(approvals.pauses_of(snapshot))
    request = approvals.target(audit, run_id, pending, request_id)
    checkpoint_id = snapshot.config["configurable"]["checkpoint_id"]
    approvals.check_binding(audit, run_id, request, checkpoint_id, pending)
    if proposed_hash is not None and proposed_hash != request.proposed_hash:
        raise ApprovalRefused(f"proposed_hash: request {request.request_id} proposes {request.proposed_hash[:12]}…, "
                              f"not the {proposed_hash[:12]}… you saw; reload it; pending: {approvals.listing(pending)}")
    if changes:
        edited = apply_changes(edited or request.proposed, changes)
    submitted = edited if action == "edit" else None  # the edited values as the approver gave them (signed)
    decided_at = _decided_at(signer)
    answer = ApprovalAnswer(request_id=request.request_id, action=action, approver=name, comment=comment,
                            edited=edited, decided_at=decided_at[0])
    roles = _deciding_roles(audit, settings, run_id, key, principal)
    if not policy.allows(answer.approver, roles):
        raise ApproverNotAllowed(
            f"approver: {answer.approver!r} may not decide for graph {run.graph}; allowed: "
            f"{', '.join(policy.approvers)}; pending: {approvals.listing(pending)}")
    answer = check_answer(answer, request, spec.approval_schema(request.subject))
    approvals.check_tool_edit(ctx.tool_defs, request, answer, pending)  # an agent's tool call: its schema
    if answer.action == "edit" and request.subject == "decision" and answer.edited is not None:  # check_answer: set
        try:  # a person's edit passes the same checks as the model's answer (e.g. evidence keys)
            spec.check_decision(restore_model(spec.decision_schema, answer.edited), ChainView(snapshot.values))
        except ValueError as exc:
            raise ApprovalRefused(f"edited: {exc}; nothing was decided; pending: {approvals.listing(pending)}") from None
    content = answer.edited if answer.action == "edit" else request.proposed
    payload = {**answer.model_dump(mode="json"), "subject": request.subject, "interrupt_id": request.interrupt_id,
               "checkpoint_id": checkpoint_id, "decided_hash": sha256_hex(content)}
    if principal is not None:
        payload["account"] = principal.as_record()
    signature = None
    if key is not None and signer is not None:
        statement = decision_statement(
            run_id=run_id, thread_id=snapshot.config["configurable"].get("thread_id", run_id), checkpoint_id=checkpoint_id,
            interrupt_id=request.interrupt_id, request_id=request.request_id, proposed_hash=request.proposed_hash,
            action=answer.action, edited=submitted, comment=answer.comment, approver=key.approver, key_id=key.key_id,
            decided_at=decided_at[1])
        signature = {"key_id": key.key_id, "signature": _signature(key, signer, statement), "signed": statement}
    decision = ApprovalRecord(step_no=request.step_no, request_id=request.request_id, action=answer.action,
                              approver=answer.approver, comment=answer.comment, proposed_hash=request.proposed_hash,
                              payload=payload, signature=signature)
    woken: dict[str, Any] = {"request_id": request.request_id, "by": answer.approver}
    if queue is not None:  # a worker applies it: the decision wakes the run on the queue
        woken.update(queue=queue, workflow_id=f"{run_id}:decision:{request.request_id}")
    try:
        audit.append_decision(run_id, decision, EventRecord(
            kind="run_queued" if queue is not None else "run_resumed", detail=woken))
    except AlreadyDecided as exc:
        raise ApprovalRefused(f"{exc}; pending: {approvals.listing(pending)}") from None
    return {request.interrupt_id: audit.redactor(answer.model_dump(mode="json"))}, woken


def _deciding_roles(audit: AuditStore, settings: Settings, run_id: str, key: ApproverKey | None,
                    principal: Principal | None) -> dict[str, list[str]]:
    """``{approver: roles}`` the policy's ``role:`` entries are matched against. A signed-in
    account: its current roles (as authenticated for this decision, so a role an admin removed or
    a disabled account no longer decides), plus the roles an admin registered its key with
    (``approvers add --role``); a key the web app's server registered for the account
    (``added_by`` ``server:…``) adds nothing, its roles being those the account had at its first
    decision. A key without an account: its registered roles. Neither: the run's recorded roles."""
    if principal is not None:
        granted = set(key.roles) if key is not None and not key.added_by.startswith("server:") else set()
        return {principal.username: sorted(set(principal.roles) | granted)}
    if key is not None:
        return {key.approver: list(key.roles)}
    return _wiring.recorded_roles(audit, run_id, settings)


def _signing_key(audit: AuditStore, required: bool, signer: KeySigner | ClientSignature | None,
                 approver: str | None, principal: Principal | None, run: Any) -> ApproverKey | None:
    """The registered key a decision is signed with (None: unsigned, allowed by the policy).
    ``ApproverNotAllowed`` for a missing signature the policy requires, an unknown or removed key,
    or a typed name or account that is not the key's approver."""
    if signer is None:
        if required:
            from chainproof.checkpoints._approver_keys import default_key_path

            public = default_key_path().with_suffix(".pub")
            name = (approver or (principal.username if principal is not None else "") or "YOUR NAME").strip()
            raise ApproverNotAllowed(
                f"signature: the approval policy run {run.run_id} is bound to requires a signed decision, and this "
                f"one is unsigned (no --key, no {default_key_path()}); nothing was decided. To sign: create your key "
                f"with `chainproof keys create`; an admin (signed in with `chainproof login ADMIN`) registers it with "
                f"`chainproof approvers add \"{name}\" --public-key {public}`; then run the same "
                "command again (the key file is used by default, or give --key FILE). README: \"Signed decisions\"")
        return None
    key = ApproverKeys(audit.engine).active(signer.key_id)
    for claimed, what in ((approver, "--as"), (principal.username if principal is not None else None, "signed-in account")):
        if claimed is not None and claimed.strip().casefold() != key.approver.casefold():
            raise ApproverNotAllowed(f"signature: the key {key.key_id[:16]}… is registered to {key.approver!r}, "
                                     f"not {claimed.strip()!r} ({what}); nothing was decided")
    return key


def _decided_at(signer: KeySigner | ClientSignature | None) -> tuple[datetime, str]:
    """When the decision was made, as a time and as the ISO 8601 text signed: now, or the time a
    client signed (``InputError`` when it is no time, or more than
    :data:`CLIENT_CLOCK_SKEW_S` seconds from this host's clock)."""
    if not isinstance(signer, ClientSignature):
        now = datetime.now(UTC)
        return now, now.isoformat()
    try:
        when = datetime.fromisoformat(signer.decided_at)
    except (TypeError, ValueError):
        raise InputError(f"signature.decided_at: expected an ISO 8601 time with its offset, got {signer.decided_at!r}") from None
    if when.tzinfo is None:
        raise InputError(f"signature.decided_at: expected a time with its UTC offset, got {signer.decided_at!r}")
    skew = abs((datetime.now(UTC) - when).total_seconds())
    if skew > CLIENT_CLOCK_SKEW_S:
        raise InputError(f"signature.decided_at: {signer.decided_at} is {skew:.0f} s from this server's clock "
                         f"(at most {CLIENT_CLOCK_SKEW_S} s); sign again")
    return when.astimezone(UTC), signer.decided_at


CLIENT_CLOCK_SKEW_S = 300
"""How far a client's signed ``decided_at`` may be from the server's clock, in seconds (Kerberos'
default maximum clock skew, 5 minutes, RFC 4120 §1.6 / MIT krb5 ``clockskew``)."""


def _signature(key: ApproverKey, signer: KeySigner | ClientSignature, statement: dict[str, Any]) -> str:
    """The signature of ``statement``: made by ``signer`` (a key it holds) or the client's; checked
    against ``key`` either way (``InputError`` malformed, ``ApproverNotAllowed`` not verifying)."""
    from chainproof.checkpoints._approver_keys import signature_problem

    signature = signer.sign(statement) if isinstance(signer, KeySigner) else signer.signature
    problem = signature_problem(key.public_key, statement, signature)
    if problem is not None and "expected" in problem:
        raise InputError(f"{problem}; nothing was decided")
    if problem is not None:
        raise ApproverNotAllowed(f"{problem} of {key.approver!r} (key {key.key_id[:16]}…); nothing was decided")
    return signature


__all__ = ["CLIENT_CLOCK_SKEW_S", "approver_of", "record_decision"]
