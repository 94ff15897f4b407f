"""The approvers' and auditors' pages: the approval inbox (approve, reject with a reason, or edit
with a field-by-field diff checked against the request's schema and confirmed before it is
sent) and the trace timeline (every step expandable to its prompts, outputs, tool calls, review,
approval and cost; verify and replay on demand).

Decisions go through ``_routes_decide.submit_decision``: the same checks as the API (the signed-in
account against the graph's policy, request id, checkpoint and the hash of the proposal shown).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from chainproof.checkpoints.accounts import Principal
from chainproof.errors import ApprovalRefused, ApproverNotAllowed, InputError, RunNotFound
from chainproof.web import _json
from chainproof.web._forms import diff, form_fields, read_form, schema_of_values
from chainproof.web._pages import Form, need, poster, render, viewer
from chainproof.web._routes_decide import Decision, pending_rows, submit_decision
from chainproof.web._routes_runs import visible_run
from chainproof.web._security import _line as one_line

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(viewer)]
INBOX = ("approver", "auditor")


def _evidence(proposed: Any) -> list[str]:
    """Finding ids the proposal cites (``reasons[].evidence`` keys such as ``market_risk.var``)."""
    reasons = proposed.get("reasons") if isinstance(proposed, dict) else None
    keys = [k for r in reasons or [] if isinstance(r, dict) for k in r.get("evidence") or []]
    return list(dict.fromkeys(str(k).split(".")[0] for k in keys))


@router.get("/inbox")
def inbox_page(request: Request, who: Viewer) -> HTMLResponse:
    """Open requests across the runs ``who`` may see; the decision forms only on the requests
    the run's approval policy lets ``who`` answer (``may_decide``; ``decide`` refuses the others)."""
    need(who, *INBOX)
    rows = pending_rows(request.app.state, who, limit=200)
    for row in rows:
        row["evidence"] = _evidence(row["proposed"])
    return render(request, "inbox.html", who=who, requests=rows)


