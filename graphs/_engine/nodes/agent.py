"""``agent``: one iteration of an agent plan step (ReAct) per super-step, and the goal review of an
agent step in progress (see :mod:`chainproof.graphs.agent` for the design).

An iteration: route the effort, check the cost budget, call the model with the step's tools bound
(``bind_tools``, with the step's ``first_tool_choice`` as ``tool_choice`` on its first iteration;
the prompt is the spec's :meth:`~chainproof.graphs.spec.ChainSpec.agent_prompt` when it gives one),
then for each tool call it asked for: check the arguments against the tool's
schema (an invalid call is recorded and shown back to the model, never run), run the tool (the
value contract applies to its result), record it, and keep the result for the next iteration. A
call of a ``return_direct`` tool that runs ends the step with its result as the answer. The
step row (``node="agent"``, ``kind="agent"``) lists every call with its ``tool_call_id`` and
status (``ok``, ``invalid``, ``error``, ``refused``, ``rejected``; ``awaiting_approval`` / ``held``
while calls wait for a person, :mod:`.tool_approval`); the ``model_calls`` row has the prompt, the
answer and its tool calls, tokens and cost; one ``tool_calls`` row per call in the order asked.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.runtime import Runtime
from langgraph.types import Send

from chainproof._boundaries import INVALID_CALL, REJECTED_CALL, check_call_args, invoke_model_call
from chainproof.agents.structured import MAX_ATTEMPTS, invoke_structured
from chainproof.checkpoints.audit_schema import ReviewRecord
from chainproof.graphs import agent as agentic
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.nodes import tool_approval
from chainproof.graphs._engine.nodes.step import resolve_arg
from chainproof.graphs._engine.prompts import evidence_of, own_messages, step_messages
from chainproof.graphs._engine.state import ChainState, progress_text, remaining, used_steps
from chainproof.graphs.recorder import StepRecorder
from chainproof.graphs.routing import Task
from chainproof.graphs.spec import PlanStep
from chainproof.graphs.view import ChainView


def agent(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Run one iteration of the current agent step; when it ends the step (an answer,
    ``max_iterations`` or too many invalid calls), its outcome waits in ``pending`` for ``observe``.
    A reply asking for a call of a ``requires_approval`` tool runs none of its calls: they wait in
    ``agent["held"]`` for the decisions (:mod:`.tool_approval`), and the next execution runs them."""
    ctx = runtime.context
    spec = ctx.spec
    step = remaining(spec, state)[0]
    run = state.get("agent")
    if not run or run["step_id"] != step.id:
        run = agentic.start(step)
    limit = agentic.limit_of(spec, step)
    names = list(step.tools) if step.tools is not None else list(ctx.tool_defs)
    if run.get("held"):
        return _run_decided(ctx, state, step, run, limit, names)
    iteration = run["iteration"] + 1
    evidence = evidence_of(spec, state, step)
    route = ctx.route(state, Task(run["instruction"], material_chars=len(evidence)), step.effort)
    title = f"{step.title}: iteration {iteration}"
    with ctx.recorder(state, "agent", "agent", title, effort=route.effort, effort_reason=route.reason) as rec:
        own = _own_prompt(spec, step, state, run["instruction"])  # LangGraph's prompt=callable
        messages = ([*own, *agentic.messages_of(run["window"])] if own is not None else
                    agentic.prompt(spec, state, run, iteration, limit, progress_text(spec, state), evidence))
        choice = _tool_choice(step, run, iteration, names)
        model = ctx.models.chat(route.effort).bind_tools([ctx.tool_defs[n] for n in names], **choice)
        raised = ctx.guard(state, "agent", route.effort, model, messages)
        reply, call = ctx.access.call(model, messages, effort=route.effort, use_cache=ctx.uses_cache(state, step.id))
        rec.model_calls([call])
        rec.inputs = {"plan_step": step.id, "iteration": iteration, "max_iterations": limit, "tools": names,
                      **choice, **route.recorded()}
        fixed = _fixed_args(step, state)
        calls = [{"name": tc["name"], "args": _with_fixed(tc["args"], fixed.get(tc["name"])),
                  "id": tc.get("id") or f"call_{rec.step_no}_{j}"}
                 for j, tc in enumerate(reply.tool_calls)]  # a model that gives no ids gets stable ones
        unreadable = [dict(bad) for bad in reply.invalid_tool_calls]
        update: dict[str, Any] = {"iterations": state.get("iterations", 0) + 1, **raised}
        asking = tool_approval.calls_to_hold(ctx.approval_tools, ctx.tool_defs, calls, names)
        if asking:  # nothing of this reply runs before the decisions (HumanInTheLoopMiddleware)
            requests = tool_approval.open_requests(rec, state, step, asking, ctx.audit.redactor)
            rec.output = {"text": call.output, "tool_calls": [
                {"id": c["id"], "tool": c["name"], "status": "awaiting_approval" if c in asking else "held"}
                for c in calls], "approval_requests": [r["request_id"] for r in requests]}
            held = {"iteration": iteration, "text": call.output, "calls": calls, "unreadable": unreadable,
                    "requests": requests}
            return {**update, "step": rec.step_no + len(requests), "agent": {**run, "held": held}}
        update.update(_calls_and_ending(ctx, state, rec, step, run, iteration, limit, names,
                                        (calls, unreadable, call.output), {}, choice.get("tool_choice")))
    return {**update, "step": rec.step_no}


