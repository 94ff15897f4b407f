"""The generic orchestrator: one LangGraph ``StateGraph`` that runs any :class:`ChainSpec`.

Shape (a loop over a few nodes, not one node per step: with LangGraph every distinct node adds
``channel_versions`` entries to every checkpoint, and an ever-growing message list makes
checkpoint size quadratic; see ``bench/`` and the README)::

    START → plan → act ⇄ observe ⇄ review → decide ─(Send × N)→ approve → settle → report → END
                      │                   └─(no approval needed)──────────────→ report
                      └─(review: terminate)──────────────────────────────────────→ report
            ↑                                                        │
            └──────────── (rejected, policy on_reject="replan") ─────┘

* ``plan``: validates the inputs, writes the goal and the plan.
* ``act``: runs the next plan step: a tool call, or a reasoning call to the model.
* ``observe``: turns the result into a :class:`Finding` (the model interprets tool output), then
  loops to ``act`` while plan steps remain, else goes to ``decide``; every ``review_every`` plan
  steps, or when the step budget is reached, it goes to ``review`` first.
* ``review``: the goal review (continue / replan / terminate) or the budget review (pause with
  ``interrupt()``, extend or terminate); see ``graphs/review.py``. ``terminate`` goes to ``report``.
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
the audit store, one step row per super-step. Every node's state update passes through the audit
store's redactor, so secrets never reach the checkpointer, later prompts or the report.
"""

from __future__ import annotations

import functools
import operator
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send, interrupt

from chainproof._boundaries import (  # value contract
    decision_form,  # value contract
    invoke_tool,
    refusal_stop,
)
from chainproof.agents.calls import model_name_of
from chainproof.agents.config import Effort, EffortProfile, ModelSettings
from chainproof.agents.models import ModelProvider
from chainproof.agents.pricing import Price, default_prices
from chainproof.agents.structured import MAX_ATTEMPTS, invoke_structured
from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import ApprovalRecord, ReviewRecord
from chainproof.graphs.approval import ApprovalAnswer, ApprovalRefused, ApprovalRequest
from chainproof.graphs.approval_policy import ApprovalPolicy, RunFacts
from chainproof.graphs.model_access import CacheSource, ModelAccess
from chainproof.graphs.planning import SUMMARY_LINES, add_finding, advance, current_plan, progress_text, remaining
from chainproof.graphs.prompting import compact_json
from chainproof.graphs.recorder import StepRecorder
from chainproof.graphs.review import Budget, ReviewDecision, resolve_revised_plan, review_prompt
from chainproof.graphs.routing import BudgetShare, Route, RoutingPolicy, Task
from chainproof.graphs.spec import ChainSpec, Finding, PlanStep
from chainproof.values import encode_value, hook_state


class ChainState(TypedDict, total=False):
    """The checkpointed state (plain JSON types only, so checkpoints round-trip exactly)."""

    run_id: str
    graph: str
    goal: str
    inputs: dict[str, Any]
    budget: dict[str, Any]
    plan_revision: list[dict[str, Any]] | None
    cursor: int
    done_count: int
    recent_done: list[str]
    last_review_at: int
    termination: dict[str, Any] | None
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
    cache: bool


class ApprovalTask(TypedDict):
    """The input of one ``approve`` task (the ``Send`` payload)."""

    run_id: str
    round: int
    request: dict[str, Any]


class Invocable(Protocol):
    """What ``act`` needs of a tool: ``invoke(args) -> result dict`` (LangChain tools qualify)."""

    def invoke(self, input: dict[str, Any]) -> Any: ...


class Budgets(Protocol):
    """Cost budgets as the nodes see them (:class:`graphs.budgets.CostGuard` in live runs; replay
    serves the recorded shares and never pauses)."""

    def share(self, state: Mapping[str, Any]) -> BudgetShare | None: ...

    def check(self, state: Mapping[str, Any], *, node: str, step_no: int, model: str, effort: str,
              messages: list[Any], profile: EffortProfile, attempts: int = 1) -> dict[str, Any]: ...

    def after_step(self, state: Mapping[str, Any]) -> None: ...