def _request(request: Request, who: Principal, run_id: str, request_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The open request and the JSON schema its edits must fit (from the graph's
    ``approval_schema``; the proposal's own shape when the graph gives none).
    ``ApproverNotAllowed`` (403) when the run's policy does not let ``who`` decide it."""
    from chainproof.graphs.registry import get_spec

    visible_run(request, run_id, who)
    row = next((r for r in pending_rows(request.app.state, who, limit=10_000)
                if r["run_id"] == run_id and r["request_id"] == request_id), None)
    if row is None:
        raise RunNotFound(f"request_id: no open request {request_id!r} on run {run_id}; it may have been decided")
    if not row["may_decide"]:
        raise ApproverNotAllowed(f"approver: {who.username!r} may not decide for graph {row['graph']} (its approval policy)")
    model = get_spec(row["graph"]).approval_schema(row["request_subject"] or "decision")
    return row, (model.model_json_schema() if model is not None else schema_of_values(row["proposed"] or {}))


def _edit_form(request: Request, who: Principal, row: dict[str, Any], schema: dict[str, Any], values: dict[str, Any],
               comment: str, error: str | None, status: int = 200) -> HTMLResponse:
    return render(request, "edit.html", status, who, req=row, fields=form_fields(schema, values), comment=comment,
                  error=error)


@router.get("/inbox/{run_id}/{request_id}/edit")
def edit_page(run_id: str, request_id: str, request: Request, who: Viewer) -> HTMLResponse:
    need(who, "approver")
    row, schema = _request(request, who, run_id, request_id)
    return _edit_form(request, who, row, schema, row["proposed"], "", None)


def _check_edit(graph: str, subject: str, edited: dict[str, Any]) -> None:
    """Refuse (``ApprovalRefused`` naming the field) an edit that does not fit the request's schema."""
    from chainproof._boundaries import validate_edit
    from chainproof.graphs.registry import get_spec

    model = get_spec(graph).approval_schema(subject)
    if model is None:
        return
    try:
        validate_edit(model, edited)
    except InputError as exc:
        raise ApprovalRefused(str(exc)) from None
    except ValidationError as exc:
        raise ApprovalRefused(one_line(exc)) from None


@router.post("/inbox/{run_id}/{request_id}/edit")
def edit_preview(run_id: str, request_id: str, request: Request, form: Form) -> HTMLResponse:
    """The edit as a field-by-field diff, checked against the schema, to confirm; or the form
    again with the refusal naming the field (422)."""
    who = need(poster(request, form), "approver")
    row, schema = _request(request, who, run_id, request_id)
    before = row["proposed"] or {}
    edited = read_form(schema, {k[3:]: v for k, v in form.items() if k.startswith("in_")}, before)
    comment = form.get("comment", "")
    try:
        if edited == before:
            raise ApprovalRefused("edited: no field was changed; approve instead, or change a field")
        _check_edit(row["graph"], row["request_subject"] or "decision", edited)
    except ApprovalRefused as exc:
        return _edit_form(request, who, row, schema, edited, comment, one_line(exc), 422)  # redacted
    return render(request, "confirm.html", who=who, req=row, changes=diff(before, edited), comment=comment,
                  edited_json=json.dumps(edited, ensure_ascii=False))


@router.post("/inbox/{run_id}/{request_id}/decide")
def decide(run_id: str, request_id: str, request: Request, form: Form) -> Response:
    """Approve, reject (``comment`` required) or edit (``edited``: the confirmed proposal as JSON)
    as the signed-in approver; then to the live run."""
    who = need(poster(request, form), "approver")
    action = form.get("action", "")
    edited = None
    if action == "edit":
        try:
            edited = json.loads(form.get("edited", ""))
        except json.JSONDecodeError:
            raise InputError("edited: expected the confirmed proposal as a JSON object") from None
    body = Decision.model_validate({"action": action, "request_id": request_id, "edited": edited,  # 422 naming a bad action
                                    "proposed_hash": form.get("proposed_hash") or None, "comment": form.get("comment") or None})
    submit_decision(request, who, run_id, body)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


def _timeline(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Steps in order, each with its model calls, tool calls, reviews and approvals; and the
    records of no step (run events, approvals outside a step)."""
    steps: dict[int, dict[str, Any]] = {}
    anchored: set[str] = set()  # a finding's anchor is on the first step of its plan step
    for r in records:
        if r["table"] == "steps":
            plan_step = (r.get("inputs") or {}).get("plan_step") if isinstance(r.get("inputs"), dict) else None
            anchor = plan_step if isinstance(plan_step, str) and plan_step not in anchored else None
            anchored.add(anchor or "")
            steps[r["step_no"]] = {**r, "model_calls": [], "tool_calls": [], "reviews": [], "approvals": [],
                                   "finding": anchor}
    loose = []
    for r in records:
        owner = steps.get(r["step_no"]) if r["table"] != "steps" and isinstance(r.get("step_no"), int) else None
        if owner is not None and r["table"] in owner:
            owner[r["table"]].append(r)
        elif r["table"] != "steps":
            loose.append(r)
    return list(steps.values()), loose


@router.get("/runs/{run_id}/trace")
def trace_page(run_id: str, request: Request, who: Viewer, check: str = "") -> HTMLResponse:
    """Every step of the run, expandable; ``check=verify`` / ``check=replay`` adds that result
    ("intact" / "identical" when all is well)."""
    from chainproof.checkpoints.export import totals
    from chainproof.checkpoints.verify import verify_run

    need(who, "analyst", "approver", "auditor")
    header = visible_run(request, run_id, who)
    state = request.app.state
    records = state.reader.records(run_id)
    steps, loose = _timeline([_json.record(r) for r in records])
    verify = replay = None
    if check == "verify":
        verify = _json.jsonable(verify_run(state.reader, run_id).as_dict())
    elif check == "replay":
        report = state.engine.replay(run_id)
        first = report.first_divergence
        replay = {"outcome": report.outcome, "model_calls": report.model_calls_served,
                  "tool_calls": report.tool_calls_served, "duration_s": report.duration_s,
                  "divergence": _json.jsonable(first.differences) if first else None,
                  "divergence_step": first.step_no if first else None}
    return render(request, "trace.html", who=who, run=_json.run_summary(header, state.reader.run_status(run_id)),
                  steps=steps, loose=loose, totals=_json.jsonable(totals(records)), verify=verify, replay=replay)


__all__ = ["router"]