def _own_prompt(spec: Any, step: PlanStep, state: ChainState, task: str) -> list[BaseMessage] | None:
    """The spec's :meth:`~chainproof.graphs.spec.ChainSpec.agent_prompt`, checked (:func:`own_messages`)."""
    return own_messages(spec.agent_prompt(step, ChainView(state), task),
                        f"{type(spec).__name__}.agent_prompt for plan step {step.id!r}")


def _tool_choice(step: PlanStep, run: Mapping[str, Any], iteration: int, names: list[str]) -> dict[str, Any]:
    """The iteration's ``tool_choice`` (OpenAI's): the tool a sent-back answer named
    (:meth:`ChainSpec.check_answer`), else the step's ``first_tool_choice`` on its first
    iteration, else none sent (the model chooses). Raises ``ValueError`` for a named tool that is
    not among the step's tools."""
    named = run.get("tool_choice") or (step.first_tool_choice if iteration == 1 else "auto")
    if named == "auto":
        return {}
    if named not in ("required", "none") and named not in names:
        source = "check_answer" if run.get("tool_choice") else "first_tool_choice"
        raise ValueError(f"plan step {step.id!r}: {source} named tool {named!r}, which is not among the step's "
                         f"tools {names}")
    return {"tool_choice": named}


def _run_decided(ctx: ChainContext, state: ChainState, step: PlanStep, run: dict[str, Any], limit: int,
                 names: list[str]) -> dict[str, Any]:
    """The held calls of an iteration, run as the people decided (its own audited super-step)."""
    held = run["held"]
    decided = tool_approval.verdicts(state, held)
    title = f"{step.title}: iteration {held['iteration']}, after approval"
    with ctx.recorder(state, "agent", "agent", title) as rec:
        rec.inputs = {"plan_step": step.id, "iteration": held["iteration"], "decisions": [
            {"tool_call_id": k, "request_id": a["request_id"], "action": a["action"], "approver": a["approver"]}
            for k, a in decided.items()]}
        run = {k: v for k, v in run.items() if k != "held"}
        update = _calls_and_ending(ctx, state, rec, step, run, held["iteration"], limit, names,
                                   (held["calls"], held["unreadable"], held["text"]), decided)
    return {**update, "step": rec.step_no}


