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
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chainproof import _wiring
from chainproof._boundaries import restore_model
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


def approver_of(settings: Settings, approver: str | None, principal: Principal | None) -> str:
    """The name a decision is recorded under: the principal's username, or the typed name.
    ``ApproverNotAllowed`` for a typed name where signed-in approvers are required, or a typed name
    that differs from the principal's; ``InputError`` for neither or a blank name."""
    if principal is not None:
        if approver is not None and approver.strip().casefold() != principal.username.casefold():
            raise ApproverNotAllowed(f"approver: signed in as {principal.username!r}, not {approver!r}; "
                                     "a decision is recorded under the signed-in account")
        return principal.username
    if settings.auth.require_authenticated_approvers:
        raise ApproverNotAllowed("approver: this store requires a signed-in approver "
                                 "(auth.require_authenticated_approvers); sign in with `chainproof login` "
                                 "or decide in the web app")
    if approver is None or not approver.strip():
        raise InputError("approver (--as): a name is required")
    return approver


def record_decision(audit: AuditStore, settings: Settings, run: Any, snapshot: Any, ctx: ChainContext, *,
                    action: ApprovalAction, approver: str | None, principal: Principal | None,
                    comment: str | None, edited: dict[str, Any] | None, changes: list[str] | None,
                    request_id: str | None, proposed_hash: str | None,
                    queue: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check and record one decision on ``run``'s paused thread (``snapshot``: its current state);
    return ``({interrupt_id: answer}, event detail)``: the resume map to continue it with, and the
    detail of the event recorded with the decision (``run_resumed``; ``run_queued`` with the
    ``queue`` and the ``workflow_id`` that wakes it when the run was submitted to workers).
    Refusals (``ApprovalRefused``, with ``ApproverNotAllowed`` for who) record and run nothing.
    ``proposed_hash``: the SHA-256 of the proposal the approver saw (the request's
    ``proposed_hash``); refused when it differs. The caller holds the run's lock."""
    run_id, spec = run.run_id, ctx.spec
    name = approver_of(settings, approver, principal)
    pending = approvals.approvals_of(approvals.pauses_of(snapshot))
    request = approvals.target(audit, run_id, pending, request_id)
    checkpoint_id = snapshot.config["configurable"]["checkpoint_id"]
    approvals.check_binding(audit, run_id, request, checkpoint_id, pending)
    if proposed_hash is not None and proposed_hash != request.proposed_hash:
        raise ApprovalRefused(f"proposed_hash: request {request.request_id} proposes {request.proposed_hash[:12]}…, "
                              f"not the {proposed_hash[:12]}… you saw; reload it; pending: {approvals.listing(pending)}")
    if changes:
        edited = apply_changes(edited or request.proposed, changes)
    answer = ApprovalAnswer(request_id=request.request_id, action=action, approver=name, comment=comment,
                            edited=edited, decided_at=datetime.now(UTC))
    policy = ctx.approval_policy
    roles = ({principal.username: sorted(principal.roles)} if principal is not None
             else _wiring.recorded_roles(audit, run_id, settings))
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
    decision = ApprovalRecord(step_no=request.step_no, request_id=request.request_id, action=answer.action,
                              approver=answer.approver, comment=answer.comment, proposed_hash=request.proposed_hash,
                              payload=payload)
    woken: dict[str, Any] = {"request_id": request.request_id, "by": answer.approver}
    if queue is not None:  # a worker applies it: the decision wakes the run on the queue
        woken.update(queue=queue, workflow_id=f"{run_id}:decision:{request.request_id}")
    try:
        audit.append_decision(run_id, decision, EventRecord(
            kind="run_queued" if queue is not None else "run_resumed", detail=woken))
    except AlreadyDecided as exc:
        raise ApprovalRefused(f"{exc}; pending: {approvals.listing(pending)}") from None
    return {request.interrupt_id: audit.redactor(answer.model_dump(mode="json"))}, woken


__all__ = ["approver_of", "record_decision"]
