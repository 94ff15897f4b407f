"""One plan step as two super-steps: ``act`` (a tool call, or a reasoning call to the model) and
``observe`` (the model interprets a tool's result; the result becomes a :class:`Finding`)."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt

from chainproof._boundaries import invoke_tool, refusal_stop
from chainproof.errors import PlanError, ToolFailed
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.prompts import evidence_of, step_messages
from chainproof.graphs._engine.state import ChainState, add_finding, advance, next_node, remaining, used_steps
from chainproof.graphs.agent import finding_summary as agent_finding
from chainproof.graphs.prompting import compact_json
from chainproof.graphs.routing import Task
from chainproof.graphs.spec import Finding, PlanStep
from chainproof.values import encode_value

FINDING_CHARS = 1200  # a finding's summary in state; the full text is in the step row


def resolve_arg(value: Any, inputs: dict[str, Any]) -> Any:
    """``"{inputs.KEY}"`` -> ``inputs[KEY]`` (``PlanError`` naming a missing input); others as given."""
    if isinstance(value, str) and value.startswith("{inputs.") and value.endswith("}"):
        key = value[len("{inputs.") : -1]
        if key not in inputs:
            raise PlanError(f"a plan step argument refers to the missing input {key!r}; the inputs are {sorted(inputs)}")
        return inputs[key]
    return value


def _summary(state: ChainState, step: PlanStep, source: str) -> str:
    found = state.get("findings", {}).get(source)
    if not found:
        raise PlanError(
            f"plan step {step.id!r} needs the summary of finding {source!r}, which is not in state (the plan step "
            f"{source!r} has not run, or needs keep_data=True to stay); after fixing the plan, fork the run from "
            f"before that step: chainproof fork {state['run_id']} --at STEP")
    return str(found.get("summary", ""))


def act(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Run the next plan step: call its tool (args and result go to the ``tool_calls`` row), or
    ask the model its instruction; the result waits in ``pending`` for ``observe``."""
    ctx = runtime.context
    step = remaining(ctx.spec, state)[0]
    if step.kind == "agent":  # next_node routes agent steps to the agent node
        raise PlanError(f"plan step {step.id!r} is an agent step; the agent node runs it, not act")
    if step.kind == "tool":
        if step.tool is None:  # check_tools refuses such a plan before it is written
            raise PlanError(f"plan step {step.id!r} is a tool step without a tool")
        literal = encode_value(step.args, where=f"plan step {step.id}", root="args")  # tagged JSON, as stored
        args = {k: resolve_arg(v, state["inputs"]) for k, v in literal.items()}
        for name, source in step.args_from_findings.items():
            found = state.get("findings", {}).get(source)
            if not found or found.get("data") is None:
                raise PlanError(
                    f"plan step {step.id!r} needs the data of finding {source!r}, which is not kept (the plan step "
                    f"{source!r} needs keep_data=True, or its tool result was refused); after fixing the cause, "
                    f"fork the run from before that step: chainproof fork {state['run_id']} --at STEP")
            args[name] = found["data"]
        for name, sources in step.args_from_summaries.items():
            texts = [_summary(state, step, source) for source in ([sources] if isinstance(sources, str) else sources)]
            args[name] = texts[0] if isinstance(sources, str) else texts
        with ctx.recorder(state, "act", "tool", f"{step.title} [{step.tool}]") as rec:
            rec.inputs = {"plan_step": step.id, "tool": step.tool}  # args and result: the tool_calls row
            started = time.perf_counter()
            try:  # the value contract: the tool gets decoded args; its result is encoded, or refused
                name, tool = step.tool, ctx.tool_map[step.tool]
                result, refused = rec.invoke_once(ctx.tool_defs.get(name, tool), name, args,
                                                  lambda: invoke_tool(tool, name, args))
            except Exception as exc:
                rec.tool_call(step.tool, args, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started)
                raise ToolFailed(step.tool, step.id, exc) from exc
            rec.tool_call(step.tool, args, result, refused, time.perf_counter() - started)
            if refused:
                rec.output = {"refused": refused}
        used = state.get("tools_used", [])
        return {"pending": {"step": step.model_dump(mode="json"), "result": result,
                            **({"refused": refused} if refused else {})}, "step": rec.step_no,
                # written only when it changes: an unchanged write still costs a new checkpoint blob
                **({} if step.tool in used else {"tools_used": sorted([*used, step.tool])})}
    evidence = evidence_of(ctx.spec, state, step)
    route = ctx.route(state, Task(step.instruction, material_chars=len(evidence)), step.effort)
    with ctx.recorder(state, "act", "reason", step.title, effort=route.effort, effort_reason=route.reason) as rec:
        messages = step_messages(ctx.spec, state, step.instruction, evidence=evidence)
        model = ctx.models.chat(route.effort)
        raised = ctx.guard(state, "act", route.effort, model, messages)
        _, call = ctx.access.call(model, messages, effort=route.effort, use_cache=ctx.uses_cache(state, step.id))
        rec.model_calls([call])
        rec.inputs = {"plan_step": step.id, **route.recorded()}
        rec.output = {"text": call.output}
    return {"pending": {"step": step.model_dump(mode="json"), "text": call.output}, "step": rec.step_no, **raised}


