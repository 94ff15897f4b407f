"""The approval inbox: pending requests, and approve / reject / edit bound to one request.

A decision goes through :meth:`chainproof.app.Chainproof.decide` with the signed-in account as
the approver (never a typed name), signed with the account's server-held key unless the client
signed it itself (``chainproof/web/_account_keys.py``): the request id, the checkpoint the run paused at and the hash
of the proposal the approver saw (``proposed_hash``, required: 422 without it) must all still hold; a stale or second
decision is refused with 409 and nothing recorded. The decision is recorded before the response;
the run then continues as after ``chainproof approve`` (``Chainproof.decide`` with ``wait=False``): a
run submitted to workers is woken on its DBOS queue for whichever ``chainproof worker`` is free
(status ``queued``); any other run continues in this process in the background (``resume``
applies the recorded decision).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from chainproof.checkpoints.accounts import Principal
from chainproof.web import _json
from chainproof.web._routes_runs import visible_run
from chainproof.web._security import NAME_MAX_CHARS, TEXT_MAX_CHARS, role, sees

router = APIRouter(prefix="/api", tags=["approvals"])


class SignatureIn(BaseModel):
    """A client's Ed25519 signature over the decision statement (``checkpoints/_approver_keys.py``:
    ``decision_statement`` with the request's ``signing`` fields from /api/pending, this
    decision's action, edited values and comment, the approver the key is registered to, the key
    id and ``decided_at``)."""

    key_id: str = Field(min_length=64, max_length=64, description="SHA-256 (hex) of the raw Ed25519 public key")
    signature: str = Field(min_length=1, max_length=200, description="the Ed25519 signature, base64")
    decided_at: str = Field(min_length=1, max_length=64, description="the signed time, ISO 8601 with offset")


class Decision(BaseModel):
    """One answer to a pending request (as ``chainproof approve|reject|edit``)."""

    action: Literal["approve", "reject", "edit"]
    request_id: str = Field(min_length=1, max_length=NAME_MAX_CHARS,
                            description="the request answered (from /api/pending or the paused event)")
    proposed_hash: str = Field(pattern="^[0-9a-f]{64}$",
                               description="SHA-256 (hex) of the proposal you saw, from /api/pending or the paused "
                                           "event: required, so a decision never applies to a proposal its "
                                           "approver did not see; refused (409) if it changed")
    comment: str | None = Field(default=None, max_length=TEXT_MAX_CHARS, description="required to reject")
    edited: dict[str, Any] | None = Field(default=None, description="edit: the whole replacement proposal")
    changes: list[Annotated[str, Field(max_length=TEXT_MAX_CHARS)]] | None = Field(
        default=None, max_length=200, description="edit: FIELD=VALUE assignments (VALUE as JSON if it parses)")
    signature: SignatureIn | None = Field(default=None, description="a client's own signature; without it the server signs with the account's key")


def may_decide(state: Any, who: Principal, run: Any) -> bool:
    """Whether ``who`` holds the approver role and the approval policy ``run`` started with (its
    ``run_started`` record; ``_wiring.recorded_policy``) allows the account by name or policy
    role: what ``Chainproof.decide`` checks, asked before offering the decision."""
    from chainproof import _wiring
    from chainproof.errors import GraphNotFound
    from chainproof.graphs.registry import get_spec

    if not who.has("approver"):
        return False
    started = state.reader.last_event(run.run_id, "run_started")
    try:
        policy = _wiring.recorded_policy((started.detail or {}) if started is not None else {}, state.settings,
                                         run.graph, get_spec(run.graph))
    except GraphNotFound:  # a graph no longer installed: the decision would be refused anyway
        return False
    return policy.allows(who.username, {who.username: sorted(who.roles)})


def pending_rows(state: Any, who: Principal, limit: int = 50) -> list[dict[str, Any]]:
    """Open requests ``who`` may see, newest runs first: run, graph, subject, department,
    request id, step, proposal and its hash, question, the reasons approval was asked, created_at,
    ``may_decide`` (:func:`may_decide`: whether ``who`` may answer it) and ``signing``: the fields
    a client signature binds that come from the pause (run, thread, checkpoint, interrupt,
    request, proposal hash). Shared by the API and the inbox page."""
    out: list[dict[str, Any]] = []
    for run, rows in state.reader.open_requests():
        if not sees(who, run, state.settings.auth.analysts_see_all_runs):
            continue
        allowed = may_decide(state, who, run)
        paused = state.reader.last_event(run.run_id, "run_paused")
        binding = (paused.detail or {}) if paused is not None else {}
        for r in rows:
            bound: dict[str, Any] = next((b for b in binding.get("requests", []) if b.get("request_id") == r.request_id), {})
            signing = {"run_id": run.run_id, "thread_id": run.run_id, "checkpoint_id": binding.get("checkpoint_id"),
                       "interrupt_id": bound.get("interrupt_id"), "request_id": r.request_id,
                       "proposed_hash": r.proposed_hash}
            out.append(_json.jsonable({"signing": signing, "run_id": run.run_id, "graph": run.graph, "subject": run.company,
                                       "department": run.department, "request_id": r.request_id, "step_no": r.step_no,
                                       "proposed_hash": r.proposed_hash, "question": r.payload.get("question"),
                                       "request_subject": r.payload.get("subject"),
                                       "reasons": r.payload.get("reasons"), "proposed": r.payload.get("proposed"),
                                       "created_at": r.created_at, "may_decide": allowed}))
    return out[:limit]


def submit_decision(request: Request, who: Principal, run_id: str, body: Decision) -> dict[str, Any]:
    """Record ``body`` as ``who``'s decision on ``run_id`` (refusals: ``ApprovalRefused`` 409,
    ``ApproverNotAllowed`` 403, nothing recorded) and continue the run: a worker-owned run is
    queued for the workers (``Chainproof.decide`` enqueues it), any other is resumed in this
    process in the background. ``status``: ``queued`` or ``resumed``. Shared by
    the API and the inbox page. The decision is signed: by the client when ``body`` carries a
    signature, else with the account's server-held key (``chainproof/web/_account_keys.py``)."""
    from chainproof.checkpoints._approver_keys import ClientSignature, KeySigner
    from chainproof.web._account_keys import account_signer

    state = request.app.state
    visible_run(request, run_id, who)
    signer: ClientSignature | KeySigner = (
        ClientSignature(**body.signature.model_dump()) if body.signature is not None
        else account_signer(state.engine.audit.engine, state.settings.home, who))  # the account's server-held key
    result = state.engine.decide(run_id, action=body.action, principal=who, comment=body.comment, edited=body.edited,
                                 changes=body.changes, request_id=body.request_id, proposed_hash=body.proposed_hash,
                                 wait=False, signer=signer)
    if result.status != "queued":  # not a worker's run: a worker would never be told of it
        state.runner.submit(run_id, "resume", lambda: state.engine.resume(run_id, by=who.username))
    decided = state.reader.decision_for(body.request_id)
    return {"run_id": run_id, "request_id": body.request_id, "action": body.action, "approver": who.username,
            "status": result.status,
            "decided_hash": decided.payload.get("decided_hash") if decided is not None else None,
            "events": f"/api/runs/{run_id}/events"}


@router.get("/pending", summary="Open approval requests across runs, newest runs first")
def pending(request: Request, who: Annotated[Principal, Depends(role("approver", "auditor", "analyst"))],
            limit: int = 50) -> list[dict[str, Any]]:
    return pending_rows(request.app.state, who, limit)


@router.post("/runs/{run_id}/decisions", status_code=202, summary="Approve, reject or edit a pending request")
def decide(run_id: str, body: Decision, request: Request,
           who: Annotated[Principal, Depends(role("approver"))]) -> dict[str, Any]:
    return submit_decision(request, who, run_id, body)


__all__ = ["Decision", "SignatureIn", "may_decide", "pending_rows", "router", "submit_decision"]
