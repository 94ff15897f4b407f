"""The decision and its approval: ``decide`` (the typed final decision, and one approval request
per item when the policy asks), ``approve`` (one ``Send`` task per request, each pausing with
``interrupt()``), ``settle`` (joins the round's answers; an edit replaces the decision, a
rejection may go back to ``plan``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt

from chainproof._boundaries import decision_form
from chainproof.agents.structured import invoke_structured
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import ApprovalRecord
from chainproof.graphs._engine.approvals import request_id
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.prompts import own_messages, step_messages
from chainproof.graphs._engine.state import ApprovalTask, ChainState
from chainproof.graphs.approval import ApprovalAnswer, ApprovalRefused, ApprovalRequest, tool_call_of
from chainproof.graphs.approval_policy import RunFacts
from chainproof.graphs.recorder import StepRecorder
from chainproof.graphs.routing import Task
from chainproof.graphs.spec import decide_attempts_of
from chainproof.graphs.view import ChainView
from chainproof.values import encode_value


def decide(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Ask for the typed decision (lenient parse, retries with the validation error, then the
    spec's fallback; after a review ended the run early, the best answer the findings support,
    told why it stopped); when the approval policy says so, open one request per approval item
    (recorded as ``requested``; their step numbers are reserved here)."""
    ctx = runtime.context
    spec = ctx.spec
    view = ChainView(state)
    task = spec.decision_prompt(view)
    term = state.get("termination")
    if term:  # a review ended the run: still the best answer available, never silence
        task = (f"The run was ended early by the {term.get('by', 'review')} after {term.get('at_step')} plan steps: "
                f"{term.get('reason')}. Give the best answer the findings so far support, and say in it what could "
                f"not be established.\n\n{task}")
    direct = None if term else _direct(spec, view)
    route = ctx.route(state, Task(task, structured=True), spec.decide_effort, "the graph's decide node")
    effort = None if direct is not None else route.effort
    # the title says whether approval may be asked: by a node rule or a condition of the policy
    asks = "decide" in ctx.approval_policy.nodes or bool(ctx.approval_policy.conditions)
    with ctx.recorder(state, "decide", "decide", "Decide and request approval" if asks else "Decide", effort=effort,
                      effort_reason=None if direct is not None else route.reason) as rec:
        raised: dict[str, Any] = {}
        errors: list[str] = []
        if direct is not None:  # the spec built it from the findings (ChainSpec.direct_decision): no model call
            rec.inputs = {"by": "code"}
            value, fallback = direct, False
        else:
            own = own_messages(spec.decision_messages(view, task), f"{type(spec).__name__}.decision_messages")
            messages = own if own is not None else step_messages(spec, state, task)
            attempts = decide_attempts_of(spec)
            model = ctx.models.json_chat(route.effort, spec.decision_schema)
            raised = ctx.guard(state, "decide", route.effort, model, messages, attempts)
            rec.inputs = {**route.recorded(), **({"termination": term} if term else {})}
            outcome = invoke_structured(
                model, messages, spec.decision_schema, effort=route.effort, max_attempts=attempts,
                validate=lambda d: spec.check_decision(d, view),
                **ctx.access.structured(ctx.uses_cache(state, "decide")),
            )
            rec.model_calls(outcome.calls)
            errors = outcome.errors
            fallback = outcome.value is None
            value = spec.fallback_decision(view, outcome.errors) if fallback else outcome.value
            if value is None:  # the spec has no fallback: fail the step (the run stays resumable)
                rec.output = {"errors": outcome.errors}
                value = outcome.require(spec.decision_schema)  # raises: no valid answer and no fallback
        decision = decision_form(value)  # value contract: JSON where the schema restores it exactly, else tagged
        rec.output = {"decision": decision, "fallback": fallback, "errors": errors,
                      **({"by": "code"} if direct is not None else {})}
        facts = RunFacts(decision=decision, tools_used=state.get("tools_used", []), sensitive_tools=ctx.sensitive,
                         cost_usd=ctx.cost_of_run(state["run_id"]))
        reasons = ctx.approval_policy.reasons("decide", facts)
        requests = []
        for i, item in enumerate(spec.approval_items(value, view) if reasons else []):
            # hash what is stored and shown: the proposal as redacted (a phrase such as
            # "authorization: outstanding" is redacted, and the approver sees the redacted text)
            proposed = ctx.audit.redactor(encode_value(item.proposed, where=f"approval item {item.subject}"))
            request = ApprovalRequest(
                request_id=request_id(state["run_id"], rec.step_no + 1 + i), run_id=state["run_id"], node="approve",
                subject=item.subject, question=item.question, reasons=reasons, step_no=rec.step_no + 1 + i,
                proposed=proposed, proposed_hash=sha256_hex(proposed), evidence_summary=state.get("summary", [])[-8:],
                created_at=datetime.now(UTC),
            ).model_dump(mode="json")
            rec.extra_records.append(ApprovalRecord(
                step_no=rec.step_no, request_id=request["request_id"], action="requested", approver=None,
                comment=None, proposed_hash=request["proposed_hash"], payload=request,
            ))
            requests.append(request)
        rec.output["approval_reasons"] = reasons
    # the approval steps' numbers are reserved here, so parallel approve tasks never write "step"
    return {"decision": {**decision, "_fallback": fallback}, "requests": requests,
            "step": rec.step_no + len(requests), **raised}


