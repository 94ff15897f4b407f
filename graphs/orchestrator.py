"""The generic orchestrator: one LangGraph ``StateGraph`` that runs any :class:`ChainSpec`.

Shape (a loop over a few nodes, not one node per step: with LangGraph every distinct node adds
``channel_versions`` entries to every checkpoint, and an ever-growing message list makes
checkpoint size quadratic; see ``bench/`` and the README)::

    START → plan → act ⇄ observe → decide → approve → report → END

* ``plan``: validates the inputs, writes the goal and the plan.
* ``act``: runs the next plan step: a tool call, or a reasoning call to the model.
* ``observe``: turns the result into a :class:`Finding` (the model interprets tool output), then
  loops to ``act`` while plan steps remain, else goes to ``decide``.
* ``decide``: asks the model for the typed final decision (lenient parse, retries with the
  validation error, then the spec's recorded fallback) and opens the approval request.
* ``approve``: pauses with LangGraph ``interrupt()`` until a named person answers.
* ``report``: renders and writes the Markdown report.

State stays bounded (goal, remaining plan, findings, a rolling summary); the full trace goes to
the audit store, one step row per super-step.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from agents.calls import call_model
from agents.config import Effort
from agents.models import ModelProvider
from agents.structured import invoke_structured
from checkpoints.audit import AuditStore
from checkpoints.audit_hashing import sha256_hex
from checkpoints.audit_schema import ApprovalRecord
from graphs.approval import ApprovalAnswer, ApprovalRequest, check_answer
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
    decision: dict[str, Any] | None
    request: dict[str, Any] | None
    approval: dict[str, Any] | None
    report_path: str | None


@dataclass
class Runtime:
    """What the nodes need besides the state: the graph spec, models, the audit store, where
    reports go, and an optional effort override for every step (CLI ``--effort``)."""

    spec: ChainSpec
    models: ModelProvider
    audit: AuditStore
    reports_dir: Path
    effort_override: Effort | None = None

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

    def recorder(state: ChainState, node: str, kind: str, title: str, **kw: Any) -> StepRecorder:
        return StepRecorder(audit, state["run_id"], state.get("step", 0) + 1, node, kind, title, **kw)

    def plan(state: ChainState) -> dict[str, Any]:
        with recorder(state, "plan", "plan", "Plan the chain") as rec:
            steps = spec.plan(state["inputs"])
            unknown = [s.tool for s in steps if s.kind == "tool" and s.tool not in tools]
            if unknown:
                raise KeyError(f"plan uses unknown tool(s) {unknown}; available: {sorted(tools)}")
            rec.inputs = {"goal": state["goal"], "inputs": state["inputs"]}
            rec.output = {"plan": [s.model_dump(mode="json") for s in steps]}
        return {"plan": [s.model_dump(mode="json") for s in steps], "completed": [], "step": rec.step_no,
                "findings": {}, "summary": []}

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
            return {"pending": {"step": step.model_dump(mode="json"), "result": result}, "step": rec.step_no}
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
            if value is None:  # the spec has no fallback: fail the step (the run stays resumable)
                rec.output = {"errors": outcome.errors}
                outcome.require(spec.decision_schema)
            decision = value.model_dump(mode="json")
            rec.output = {"decision": decision, "fallback": fallback, "errors": outcome.errors}
            question = spec.approval_question(value, dict(state))
            request = None
            if question:
                request = ApprovalRequest(
                    request_id=uuid.uuid4().hex, run_id=state["run_id"], node="approve", question=question,
                    proposed=decision, proposed_hash=sha256_hex(decision),
                    evidence_summary=state.get("summary", [])[-8:], created_at=datetime.now(timezone.utc),
                ).model_dump(mode="json")
                rec.extra_records.append(ApprovalRecord(
                    step_no=rec.step_no, request_id=request["request_id"], action="requested", approver=None,
                    comment=None, proposed_hash=request["proposed_hash"], payload=request,
                ))
        return {"decision": {**decision, "_fallback": fallback}, "request": request, "step": rec.step_no}

    def approve(state: ChainState) -> dict[str, Any]:
        request = state.get("request")
        if not request:
            return {"approval": None}
        raw = interrupt(request)  # pauses here; on resume returns the human's answer
        answer = check_answer(
            ApprovalAnswer.model_validate(raw), ApprovalRequest.model_validate(request), spec.decision_schema
        )
        with recorder(state, "approve", "approval", f"Human decision: {answer.action}") as rec:
            rec.inputs = {"request_id": request["request_id"]}
            rec.output = answer.model_dump(mode="json")
            rec.extra_records.append(ApprovalRecord(
                step_no=rec.step_no, request_id=request["request_id"], action=answer.action,
                approver=answer.approver, comment=answer.comment, proposed_hash=request["proposed_hash"],
                payload=answer.model_dump(mode="json"),
            ))
        update: dict[str, Any] = {"approval": answer.model_dump(mode="json"), "step": rec.step_no}
        if answer.action == "edit":
            update["decision"] = {**answer.edited, "_edited_by": answer.approver}
        return update

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
                     ("approve", approve), ("report", report)]:
        builder.add_node(name, fn)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "act")
    builder.add_edge("act", "observe")
    builder.add_conditional_edges("observe", after_observe, {"act": "act", "decide": "decide"})
    builder.add_edge("decide", "approve")
    builder.add_edge("approve", "report")
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer)