def _calls_and_ending(ctx: ChainContext, state: ChainState, rec: StepRecorder, step: PlanStep, run: dict[str, Any],
                      iteration: int, limit: int, names: list[str], reply: tuple[list[dict[str, Any]], list[Any], str],
                      decided: dict[str, dict[str, Any]], tool_choice: str | None = None) -> dict[str, Any]:
    """Run the reply's calls (``reply``: calls, unreadable calls, text; ``decided``: the people's
    answers on held calls; ``tool_choice``: the one sent with the request, enforced on the reply,
    since a server may ignore it), keep the window, and end the step when this iteration ends it."""
    calls, unreadable, output = reply
    fixed = _fixed_args(step, state)
    entries, statuses, invalid = _run_calls(ctx, rec, calls, unreadable, names, decided, fixed, tool_choice)
    text = output.strip()
    asked = len(calls) + len(unreadable)
    run = {**run, "iteration": iteration, "invalid": run["invalid"] + invalid, "calls": run["calls"] + asked,
           "best": text[:agentic.ANSWER_CHARS] or run["best"]}
    tools_run = list(run.get("tools_run", []))
    for s in statuses:
        if s["status"] == "ok" and s["tool"] not in tools_run:
            tools_run.append(s["tool"])
    if tools_run:
        run["tools_run"] = tools_run
    if asked:
        ai = {"role": "ai", "content": output, "calls": [  # as the model asked: without the fixed arguments
            {**c, "args": {k: v for k, v in c["args"].items() if k not in fixed.get(c["name"], {})}}
            if isinstance(c["args"], dict) else c for c in calls]}
        run = agentic.advance_window(run, iteration, [ai, *entries])
    run.pop("tool_choice", None)  # it held for this iteration only
    back = None
    if not asked and iteration < limit and run.get("answer_checks", 0) < step.answer_checks:
        checked = ctx.spec.check_answer(step, agentic.answer_of(run, text), ChainView(state))
        back = agentic.SendBack(checked) if isinstance(checked, str) else checked
        if back is not None:  # sent back (PydanticAI's ModelRetry from an output validator): the loop goes on
            run = agentic.sent_back(run, iteration, output, back)
    direct = next((s["tool"] for s in statuses if s["status"] == "ok"
                   and getattr(ctx.tool_defs.get(s["tool"]), "return_direct", False)), None)
    result: dict[str, Any] | None
    if direct is not None:  # LangChain's return_direct: the tool's result is the step's answer
        shown = next(e["content"] for e in entries if e.get("name") == direct and not e.get("error"))
        result = agentic.outcome(run, "returned", shown, f"{direct} returned its result as the answer (return_direct)")
    else:
        result = None if back else _ending(run, step, limit, asked, text)
    rec.output = {"text": output, "tool_calls": statuses, **({"outcome": result} if result else {}),
                  **({"answer_check": back.note, **({"next_tool_choice": back.tool} if back.tool else {})}
                     if back else {})}
    update: dict[str, Any] = {}
    used = state.get("tools_used", [])
    ran = sorted({s["tool"] for s in statuses if s["status"] == "ok"} - set(used))
    if ran:
        update["tools_used"] = sorted([*used, *ran])
    if result is None:
        return {**update, "agent": run}
    return {**update, "agent": None, "pending": {"step": step.model_dump(mode="json"), "agent": result}}


def _ending(run: dict[str, Any], step: PlanStep, limit: int, asked: int, text: str) -> dict[str, Any] | None:
    """The step's outcome when this iteration ends it, else None."""
    if not asked:
        return agentic.outcome(run, "answered", text, "the model answered")
    if run["invalid"] > step.max_invalid_calls:
        return agentic.outcome(run, "invalid_calls", None, f"{run['invalid']} invalid tool calls, more than the "
                                                           f"{step.max_invalid_calls} the step allows")
    if run["iteration"] >= limit:
        return agentic.outcome(run, "max_iterations", None, f"max_iterations ({limit}) reached")
    return None


