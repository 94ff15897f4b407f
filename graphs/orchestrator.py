"""The generic orchestrator: one LangGraph ``StateGraph`` that runs any :class:`ChainSpec`.

Shape (a loop over a few nodes, not one node per step: with LangGraph every distinct node adds
``channel_versions`` entries to every checkpoint, and an ever-growing message list makes
checkpoint size quadratic; see ``bench/`` and the README)::

    START → plan → act ⇄ observe → decide ─(Send × N)→ approve → settle → report → END
                                          └────────(no approval needed)──→ report
            ↑                                                    │
            └──────────── (rejected, policy on_reject="replan") ─┘

* ``plan``: validates the inputs, writes the goal and the plan.
* ``act``: runs the next plan step: a tool call, or a reasoning call to the model.
* ``observe``: turns the result into a :class:`Finding` (the model interprets tool output), then
  loops to ``act`` while plan steps remain, else goes to ``decide``.
* ``decide``: asks the model for the typed final decision (lenient parse, retries with the
  validation error, then the spec's recorded fallback); when the approval policy says so, opens
  one approval request per item of ``spec.approval_items`` (recorded as ``requested``).
* ``approve``: one task per request (LangGraph ``Send``), each pausing with ``interrupt()`` until
  its answer arrives. It does nothing before ``interrupt()``: LangGraph re-runs a paused node from
  its first line on every resume (siblings included), so all preparation lives in ``decide``.
* ``settle``: joins the answers of the round; applies an edit of the decision; on a rejection
  goes back to ``plan`` (policy ``on_reject="replan"``, at most ``max_replans`` times) or on.
* ``report``: renders and writes the Markdown report.

State stays bounded (goal, remaining plan, findings, a rolling summary); the full trace goes to
the audit store, one step row per super-step.
"""

from __future__ import annotations

import operator
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send, interrupt

from agents.calls import call_model
from agents.config import Effort
from agents.models import ModelProvider
from agents.structured import invoke_structured
from checkpoints.audit import AuditStore
from checkpoints.audit_hashing import sha256_hex
from checkpoints.audit_schema import ApprovalRecord
from graphs.approval import ApprovalAnswer, ApprovalRefused, ApprovalRequest
from graphs.approval_policy import ApprovalPolicy, RunFacts
from graphs.prompting import compact_json
from graphs.recorder import StepRecorder
from graphs.spec import ChainSpec, Finding, PlanStep

RECENT_FINDINGS = 5  # findings without keep_data stay in state only while among the latest five
SUMMARY_LINES = 12  # rolling summary length (lines)


class ChainState(TypedDict, total=False):
    """The checkpointed state (plain JSON types only, so checkpoints round-trip exactly)."""

    run_id: str
    graph: str
    goal: str
    inputs: dict[str, Any]
    plan: list[dict[str, Any]]
    completed: list[str]
    step: int
    findings: dict[str, dict[str, Any]]
    summary: list[str]
    pending: dict[str, Any] | None
    tools_used: list[str]
    decision: dict[str, Any] | None
    requests: list[dict[str, Any]] | None
    approvals: Annotated[list[dict[str, Any]], operator.add]
    approval: dict[str, Any] | None
    round: int
    replan: bool
    report_path: str | None


class ApprovalTask(TypedDict):
    """The input of one ``approve`` task (the ``Send`` payload)."""

    run_id: str
    round: int
    request: dict[str, Any]