def _direct(spec: Any, view: ChainView) -> Any:
    """The spec's code-built decision (:meth:`~chainproof.graphs.spec.ChainSpec.direct_decision`)
    when it gives one that passes its own :meth:`check_decision`, else None (the model decides)."""
    value = spec.direct_decision(view)
    if value is None:
        return None
    try:
        spec.check_decision(value, view)
    except ValueError:
        return None
    return value


def after_decide(state: ChainState) -> list[Send] | str:
    """One ``Send("approve", ApprovalTask)`` per open request, else ``report``."""
    requests = state.get("requests") or []
    if not requests:
        return "report"
    return [Send("approve", ApprovalTask(run_id=state["run_id"], round=state.get("round", 0), request=r))
            for r in requests]


def approve(task: ApprovalTask, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Pause for one request (interrupt value: the request, a :class:`chainproof.types.ApprovalPause`
    as JSON); on resume, accept the answer only if the ledger recorded it (``ApprovalRefused``)."""
    # Nothing before interrupt(): this runs again from the top on every resume of the run.
    audit = runtime.context.audit
    request = ApprovalRequest.model_validate(task["request"])
    answer = ApprovalAnswer.model_validate(interrupt(task["request"]))
    recorded = audit.decision_for(request.request_id)
    if (answer.request_id != request.request_id or recorded is None
            or (recorded.action, recorded.approver) != (answer.action, answer.approver)):
        raise ApprovalRefused(
            f"request {request.request_id}: the answer was not recorded in the audit store; "
            "answer through Chainproof.decide (chainproof approve|reject|edit), which records it first")
    with StepRecorder(audit, task["run_id"], request.step_no, "approve", "approval",
                      "Human decision" + ("" if request.subject == "decision" else f" on {request.subject}")
                      + f": {answer.action}", progress=runtime.context.progress) as rec:
        rec.inputs = {"request_id": request.request_id, "subject": request.subject}
        rec.output = answer.model_dump(mode="json")
    return {"approvals": [{**answer.model_dump(mode="json"), "subject": request.subject, "question": request.question,
                           "round": task["round"], "proposed_hash": request.proposed_hash}]}


def settle(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Join the round's answers: an edit of the decision replaces it; a rejection replans when the
    policy says ``on_reject="replan"`` and replans are left. Answers on an agent's tool calls
    (``tool:`` subjects) were applied by the agent step and take no part."""
    round_no = state.get("round", 0)
    answers = [a for a in state.get("approvals", []) if a["round"] == round_no and tool_call_of(a["subject"]) is None]
    main = next((a for a in answers if a["subject"] == "decision"), None)
    update: dict[str, Any] = {"approval": main}
    if main and main["action"] == "edit":
        update["decision"] = {**main["edited"], "_edited_by": main["approver"]}
    policy = runtime.context.approval_policy
    if any(a["action"] == "reject" for a in answers) and policy.on_reject == "replan" and round_no < policy.max_replans:
        update.update(replan=True, round=round_no + 1)
    return update


def after_settle(state: ChainState) -> str:
    return "plan" if state.get("replan") else "report"