def observe(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Turn ``pending`` into a :class:`Finding` (the model interprets a tool result, shown as
    compact JSON limited to ``prompt_fields``) and advance the plan."""
    ctx = runtime.context
    pending = state["pending"] or {}
    step = PlanStep.model_validate(pending["step"])
    raised: dict[str, Any] = {}
    if pending.get("refused"):  # a refused tool result: stop (resumable), then record it as the finding
        interrupt(refusal_stop(state["run_id"], state.get("step", 0) + 1, step.id, step.tool, pending["refused"]))
        with ctx.recorder(state, "observe", "observe", f"Record refused result of {step.title}") as rec:
            summary = f"The result of tool {step.tool} was refused and not kept: {pending['refused']}"
            rec.inputs = {"plan_step": step.id, "refused": True}
            rec.output = {"finding": summary}
        data = None
    elif step.kind == "agent":  # the agent's answer (or best answer and why it stopped) is the finding
        result = pending["agent"]
        with ctx.recorder(state, "observe", "observe", f"Record {step.title}") as rec:
            summary = agent_finding(result)
            rec.inputs = {"plan_step": step.id, "stop_reason": result["stop_reason"]}
            rec.output = {"finding": summary}
        data = result
        if result["stop_reason"] in ("max_iterations", "invalid_calls"):
            raised = {"review_due": True}  # a goal review decides what the run does next
    elif step.kind == "tool" and not step.interpret:  # no model call: the finding is built by code
        with ctx.recorder(state, "observe", "observe", f"Record {step.title}") as rec:
            summary = ctx.spec.summarize_result(step, _shown(step, pending["result"]))
            rec.inputs = {"plan_step": step.id, "interpreted": False}
            rec.output = {"finding": summary}
        data = pending["result"]
    elif step.kind == "tool":
        shown = _shown(step, pending["result"])
        material = "Tool result (JSON):\n" + compact_json(shown)
        evidence = evidence_of(ctx.spec, state, step)
        route = ctx.route(state, Task(step.instruction, material_chars=len(material) + len(evidence)), step.effort)
        with ctx.recorder(state, "observe", "observe", f"Interpret {step.title}", effort=route.effort,
                          effort_reason=route.reason) as rec:
            messages = step_messages(ctx.spec, state, step.instruction, material, evidence)
            model = ctx.models.chat(route.effort)
            raised = ctx.guard(state, "observe", route.effort, model, messages)
            _, call = ctx.access.call(model, messages, effort=route.effort, use_cache=ctx.uses_cache(state, step.id))
            rec.model_calls([call])
            rec.inputs = {"plan_step": step.id, **route.recorded()}
            summary = call.output.strip() or "(the model returned no text)"
            if call.finish_reason == "length":
                summary += " … [cut off at the output-token limit]"
            rec.output = {"finding": summary}
        data = pending["result"]
    else:
        with ctx.recorder(state, "observe", "observe", f"Record {step.title}") as rec:
            summary = pending.get("text", "").strip() or "(the model returned no text)"
            rec.inputs = {"plan_step": step.id}
            rec.output = {"finding": summary}
        data = None
    if len(summary) > FINDING_CHARS:
        summary = summary[:FINDING_CHARS - 1].rstrip() + "…"
    finding = Finding(step_id=step.id, title=step.title, summary=summary,
                      data=data if step.keep_data else None, tool=step.tool, step_no=rec.step_no)
    return {**add_finding(state, finding, step.keep_data), **advance(state, step.id), "pending": None,
            "step": rec.step_no, **raised}


def _shown(step: PlanStep, result: Any) -> Any:
    """The part of a tool result a model or a summary reads: ``prompt_fields`` of a dict, else all."""
    if step.prompt_fields is not None and isinstance(result, dict):
        return {k: result[k] for k in step.prompt_fields if k in result}
    return result


def after_observe(state: ChainState, runtime: Runtime[ChainContext]) -> str | list[Send]:
    """``review`` at the step budget, every ``review_every`` plan steps, or after an agent step
    that stopped without an answer; else the next step's node or ``decide``."""
    budget = state["budget"]  # Budget.model_dump(), every field present (no per-step validation)
    spec = runtime.context.spec
    rest = remaining(spec, state)
    left = bool(rest)
    done = state.get("done_count", 0)
    if state.get("review_due"):
        return "review"
    if left and used_steps(state) >= budget["max_steps"]:
        return "review"
    if left and budget["review_every"] and done - state.get("last_review_at", 0) >= budget["review_every"]:
        return "review"
    return next_node(spec, state, rest)