@dataclass
class Runtime:
    """What the nodes need besides the state: the graph spec, models, the audit store, where
    reports go, an optional effort override for every step (CLI ``--effort``), the approval policy
    (default: the spec's) and how to read a run's cost so far in USD (default: the audit store's
    sum of model-call costs, None while any call is unpriced).

    ``tools`` replaces the spec's tools by name (replay serves recorded results this way);
    ``write_reports=False`` renders and hashes the report without writing the file (replay).
    ``routing`` decides each step's effort (:mod:`graphs.routing`); ``pricing`` prices every
    model call (None: not priced); ``profiles`` are the effort profiles (output caps for budget
    projections, part of the reasoning-cache key); ``cache`` is the reasoning cache (None: off);
    ``stream`` streams model answers; ``budgets`` enforces cost budgets (None: none).
    """

    spec: ChainSpec
    models: ModelProvider
    audit: AuditStore
    reports_dir: Path
    effort_override: Effort | None = None
    policy: ApprovalPolicy | None = None
    run_cost: Callable[[str], float | None] | None = field(default=None, repr=False)
    tools: Mapping[str, Invocable] | None = None
    write_reports: bool = True
    routing: RoutingPolicy = field(default_factory=RoutingPolicy)
    pricing: dict[str, Price] | None = field(default_factory=default_prices)
    profiles: Mapping[str, EffortProfile] = field(default_factory=lambda: ModelSettings().profiles)
    cache: CacheSource | None = None
    stream: bool = False
    budgets: Budgets | None = None

    def __post_init__(self) -> None:
        self.policy = self.policy or self.spec.approval_policy()
        self.run_cost = self.run_cost or self.audit.run_cost_usd
        self.access = ModelAccess(self.profiles, self.cache, self.stream)

    def route(self, state: Mapping[str, Any], task: Task, static: Effort | None,
              static_where: str = "the plan step") -> Route:
        """The effort of a model step and why (:class:`graphs.routing.RoutingPolicy`: override >
        static > rules > complexity, then the budget cap)."""
        share = self.budgets.share(state) if self.budgets else None
        return self.routing.route(task, override=self.effort_override, static=static, static_where=static_where,
                                  budget=share)

    def guard(self, state: Mapping[str, Any], node: str, effort: Effort, model: Any, messages: list[Any],
              attempts: int = 1) -> dict[str, Any]:
        """The cost-budget check before a node's model calls (pauses when they may not fit); the
        state update to merge into the node's. Call it before any side effect of the node."""
        if self.budgets is None:
            return {}
        return self.budgets.check(state, node=node, step_no=state.get("step", 0) + 1, model=model_name_of(model),
                                  effort=effort, messages=messages, profile=self.profiles[effort], attempts=attempts)

    def uses_cache(self, state: Mapping[str, Any], key: str) -> bool:
        """Whether a model step may use the reasoning cache: on for the run (``state["cache"]``,
        default on) and ``key`` (a plan step id, ``review`` or ``decide``) not in ``spec.uncached``."""
        return bool(state.get("cache", True)) and key not in self.spec.uncached


