"""Human approval: the typed request a paused run shows, and the answer that resumes it.

The request is the payload of LangGraph's ``interrupt()``; the answer is the ``Command(resume=…)``
value. An answer is bound to one request by ``request_id`` and to the exact proposal by
``proposed_hash`` (SHA-256 of the proposal's canonical JSON); the runner also binds it to the
checkpoint the run paused at (see :meth:`chainproof.app.Chainproof.decide`). An answer that does not
fit is refused before anything runs or is recorded.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from chainproof._boundaries import decision_form, validate_edit  # value contract
from chainproof.errors import ApprovalRefused, InputError, UnsupportedValue
from chainproof.values import encode_value

ApprovalAction = Literal["approve", "reject", "edit"]
"""A person's answer to an approval request (:class:`ApprovalAnswer`)."""


@dataclass(frozen=True)
class ApprovalItem:
    """One thing a graph asks a person to decide (see ``ChainSpec.approval_items``): ``subject``
    names it (``"decision"`` is the whole final decision; others are graph-defined, e.g.
    ``"matter:2"``), ``proposed`` is the proposed content (JSON object)."""

    subject: str
    question: str
    proposed: dict[str, Any]


TOOL_SUBJECT = "tool:"
"""Prefix of the ``subject`` of a request to run a tool call an agent step's model asked for:
``tool:NAME:TOOL_CALL_ID`` (its ``proposed`` is the call's arguments)."""


def tool_subject(name: str, call_id: str) -> str:
    """The ``subject`` of the approval request of tool call ``call_id`` of tool ``name``."""
    return f"{TOOL_SUBJECT}{name}:{call_id}"


def tool_call_of(subject: str) -> tuple[str, str] | None:
    """``(tool name, tool_call_id)`` of a tool-call request's ``subject``; None for any other."""
    if not subject.startswith(TOOL_SUBJECT):
        return None
    name, _, call_id = subject[len(TOOL_SUBJECT):].partition(":")
    return name, call_id


class ApprovalRequest(BaseModel):
    """What a person is asked to decide. ``subject`` says what is being decided, ``proposed`` the
    proposed action as JSON, ``options`` the allowed actions; ``evidence_summary`` the latest
    findings, one line each; ``reasons`` why the policy asks for approval; ``step_no`` the
    super-step number the decision on it will be recorded under."""

    kind: Literal["approval"] = "approval"
    request_id: str
    run_id: str
    node: str
    subject: str = "decision"
    question: str
    reasons: list[str] = Field(default_factory=list)
    step_no: int = 0
    proposed: dict[str, Any]
    proposed_hash: str
    evidence_summary: list[str] = Field(default_factory=list)
    options: list[str] = Field(default_factory=lambda: ["approve", "reject", "edit"])
    created_at: datetime


class ApprovalAnswer(BaseModel):
    """A named person's answer. ``reject`` needs a ``comment`` (the reason); ``edit`` needs
    ``edited`` (the replacement proposal, validated by the graph's decision schema)."""

    request_id: str
    action: ApprovalAction
    approver: str
    comment: str | None = None
    edited: dict[str, Any] | None = None
    decided_at: datetime | None = None

    @field_validator("approver")
    @classmethod
    def _named(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("a name is required (--as NAME)")
        return v


def check_answer(
    answer: ApprovalAnswer, request: ApprovalRequest, decision_schema: type[BaseModel] | None = None
) -> ApprovalAnswer:
    """Refuse (``ApprovalRefused``) an answer that names another request, a reject without a
    reason, or an edit without content or whose content fails ``decision_schema``. Returns the
    answer, with ``edited`` normalised by the schema, when it fits."""
    if answer.request_id != request.request_id:
        raise ApprovalRefused(
            f"request_id {answer.request_id!r} does not match the pending request {request.request_id!r}"
        )
    if answer.action == "reject" and not (answer.comment or "").strip():
        raise ApprovalRefused("comment: a rejection needs a reason (--comment TEXT)")
    if answer.action == "edit" and not answer.edited:
        raise ApprovalRefused("edited: an edit needs the replacement proposal")
    if answer.action == "edit" and decision_schema is None:  # value contract: stored tagged, never converted
        try:
            answer = answer.model_copy(update={"edited": encode_value(answer.edited, where="edited", root="edited")})
        except UnsupportedValue as exc:
            raise ApprovalRefused(str(exc)) from None
    if answer.action == "edit" and decision_schema is not None and answer.edited is not None:  # edited: required above
        try:  # value contract: nothing dropped or converted; stored as the decision is (decision_form)
            edited = decision_form(validate_edit(decision_schema, answer.edited), where="edited")
        except (InputError, UnsupportedValue) as exc:
            raise ApprovalRefused(f"{exc}; nothing was decided") from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ApprovalRefused(f"edited: the replacement does not fit its schema {decision_schema.__name__}: {problems}") from None
        answer = answer.model_copy(update={"edited": edited})
    return answer


def apply_changes(proposed: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """The proposal with ``FIELD=VALUE`` assignments applied (CLI ``--set``). ``VALUE`` is read as
    JSON when it parses (``0.4``, ``true``, ``["a"]``), else as a string; ``FIELD`` may be a dotted
    path into nested objects (``terms.price``). Raises ``ApprovalRefused`` for a malformed
    assignment or a path through a non-object."""
    result = copy.deepcopy(proposed)  # value contract: tagged JSON or Python values, decoded by validate_edit
    for item in assignments:
        field, sep, raw = item.partition("=")
        if not sep or not field.strip():
            raise ApprovalRefused(f"--set {item!r}: expected FIELD=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *parents, last = field.strip().split(".")
        target = result
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ApprovalRefused(f"--set {item!r}: {part} is not an object")
        target[last] = value
    return result
