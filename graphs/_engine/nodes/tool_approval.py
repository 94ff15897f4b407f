"""Approval of the tool calls an agent step's model asks for, when the tool is tagged
``requires_approval`` (``@tool(requires_approval=True)``, :mod:`chainproof.graphs.tool`), on the
approval machinery the final decision uses (requests, ``interrupt()``, ``Chainproof.decide`` and
its binding checks, the policy's approvers, ``chainproof pending|approve|reject|edit``).

As LangChain's ``HumanInTheLoopMiddleware`` (the anchor for tool approvals): after the model
answers and before any tool runs, every call of an approval tool is put to a person, who may
approve it, reject it (the model gets a tool message with the reason, status ``error``) or edit its
arguments; then the reply's calls run, as decided. Three kinds of super-step:

1. ``agent``, iteration k: the model's reply asks for a valid call of an approval tool. Nothing of
   that reply runs. The step records the model call and one ``requested`` approvals row per such
   call; the reply's calls wait in ``agent["held"]``. A request's ``subject`` is
   ``tool:NAME:TOOL_CALL_ID``, its ``proposed`` the call's arguments, its ``proposed_hash`` their
   SHA-256, its id a UUID5 of (run, step number, tool_call_id); the ``run_paused`` event binds it
   to the checkpoint. So a decision is bound to (run, checkpoint, tool_call_id, hash of the
   arguments), and an edit is checked against the tool's schema before anything is recorded
   (``graphs/_engine/approvals.py: check_tool_edit``, called by ``Chainproof.decide``).
2. ``approve_tool`` (the ``approve`` node under a second name, one LangGraph ``Send`` per request):
   ``interrupt()``; on resume it accepts only the decision the audit store recorded, and records
   the human decision as its own step.
3. ``agent`` again: the reply's calls run as decided (an edited call with the edited arguments,
   checked again; a rejected one never), recorded as the step "iteration k, after approval"; then
   the loop goes on. Replay serves the recorded decisions at the interrupts and the recorded tool
   results, with zero model calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from langgraph.types import Send

from chainproof._boundaries import check_call_args
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.graphs._engine.approvals import request_id
from chainproof.graphs._engine.state import ApprovalTask
from chainproof.graphs.approval import ApprovalRefused, ApprovalRequest, tool_call_of, tool_subject
from chainproof.graphs.recorder import StepRecorder
from chainproof.graphs.spec import PlanStep
from chainproof.values import encode_value

NODE = "approve_tool"
"""The node that pauses for one tool-call request."""


def calls_to_hold(approval_tools: frozenset[str], tool_defs: Mapping[str, Any], calls: Sequence[Mapping[str, Any]],
                  names: Sequence[str]) -> list[Mapping[str, Any]]:
    """The calls among ``calls`` that need a person's approval: valid calls (their arguments fit
    the schema) of a tool among the step's ``names`` tagged ``requires_approval``. An invalid call
    never runs, so it is shown back to the model without asking anyone."""
    return [c for c in calls if c["name"] in approval_tools and c["name"] in names
            and check_call_args(tool_defs[c["name"]], c["name"], c["args"]) is None]


def open_requests(rec: StepRecorder, state: Mapping[str, Any], step: PlanStep, calls: Sequence[Mapping[str, Any]],
                  redactor: Any) -> list[dict[str, Any]]:
    """One approval request per call in ``calls`` (JSON, as the interrupt shows it), each recorded
    as a ``requested`` approvals row of ``rec``'s step; their step numbers follow ``rec``'s."""
    requests = []
    for i, c in enumerate(calls):
        step_no = rec.step_no + 1 + i
        proposed = redactor(encode_value(dict(c["args"]), where=f"tool {c['name']}", root="args"))
        request = ApprovalRequest(
            request_id=request_id(rec.run_id, step_no, c["id"]), run_id=rec.run_id, node=NODE,
            subject=tool_subject(c["name"], c["id"]),
            question=f"Run tool {c['name']} with these arguments (agent step {step.id!r}, call {c['id']})?",
            reasons=[f"tool {c['name']} requires approval before it runs"], step_no=step_no, proposed=proposed,
            proposed_hash=sha256_hex(proposed), evidence_summary=list(state.get("summary", []))[-8:],
            created_at=datetime.now(UTC)).model_dump(mode="json")
        rec.extra_records.append(ApprovalRecord(
            step_no=rec.step_no, request_id=request["request_id"], action="requested", approver=None, comment=None,
            proposed_hash=request["proposed_hash"], payload=request))
        requests.append(request)
    return requests


def sends(state: Mapping[str, Any]) -> list[Send]:
    """One ``Send("approve_tool", ApprovalTask)`` per request of the held calls."""
    held = (state.get("agent") or {})["held"]
    return [Send(NODE, ApprovalTask(run_id=state["run_id"], round=state.get("round", 0), request=r))
            for r in held["requests"]]


def verdicts(state: Mapping[str, Any], held: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """tool_call_id -> the person's answer (as the ``approve`` task put it in ``approvals``) for
    each held request. Raises ``ApprovalRefused`` for a request without one (the approve tasks
    run before the agent resumes, so this means the state was changed by hand)."""
    answers = {a["request_id"]: a for a in state.get("approvals", [])}
    out = {}
    for r in held["requests"]:
        answer = answers.get(r["request_id"])
        call = tool_call_of(r["subject"])
        if answer is None or call is None:
            raise ApprovalRefused(f"request {r['request_id']} ({r['subject']}) has no decision; the held tool calls "
                                  "cannot run")
        out[call[1]] = answer
    return out


__all__ = ["NODE", "calls_to_hold", "open_requests", "sends", "verdicts"]