def _resolve(value: Any, inputs: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{inputs.") and value.endswith("}"):
        key = value[len("{inputs.") : -1]
        if key not in inputs:
            raise KeyError(f"plan step argument refers to missing input {key!r}; inputs have {sorted(inputs)}")
        return inputs[key]
    return value


def step_messages(spec: ChainSpec, state: ChainState, instruction: str, material: str = "") -> list:
    """The bounded prompt of a step: goal, progress, rolling summary, then the task and its
    material. Never the whole history."""
    parts = [f"Goal: {state['goal']}", progress_text(spec, state)]
    if state.get("summary"):
        parts.append("What we know so far:\n" + "\n".join(f"- {s}" for s in state["summary"]))
    parts.append(f"Your task now: {instruction}")
    if material:
        parts.append(material)
    return [SystemMessage(spec.system_prompt), HumanMessage("\n\n".join(parts))]


def kept_findings(state: ChainState) -> set[str]:
    """Ids of findings whose data is in the state (what later steps may take as arguments)."""
    return {k for k, f in state.get("findings", {}).items() if f.get("data") is not None}


def request_id(run_id: str, step_no: int) -> str:
    """The approval request id of the decide step ``step_no`` of ``run_id``: a UUID5 (hex), the
    same each time that step executes, so a replay resumes with the recorded answer."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"chainproof:{run_id}:{step_no}").hex


def build_graph(runtime: Runtime, checkpointer: BaseCheckpointSaver | None = None):
    """Compile the orchestrator for ``runtime.spec`` with ``checkpointer``.

    Returns a compiled LangGraph graph whose state is :class:`ChainState`. The thread id must be
    the run id (``config={"configurable": {"thread_id": run_id}}``).
    """
    spec, audit = runtime.spec, runtime.audit
    spec_tools = {t.name: t for t in spec.tools()}
    tools = dict(runtime.tools) if runtime.tools is not None else spec_tools
    sensitive = sorted(name for name, t in spec_tools.items() if "sensitive" in (t.tags or []))

    def recorder(state: ChainState, node: str, kind: str, title: str, **kw: Any) -> StepRecorder:
        return StepRecorder(audit, state["run_id"], state.get("step", 0) + 1, node, kind, title,
                            pricing=runtime.pricing, **kw)

    def check_tools(steps: list[PlanStep] | tuple[PlanStep, ...]) -> None:
        unknown = sorted({s.tool for s in steps if s.kind == "tool" and s.tool not in tools})
        if unknown:
            raise KeyError(f"plan uses unknown tool(s) {unknown}; available: {sorted(tools)}")

    def plan(state: ChainState) -> dict[str, Any]:
        if state.get("replan"):
            rejections = [a for a in state.get("approvals", [])
                          if a["round"] == state["round"] - 1 and a["action"] == "reject"]
            with recorder(state, "plan", "plan", "Replan after rejection") as rec:
                revised = spec.replan(hook_state(state), rejections)
                check_tools(revised)
                steps = [s.model_dump(mode="json") for s in revised]
                rec.inputs = {"rejections": [{k: r.get(k) for k in ("request_id", "approver", "comment")} for r in rejections]}
                rec.output = {"plan": steps}
            lines = [f"Rejected by {r['approver']}: {r['comment']}" for r in rejections]
            return {"plan_revision": steps, "cursor": 0, "step": rec.step_no,
                    "summary": [*state.get("summary", []), *lines][-SUMMARY_LINES:],
                    "requests": None, "approval": None, "replan": False}
        with recorder(state, "plan", "plan", "Plan the chain") as rec:
            steps = current_plan(spec, state)
            check_tools(steps)
            rec.inputs = {"goal": state["goal"], "inputs": state["inputs"], "budget": state["budget"]}
            shown = [s.model_dump(mode="json", exclude_defaults=True) for s in steps[:50]]
            rec.output = {"plan_steps": len(steps), "plan": shown, "truncated": len(steps) > 50}
        return {"plan_revision": None, "cursor": 0, "done_count": 0, "recent_done": [], "last_review_at": 0,
                "termination": None, "step": rec.step_no, "findings": {}, "summary": [], "tools_used": []}

    def after_plan(state: ChainState) -> str:
        return "act" if remaining(spec, state) else "decide"

    def act(state: ChainState) -> dict[str, Any]:
        step = remaining(spec, state)[0]
        if step.kind == "tool":
            literal = encode_value(step.args, where=f"plan step {step.id}", root="args")  # value contract: tagged JSON
            args = {k: _resolve(v, state["inputs"]) for k, v in literal.items()}
            for name, source in step.args_from_findings.items():
                found = state.get("findings", {}).get(source)
                if not found or found.get("data") is None:
                    raise KeyError(f"plan step {step.id!r} needs the data of finding {source!r}, which is not kept")
                args[name] = found["data"]
            with recorder(state, "act", "tool", f"{step.title} [{step.tool}]") as rec:
                rec.inputs = {"plan_step": step.id, "tool": step.tool}  # args and result: the tool_calls row
                started = time.perf_counter()
                try:  # value contract: the tool gets decoded args; its result is encoded or refused
                    result, refused = invoke_tool(tools[step.tool], step.tool, args)
                except Exception as exc:
                    rec.tool_call(step.tool, args, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
                    raise
                rec.tool_call(step.tool, args, result, refused, time.perf_counter() - started)
                if refused:  # value contract
                    rec.output = {"refused": refused}
            used = state.get("tools_used", [])
            return {"pending": {"step": step.model_dump(mode="json"), "result": result,
                                **({"refused": refused} if refused else {})}, "step": rec.step_no,
                    "tools_used": used if step.tool in used else sorted([*used, step.tool])}
        route = runtime.route(state, Task(step.instruction), step.effort)
        with recorder(state, "act", "reason", step.title, effort=route.effort, effort_reason=route.reason) as rec:
            messages = step_messages(spec, state, step.instruction)
            model = runtime.models.chat(route.effort)
            raised = runtime.guard(state, "act", route.effort, model, messages)
            _, call = runtime.access.call(model, messages, effort=route.effort, use_cache=runtime.uses_cache(state, step.id))
            rec.model_calls([call])
            rec.inputs = {"plan_step": step.id, **route.recorded()}
            rec.output = {"text": call.output}
        return {"pending": {"step": step.model_dump(mode="json"), "text": call.output}, "step": rec.step_no, **raised}

    def observe(state: ChainState) -> dict[str, Any]:
        pending = state["pending"] or {}
        step = PlanStep.model_validate(pending["step"])
        raised: dict[str, Any] = {}
        if pending.get("refused"):  # value contract: stop (resumable), then record the refusal as the finding
            interrupt(refusal_stop(state["run_id"], state.get("step", 0) + 1, step.id, step.tool, pending["refused"]))
            with recorder(state, "observe", "observe", f"Record refused result of {step.title}") as rec:
                summary = f"The result of tool {step.tool} was refused and not kept: {pending['refused']}"
                rec.inputs = {"plan_step": step.id, "refused": True}
                rec.output = {"finding": summary}
            data = None
        elif step.kind == "tool":
            shown = pending["result"]
            if step.prompt_fields is not None and isinstance(shown, dict):
                shown = {k: shown[k] for k in step.prompt_fields if k in shown}
            material = "Tool result (JSON):\n" + compact_json(shown)
            route = runtime.route(state, Task(step.instruction, material_chars=len(material)), step.effort)
            with recorder(state, "observe", "observe", f"Interpret {step.title}", effort=route.effort,
                          effort_reason=route.reason) as rec:
                messages = step_messages(spec, state, step.instruction, material)
                model = runtime.models.chat(route.effort)
                raised = runtime.guard(state, "observe", route.effort, model, messages)
                _, call = runtime.access.call(model, messages, effort=route.effort,
                                              use_cache=runtime.uses_cache(state, step.id))
                rec.model_calls([call])
                rec.inputs = {"plan_step": step.id, **route.recorded()}
                summary = call.output.strip() or "(the model returned no text)"
                if call.finish_reason == "length":
                    summary += " … [cut off at the output-token limit]"
                rec.output = {"finding": summary}
            data = pending["result"]
        else:
            with recorder(state, "observe", "observe", f"Record {step.title}") as rec:
                summary = pending.get("text", "").strip() or "(the model returned no text)"
                rec.inputs = {"plan_step": step.id}
                rec.output = {"finding": summary}
            data = None
        if len(summary) > 1200:
            summary = summary[:1199].rstrip() + "…"  # the full text is in the step row
        finding = Finding(step_id=step.id, title=step.title, summary=summary,
                          data=data if step.keep_data else None, tool=step.tool, step_no=rec.step_no)
        return {**add_finding(state, finding, step.keep_data), **advance(state, step.id), "pending": None,
                "step": rec.step_no, **raised}

    def after_observe(state: ChainState) -> str:
        budget = Budget.model_validate(state["budget"])
        left = bool(remaining(spec, state))
        done = state.get("done_count", 0)
        if left and done >= budget.max_steps:
            return "review"
        if left and budget.review_every and done - state.get("last_review_at", 0) >= budget.review_every:
            return "review"
        return "act" if left else "decide"

    def review(state: ChainState) -> dict[str, Any]:
        budget = Budget.model_validate(state["budget"])
        done = state.get("done_count", 0)
        if done >= budget.max_steps and remaining(spec, state):
            return budget_review(state, budget, done)
        original = current_plan(spec, {**state, "plan_revision": None})
        rest = remaining(spec, state)
        task = review_prompt(spec, state, rest, [p.id for p in original])
        route = runtime.route(state, Task(task, structured=True), spec.review_effort, "the graph's review node")
        effort = route.effort
        title = f"Goal review after {done} plan steps"
        with recorder(state, "review", "review", title, effort=effort, effort_reason=route.reason) as rec:
            rec.inputs = {"done_count": done, "remaining": [p.id for p in rest[:20]], "remaining_count": len(rest),
                          "summary": state.get("summary", []), **route.recorded()}

            def check(decision: ReviewDecision) -> None:
                if decision.revised_plan:
                    resolve_revised_plan(spec, original, decision.revised_plan, kept_findings(state))

            messages = step_messages(spec, state, task)
            model = runtime.models.json_chat(effort, ReviewDecision)
            raised = runtime.guard(state, "review", effort, model, messages, MAX_ATTEMPTS)
            outcome = invoke_structured(model, messages, ReviewDecision, effort=effort, validate=check,
                                        **runtime.access.structured(runtime.uses_cache(state, "review")))
            rec.model_calls(outcome.calls)
            decision = outcome.value or ReviewDecision(
                decision="continue", drift="unknown: the reviewer gave no valid review",
                reason=f"default after {len(outcome.errors)} invalid reviewer answers: continue the plan as it is",
            )
            rec.output = {**decision.model_dump(mode="json"), "fallback": outcome.value is None, "errors": outcome.errors}
            usage = rec.usage
            rec.extra_records.append(ReviewRecord(  # what it saw in full is the step row's inputs
                step_no=rec.step_no, decision=decision.decision, reason=decision.reason, drift_assessment=decision.drift,
                inputs={"done_count": done, "remaining_count": len(rest)}, effort=effort, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                reasoning_tokens=usage.reasoning_tokens))
        update: dict[str, Any] = {"last_review_at": done, "step": rec.step_no, **raised}
        if decision.summary:
            update["summary"] = [f"Review after {done} steps: {decision.summary}", *state.get("summary", [])[-3:]]
        if decision.decision == "replan":
            revised = resolve_revised_plan(spec, original, decision.revised_plan or [], kept_findings(state))
            update.update(plan_revision=[p.model_dump(mode="json") for p in revised], cursor=0)
        elif decision.decision == "terminate":
            update["termination"] = {"reason": decision.reason, "at_step": done, "by": "review"}
        return update

    def budget_review(state: ChainState, budget: Budget, done: int) -> dict[str, Any]:
        left = len(remaining(spec, state))
        policy, extended_by = budget.on_budget, None
        if policy == "extend" and budget.extensions >= budget.max_extensions:
            policy = "terminate"
        if policy == "pause":
            # Pauses durably; on resume this node runs again from the top and interrupt() returns
            # the answer ({"max_steps": N, "by": NAME}). Nothing above has side effects.
            answer = interrupt({"kind": "budget", "run_id": state["run_id"], "done_count": done,
                                "max_steps": budget.max_steps, "remaining": left,
                                "question": f"Step budget of {budget.max_steps} plan steps reached with {left} left. "
                                            "Resume with a larger budget?"})
            new_max = int(answer["max_steps"])
            if new_max <= done:
                raise ValueError(f"max_steps: the new budget {new_max} must exceed the {done} plan steps done")
            budget = budget.model_copy(update={"max_steps": new_max})
            extended_by = answer.get("by")
        elif policy == "extend":
            budget = budget.model_copy(update={"max_steps": budget.max_steps + budget.extend_by,
                                               "extensions": budget.extensions + 1})
        with recorder(state, "review", "review", f"Budget review: {budget.max_steps} steps reached"
                      if policy == "terminate" else f"Budget review: extended to {budget.max_steps} plan steps") as rec:
            decision = "terminate" if policy == "terminate" else "continue"
            reason = ("budget reached" + (f"; extended to {budget.max_steps} plan steps" if decision == "continue" else
                                          f"; {left} plan steps not run (policy: terminate)"))
            rec.inputs = {"done_count": done, "remaining_count": left, "policy": budget.on_budget}
            rec.output = {"decision": decision, "reason": reason, "budget": budget.model_dump(), "by": extended_by}
            rec.extra_records.append(ReviewRecord(
                step_no=rec.step_no, decision=decision, reason=reason, drift_assessment=None, inputs=rec.inputs,
                effort=None))
        update: dict[str, Any] = {"budget": budget.model_dump(), "last_review_at": done, "step": rec.step_no}
        if decision == "terminate":
            update["termination"] = {"reason": reason, "at_step": done, "by": "budget"}
        return update

    def after_review(state: ChainState) -> str:
        if state.get("termination"):
            return "report"
        return "act" if remaining(spec, state) else "decide"

    def decide(state: ChainState) -> dict[str, Any]:
        task = spec.decision_prompt(hook_state(state))
        route = runtime.route(state, Task(task, structured=True), spec.decide_effort, "the graph's decide node")
        effort = route.effort
        with recorder(state, "decide", "decide", "Decide and request approval", effort=effort,
                      effort_reason=route.reason) as rec:
            messages = step_messages(spec, state, task)
            model = runtime.models.json_chat(effort, spec.decision_schema)
            raised = runtime.guard(state, "decide", effort, model, messages, MAX_ATTEMPTS)
            rec.inputs = route.recorded()
            outcome = invoke_structured(
                model, messages, spec.decision_schema, effort=effort,
                validate=lambda d: spec.check_decision(d, hook_state(state)),
                **runtime.access.structured(runtime.uses_cache(state, "decide")),
            )
            rec.model_calls(outcome.calls)
            fallback = outcome.value is None
            value = spec.fallback_decision(hook_state(state), outcome.errors) if fallback else outcome.value
            if value is None:  # the spec has no fallback: fail the step (the run stays resumable)
                rec.output = {"errors": outcome.errors}
                outcome.require(spec.decision_schema)
            decision = decision_form(value)  # value contract: JSON where the schema restores it exactly, else tagged
            rec.output = {"decision": decision, "fallback": fallback, "errors": outcome.errors}
            facts = RunFacts(decision=decision, tools_used=state.get("tools_used", []), sensitive_tools=sensitive,
                             cost_usd=runtime.run_cost(state["run_id"]))
            reasons = runtime.policy.reasons("decide", facts)
            requests = []
            for i, item in enumerate(spec.approval_items(value, hook_state(state)) if reasons else []):
                # hash what is stored and shown: the proposal as redacted (a phrase such as
                # "authorization: outstanding" is redacted, and the approver sees the redacted text)
                proposed = audit.redactor(encode_value(item.proposed, where=f"approval item {item.subject}"))
                request = ApprovalRequest(
                    request_id=request_id(state["run_id"], rec.step_no + 1 + i), run_id=state["run_id"], node="approve", subject=item.subject,
                    question=item.question, reasons=reasons, step_no=rec.step_no + 1 + i, proposed=proposed,
                    proposed_hash=sha256_hex(proposed), evidence_summary=state.get("summary", [])[-8:],
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
            text = spec.render_terminated(hook_state(state)) if state.get("termination") else spec.render_report(hook_state(state))
            text = audit.redactor(text)
            path = runtime.reports_dir / f"{state['run_id']}.md"
            if runtime.write_reports:
                runtime.reports_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            rec.output = {"path": str(path), "sha256": sha256_hex(text), "chars": len(text)}
        return {"report_path": str(path), "step": rec.step_no}

    def redacted(fn: Callable[[ChainState], dict[str, Any]]) -> Callable[[ChainState], dict[str, Any]]:
        @functools.wraps(fn)
        def node(state: ChainState) -> dict[str, Any]:
            update = audit.redactor(fn(state))
            if runtime.budgets is not None and "budget" in state:  # not the approve tasks (Send payloads)
                runtime.budgets.after_step({**state, "budget": update.get("budget", state["budget"])})
            return update

        return node

    builder = StateGraph(ChainState)
    for name, fn in [("plan", plan), ("act", act), ("observe", observe), ("review", review), ("decide", decide),
                     ("approve", approve), ("settle", settle), ("report", report)]:
        builder.add_node(name, redacted(fn))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", after_plan, ["act", "decide"])
    builder.add_edge("act", "observe")
    builder.add_conditional_edges("observe", after_observe, ["act", "review", "decide"])
    builder.add_conditional_edges("review", after_review, ["act", "decide", "report"])
    builder.add_conditional_edges("decide", after_decide, ["approve", "report"])
    builder.add_edge("approve", "settle")
    builder.add_conditional_edges("settle", after_settle, ["plan", "report"])
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer)