def _run_calls(ctx: ChainContext, rec: StepRecorder, calls: list[dict[str, Any]], unreadable: Sequence[Any],
               names: Sequence[str], decided: Mapping[str, Mapping[str, Any]],
               fixed: Mapping[str, Mapping[str, Any]], tool_choice: str | None = None
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Check and run the tool ``calls`` a model asked for (``unreadable``: its
    ``invalid_tool_calls``; ``decided``: tool_call_id -> a person's answer on a held call, whose
    rejection runs nothing and whose edit replaces the arguments; ``fixed``: the step's
    ``tool_args``, merged over an edit too; ``tool_choice``: a call it does not allow is invalid,
    never run): the window entries for the next iteration, one status per call, and how many
    calls were invalid."""
    entries: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    invalid = 0
    for tc in calls:
        call_id, name, args = tc["id"], tc["name"], tc["args"]
        answer = decided.get(call_id)
        if answer is not None and answer["action"] == "reject":
            rec.tool_call(name, args, None, f"{REJECTED_CALL}by {answer['approver']}: {answer['comment']}", 0.0)
            entries.append(agentic.tool_message(call_id, name, f"Error: {answer['approver']} did not allow this call: "
                                                               f"{answer['comment']}", True))
            statuses.append({"id": call_id, "tool": name, "status": "rejected"})
            continue
        editor = answer["approver"] if answer is not None and answer["action"] == "edit" else None
        if answer is not None and editor is not None:
            args = _with_fixed(answer["edited"], fixed.get(name))
        tool = ctx.tool_defs.get(name) if name in names else None
        error = (check_call_args(tool, name, args) if tool is not None
                 else f"{INVALID_CALL}there is no tool {name!r}; the tools are {list(names)}")
        if tool is not None and tool_choice not in (None, "auto", "required", name):  # "none", or another tool named
            error = (f"{INVALID_CALL}this reply's tool_choice was {tool_choice!r}: "
                     + ("no tool may be called; answer in text" if tool_choice == "none" else
                        f"only {tool_choice!r} may be called"))
        if error:
            invalid += 1
            rec.tool_call(name, args, None, error, 0.0)
            entries.append(agentic.tool_message(call_id, name, f"Error: {error[len(INVALID_CALL):]}. Call the tool "
                                                                "again with corrected arguments.", True))
            statuses.append({"id": call_id, "tool": name, "status": "invalid"})
            continue
        started = time.perf_counter()
        try:  # the value contract: the result is encoded, or refused
            result, refused = rec.invoke_once(ctx.tool_defs.get(name, ctx.tool_map[name]), name, args,
                                              functools.partial(invoke_model_call, ctx.tool_map[name], name, args))
        except Exception as exc:  # shown to the model, as LangGraph's ToolNode(handle_tool_errors=True)
            failure = f"{type(exc).__name__}: {exc}"
            rec.tool_call(name, args, None, failure, time.perf_counter() - started)
            entries.append(agentic.tool_message(call_id, name, f"Error: {failure}", True))
            statuses.append({"id": call_id, "tool": name, "status": "error"})
            continue
        rec.tool_call(name, args, result, refused, time.perf_counter() - started)
        shown = f"Error: the result was refused and not kept: {refused}" if refused else agentic.as_text(result)
        if editor is not None:  # the model asked for other arguments: say which ran
            shown = f"{editor} changed the arguments to {agentic.as_text(args)}; result: {shown}"
        entries.append(agentic.tool_message(call_id, name, shown, bool(refused)))
        statuses.append({"id": call_id, "tool": name, "status": "refused" if refused else "ok",
                         **({"approval": answer["action"]} if answer is not None else {})})
    for bad in unreadable:  # arguments that were not JSON: nothing to answer with a ToolMessage
        invalid += 1
        name = str(bad.get("name") or "")
        error = f"{INVALID_CALL}tool {name!r}: the arguments are not a JSON object ({bad.get('error') or 'unreadable'})"
        rec.tool_call(name, {"unparsed": str(bad.get("args") or "")}, None, error, 0.0)
        entries.append({"role": "human", "content": f"Your call of tool {name!r} could not be read: "
                                                    f"{error[len(INVALID_CALL):]}. Give its arguments as one JSON object."})
        statuses.append({"id": bad.get("id"), "tool": name, "status": "invalid"})
    return entries, statuses, invalid


def _fixed_args(step: PlanStep, state: ChainState) -> dict[str, dict[str, Any]]:
    """The step's ``tool_args`` with ``{inputs.KEY}`` replaced by the run's inputs."""
    return {tool: {k: resolve_arg(v, state["inputs"]) for k, v in args.items()} for tool, args in step.tool_args.items()}


def _with_fixed(args: Any, fixed: Mapping[str, Any] | None) -> Any:
    """The model's arguments with the plan's fixed ones over them (a model cannot override them)."""
    return {**args, **fixed} if fixed and isinstance(args, dict) else args


def after_agent(state: ChainState, runtime: Runtime[ChainContext]) -> str | list[Send]:
    """``observe`` when the step ended; one ``approve_tool`` task per request when calls wait for
    approval; ``review`` at the step budget or every ``review_every``
    iterations of the step; else ``agent`` (the next iteration)."""
    if state.get("pending"):
        return "observe"
    if (state.get("agent") or {}).get("held"):
        return tool_approval.sends(state)
    budget = state["budget"]
    if used_steps(state) >= budget["max_steps"]:
        return "review"
    run = state["agent"] or {}
    every = agentic.review_every_of(remaining(runtime.context.spec, state)[0], budget)
    if every and run.get("iteration", 0) - run.get("last_review_at", 0) >= every:
        return "review"
    return "agent"


def agent_review(ctx: ChainContext, state: ChainState) -> dict[str, Any]:
    """The goal review of the agent step in progress (:class:`~chainproof.graphs.agent.AgentReview`):
    continue, re-scope its task, or end it with the best answer available (then ``pending``)."""
    spec = ctx.spec
    step = remaining(spec, state)[0]
    run = state["agent"] or agentic.start(step)
    limit = agentic.limit_of(spec, step)
    task = agentic.review_task(step, run, limit)
    route = ctx.route(state, Task(task, structured=True), spec.review_effort, "the graph's review node")
    effort = route.effort
    title = f"Goal review of {step.title} after {run['iteration']} iterations"
    with ctx.recorder(state, "review", "review", title, effort=effort, effort_reason=route.reason) as rec:
        rec.inputs = {"plan_step": step.id, "iteration": run["iteration"], "instruction": run["instruction"],
                      **route.recorded()}
        messages = step_messages(spec, state, task)
        model = ctx.models.json_chat(effort, agentic.AgentReview)
        raised = ctx.guard(state, "review", effort, model, messages, MAX_ATTEMPTS)
        outcome = invoke_structured(model, messages, agentic.AgentReview, effort=effort,
                                    **ctx.access.structured(ctx.uses_cache(state, "review")))
        rec.model_calls(outcome.calls)
        decision = outcome.value or agentic.AgentReview(
            decision="continue", reason=f"default after {len(outcome.errors)} invalid reviewer answers: continue")
        rec.output = {**decision.model_dump(mode="json"), "fallback": outcome.value is None, "errors": outcome.errors}
        usage = rec.usage
        rec.extra_records.append(ReviewRecord(
            step_no=rec.step_no, decision=decision.decision, reason=decision.reason, drift_assessment=None,
            inputs={"plan_step": step.id, "iteration": run["iteration"]}, effort=effort,
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens))
    run = {**run, "last_review_at": run["iteration"]}
    update: dict[str, Any] = {"step": rec.step_no, **raised}
    if decision.decision == "end_step":
        result = agentic.outcome(run, "review", None, f"ended by the goal review: {decision.reason}")
        return {**update, "agent": None, "pending": {"step": step.model_dump(mode="json"), "agent": result}}
    if decision.decision == "rescope":
        run["instruction"] = decision.instruction
    return {**update, "agent": run}


__all__ = ["after_agent", "agent", "agent_review"]