@dataclass
class Runtime:
    """What the nodes need besides the state: the graph spec, models, the audit store, where
    reports go, an optional effort override for every step (CLI ``--effort``), the approval policy
    (default: the spec's) and how to read a run's cost so far in USD (default: the audit store's
    sum of model-call costs, None while prices are not configured)."""

    spec: ChainSpec
    models: ModelProvider
    audit: AuditStore
    reports_dir: Path
    effort_override: Effort | None = None
    policy: ApprovalPolicy | None = None
    run_cost: Callable[[str], float | None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.policy = self.policy or self.spec.approval_policy()
        self.run_cost = self.run_cost or self.audit.run_cost_usd

    def effort(self, static: Effort | None, default: Effort = "medium") -> tuple[Effort, str]:
        """Effort for a step and why: override > the step's static effort > the default."""
        if self.effort_override:
            return self.effort_override, "override: run config"
        if static:
            return static, "static: set on the plan step"
        return default, "default"


def _resolve(value: Any, inputs: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{inputs.") and value.endswith("}"):
        key = value[len("{inputs.") : -1]
        if key not in inputs:
            raise KeyError(f"plan step argument refers to missing input {key!r}; inputs have {sorted(inputs)}")
        return inputs[key]
    return value


def _progress(state: ChainState) -> str:
    done = ", ".join(state.get("completed", [])) or "none"
    remaining = ", ".join(p["id"] for p in state.get("plan", [])) or "none"
    return f"Steps done: {done}. Steps remaining: {remaining}."


def step_messages(spec: ChainSpec, state: ChainState, instruction: str, material: str = "") -> list:
    """The bounded prompt of a step: goal, progress, rolling summary, then the task and its
    material. Never the whole history."""
    parts = [f"Goal: {state['goal']}", _progress(state)]
    if state.get("summary"):
        parts.append("What we know so far:\n" + "\n".join(f"- {s}" for s in state["summary"]))
    parts.append(f"Your task now: {instruction}")
    if material:
        parts.append(material)
    return [SystemMessage(spec.system_prompt), HumanMessage("\n\n".join(parts))]


def _add_finding(state: ChainState, finding: Finding, keep: bool) -> dict[str, Any]:
    findings = dict(state.get("findings", {}))
    record = finding.model_dump(mode="json")
    record["keep"] = keep
    findings[finding.step_id] = record
    transient = [k for k, f in findings.items() if not f.get("keep")]
    for key in transient[:-RECENT_FINDINGS]:
        del findings[key]
    line = f"{finding.title}: {finding.summary}".replace("\n", " ")
    summary = [*state.get("summary", []), line[:400]][-SUMMARY_LINES:]
    return {"findings": findings, "summary": summary}


def build_graph(runtime: Runtime, checkpointer: BaseCheckpointSaver | None = None):
    """Compile the orchestrator for ``runtime.spec`` with ``checkpointer``.

    Returns a compiled LangGraph graph whose state is :class:`ChainState`. The thread id must be
    the run id (``config={"configurable": {"thread_id": run_id}}``).
    """
    spec, audit = runtime.spec, runtime.audit
    tools = {t.name: t for t in spec.tools()}
    sensitive = sorted(name for name, t in tools.items() if "sensitive" in (t.tags or []))

    def recorder(state: ChainState, node: str, kind: str, title: str, **kw: Any) -> StepRecorder:
        return StepRecorder(audit, state["run_id"], state.get("step", 0) + 1, node, kind, title, **kw)

    def checked(steps: list[PlanStep]) -> list[dict[str, Any]]:
        unknown = [s.tool for s in steps if s.kind == "tool" and s.tool not in tools]
        if unknown:
            raise KeyError(f"plan uses unknown tool(s) {unknown}; available: {sorted(tools)}")
        return [s.model_dump(mode="json") for s in steps]

    def plan(state: ChainState) -> dict[str, Any]:
        if state.get("replan"):
            rejections = [a for a in state.get("approvals", [])
                          if a["round"] == state["round"] - 1 and a["action"] == "reject"]
            with recorder(state, "plan", "plan", "Replan after rejection") as rec:
                steps = checked(spec.replan(dict(state), rejections))
                rec.inputs = {"rejections": [{k: r.get(k) for k in ("request_id", "approver", "comment")} for r in rejections]}
                rec.output = {"plan": steps}
            lines = [f"Rejected by {r['approver']}: {r['comment']}" for r in rejections]
            return {"plan": steps, "step": rec.step_no, "summary": [*state.get("summary", []), *lines][-SUMMARY_LINES:],
                    "requests": None, "approval": None, "replan": False}
        with recorder(state, "plan", "plan", "Plan the chain") as rec:
            steps = checked(spec.plan(state["inputs"]))
            rec.inputs = {"goal": state["goal"], "inputs": state["inputs"]}
            rec.output = {"plan": steps}
        return {"plan": steps, "completed": [], "step": rec.step_no, "findings": {}, "summary": [], "tools_used": []}

    def after_plan(state: ChainState) -> str:
        return "act" if state.get("plan") else "decide"

    def act(state: ChainState) -> dict[str, Any]:
        step = PlanStep.model_validate(state["plan"][0])
        if step.kind == "tool":
            args = {k: _resolve(v, state["inputs"]) for k, v in step.args.items()}
            for name, source in step.args_from_findings.items():
                found = state.get("findings", {}).get(source)
                if not found or found.get("data") is None:
                    raise KeyError(f"plan step {step.id!r} needs the data of finding {source!r}, which is not kept")
                args[name] = found["data"]
            with recorder(state, "act", "tool", f"{step.title} [{step.tool}]") as rec:
                rec.inputs = {"plan_step": step.id, "tool": step.tool, "args": args}
                started = time.perf_counter()
                try:
                    result = tools[step.tool].invoke(args)
                except Exception as exc:
                    rec.tool_call(step.tool, args, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
                    raise
                rec.tool_call(step.tool, args, result, None, time.perf_counter() - started)
                rec.output = {"result": result}
            return {"pending": {"step": step.model_dump(mode="json"), "result": result}, "step": rec.step_no,
                    "tools_used": [*state.get("tools_used", []), step.tool]}
        effort, why = runtime.effort(step.effort)
        with recorder(state, "act", "reason", step.title, effort=effort, effort_reason=why) as rec:
            messages = step_messages(spec, state, step.instruction)
            _, call = call_model(runtime.models.chat(effort), messages, effort=effort)
            rec.model_calls([call])
            rec.inputs = {"plan_step": step.id}
            rec.output = {"text": call.output}
        return {"pending": {"step": step.model_dump(mode="json"), "text": call.output}, "step": rec.step_no}

    def observe(state: ChainState) -> dict[str, Any]:
        pending = state["pending"] or {}
        step = PlanStep.model_validate(pending["step"])
        if step.kind == "tool":
            effort, why = runtime.effort(step.effort)
            with recorder(state, "observe", "observe", f"Interpret {step.title}", effort=effort, effort_reason=why) as rec:
                shown = pending["result"]
                if step.prompt_fields is not None and isinstance(shown, dict):
                    shown = {k: shown[k] for k in step.prompt_fields if k in shown}
                material = "Tool result (JSON):\n" + compact_json(shown)
                messages = step_messages(spec, state, step.instruction, material)
                _, call = call_model(runtime.models.chat(effort), messages, effort=effort)
                rec.model_calls([call])
                rec.inputs = {"plan_step": step.id}
                summary = call.output.strip() or "(the model returned no text)"
                rec.output = {"finding": summary}
            data = pending["result"]
        else:
            with recorder(state, "observe", "observe", f"Record {step.title}") as rec:
                summary = pending.get("text", "").strip() or "(the model returned no text)"
                rec.inputs = {"plan_step": step.id}
                rec.output = {"finding": summary}
            data = None
        finding = Finding(step_id=step.id, title=step.title, summary=summary[:1200],
                          data=data if step.keep_data else None, tool=step.tool, step_no=rec.step_no)
        return {
            **_add_finding(state, finding, step.keep_data),
            "plan": state["plan"][1:],
            "completed": [*state.get("completed", []), step.id],
            "pending": None,
            "step": rec.step_no,
        }

    def after_observe(state: ChainState) -> str:
        return "act" if state.get("plan") else "decide"

    def decide(state: ChainState) -> dict[str, Any]:
        effort, why = runtime.effort(spec.decide_effort, "high")
        with recorder(state, "decide", "decide", "Decide and request approval", effort=effort, effort_reason=why) as rec:
            messages = step_messages(spec, state, spec.decision_prompt(dict(state)))
            outcome = invoke_structured(
                runtime.models.json_chat(effort, spec.decision_schema), messages, spec.decision_schema,
                effort=effort, validate=lambda d: spec.check_decision(d, dict(state)),
            )
            rec.model_calls(outcome.calls)
            fallback = outcome.value is None
            value = spec.fallback_decision(dict(state), outcome.errors) if fallback else outcome.value
            decision = value.model_dump(mode="json")
            rec.output = {"decision": decision, "fallback": fallback, "errors": outcome.errors}
            facts = RunFacts(decision=decision, tools_used=state.get("tools_used", []), sensitive_tools=sensitive,
                             cost_usd=runtime.run_cost(state["run_id"]))
            reasons = runtime.policy.reasons("decide", facts)
            requests = []
            for i, item in enumerate(spec.approval_items(value, dict(state)) if reasons else []):
                request = ApprovalRequest(
                    request_id=uuid.uuid4().hex, run_id=state["run_id"], node="approve", subject=item.subject,
                    question=item.question, reasons=reasons, step_no=rec.step_no + 1 + i, proposed=item.proposed,
                    proposed_hash=sha256_hex(item.proposed), evidence_summary=state.get("summary", [])[-8:],
                    created_at=datetime.now(timezone.utc),
                ).model_dump(mode="json")
                rec.extra_records.append(ApprovalRecord(
                    step_no=rec.step_no, request_id=request["request_id"], action="requested", approver=None,
                    comment=None, proposed_hash=request["proposed_hash"], payload=request,
                ))
                requests.append(request)
            rec.output["approval_reasons"] = reasons
        # the approval steps' numbers are reserved here, so parallel approve tasks never write "step"
        return {"decision": {**decision, "_fallback": fallback}, "requests": requests,
                "step": rec.step_no + len(requests)}

    def after_decide(state: ChainState) -> list[Send] | str:
        requests = state.get("requests") or []
        if not requests:
            return "report"
        return [Send("approve", ApprovalTask(run_id=state["run_id"], round=state.get("round", 0), request=r))
                for r in requests]

    def approve(task: ApprovalTask) -> dict[str, Any]:
        # Nothing before interrupt(): this runs again from the top on every resume of the run.
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
                          + f": {answer.action}") as rec:
            rec.inputs = {"request_id": request.request_id, "subject": request.subject}
            rec.output = answer.model_dump(mode="json")
        return {"approvals": [{**answer.model_dump(mode="json"), "subject": request.subject, "question": request.question,
                               "round": task["round"], "proposed_hash": request.proposed_hash}]}

    def settle(state: ChainState) -> dict[str, Any]:
        round_no = state.get("round", 0)
        answers = [a for a in state.get("approvals", []) if a["round"] == round_no]
        main = next((a for a in answers if a["subject"] == "decision"), None)
        update: dict[str, Any] = {"approval": main}
        if main and main["action"] == "edit":
            update["decision"] = {**main["edited"], "_edited_by": main["approver"]}
        policy = runtime.policy
        if any(a["action"] == "reject" for a in answers) and policy.on_reject == "replan" and round_no < policy.max_replans:
            update.update(replan=True, round=round_no + 1)
        return update

    def after_settle(state: ChainState) -> str:
        return "plan" if state.get("replan") else "report"

    def report(state: ChainState) -> dict[str, Any]:
        with recorder(state, "report", "report", "Write the report") as rec:
            text = spec.render_report(dict(state))
            runtime.reports_dir.mkdir(parents=True, exist_ok=True)
            path = runtime.reports_dir / f"{state['run_id']}.md"
            path.write_text(text, encoding="utf-8")
            rec.output = {"path": str(path), "sha256": sha256_hex(text), "chars": len(text)}
        return {"report_path": str(path), "step": rec.step_no}

    builder = StateGraph(ChainState)
    for name, fn in [("plan", plan), ("act", act), ("observe", observe), ("decide", decide),
                     ("approve", approve), ("settle", settle), ("report", report)]:
        builder.add_node(name, fn)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", after_plan, {"act": "act", "decide": "decide"})
    builder.add_edge("act", "observe")
    builder.add_conditional_edges("observe", after_observe, {"act": "act", "decide": "decide"})
    builder.add_conditional_edges("decide", after_decide, ["approve", "report"])
    builder.add_edge("approve", "settle")
    builder.add_conditional_edges("settle", after_settle, {"plan": "plan", "report": "report"})
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer)
