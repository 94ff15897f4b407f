"""A debate plan step (``graphs/debate.py``) as super-steps::

    (Send × N) argue → debate_round ─(Send × N, next round)→ argue → … → judge → (as after observe)

``argue`` (one task per position) records one argument: a step row (node ``argue``, kind
``debate``, title ``STEP: POSITION, round R``, output the argument id and text) with its model
call, under the number reserved for it (``state.debate_sends``); it writes only the
``debate_args`` channel (a reducer: the tasks of one round merge whatever order they finished in).
``debate_round`` records nothing: it moves ``step`` past the round's numbers and counts the round
in ``iterations`` (the step budget). ``judge`` asks the typed verdict, checked against the
positions and argument ids (retries show the error; then a code-built ``undecided`` verdict), and
turns it into the step's finding.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from chainproof.agents.structured import MAX_ATTEMPTS, invoke_structured
from chainproof.graphs import debate as debating
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.nodes.step import FINDING_CHARS, after_observe
from chainproof.graphs._engine.prompts import evidence_of, step_messages
from chainproof.graphs._engine.state import ChainState, add_finding, advance, debate_sends, remaining
from chainproof.graphs.routing import Task
from chainproof.graphs.spec import Finding, PlanStep


def _step(runtime: Runtime[ChainContext], state: ChainState) -> tuple[PlanStep, debating.Debate]:
    step = remaining(runtime.context.spec, state)[0]
    if step.debate is None:
        raise ValueError(f"plan step {step.id!r} is not a debate step")
    return step, step.debate


def argue(task: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """One analyst's argument in one round (``task["debate_task"]``: position index, round)."""
    ctx = runtime.context
    step, debate = _step(runtime, task)
    which = task["debate_task"] or {}
    position, round_no = debate.positions[which["position"]], which["round"]
    arguments = task.get("debate_args") or {}
    instruction = debating.argue_task(step.instruction, debate, position, round_no, arguments)
    evidence = evidence_of(ctx.spec, task, step)
    route = ctx.route(task, Task(instruction, material_chars=len(evidence)), step.effort)
    aid = debating.argument_id(position.id, round_no)
    with ctx.recorder(task, "argue", "debate", f"{step.title}: {position.id}, round {round_no}", effort=route.effort,
                      effort_reason=route.reason) as rec:
        messages = step_messages(ctx.spec, task, instruction, evidence=evidence)
        model = ctx.models.chat(route.effort)
        ctx.guard(task, "argue", route.effort, model, messages)
        _, call = ctx.access.call(model, messages, effort=route.effort, use_cache=ctx.uses_cache(task, step.id))
        rec.model_calls([call])
        text = (call.output.strip() or "(no argument)")[:debating.ARGUMENT_CHARS]
        rec.inputs = {"plan_step": step.id, "position": position.id, "round": round_no, **route.recorded()}
        rec.output = {"argument_id": aid, "text": text}
    return {"debate_args": {aid: {"position": position.id, "round": round_no, "text": text, "step_no": rec.step_no}}}


def debate_round(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Joins a round: ``step`` past its reserved numbers; the round counts in ``iterations``."""
    _, debate = _step(runtime, state)
    return {"step": state.get("step", 0) + len(debate.positions), "iterations": state.get("iterations", 0) + 1}


def after_round(state: ChainState, runtime: Runtime[ChainContext]) -> str | list[Send]:
    """The next round's arguments, or the judge after the last."""
    step, debate = _step(runtime, state)
    done = max((a["round"] for a in (state.get("debate_args") or {}).values()), default=0)
    return debate_sends(state, step, done + 1) if done < debate.rounds else "judge"


def judge(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """The verdict, checked (winner a position or ``undecided``; every cited argument exists), as
    the step's finding (summary: the verdict; data: question, positions, arguments, verdict)."""
    ctx = runtime.context
    step, debate = _step(runtime, state)
    arguments = dict(debating.ordered(state.get("debate_args") or {}, debate))
    task = debating.judge_task(step.instruction, debate, arguments)
    evidence = evidence_of(ctx.spec, state, step)
    route = ctx.route(state, Task(task, material_chars=len(evidence), structured=True), step.effort)
    with ctx.recorder(state, "judge", "debate", f"{step.title}: verdict", effort=route.effort,
                      effort_reason=route.reason) as rec:
        messages = step_messages(ctx.spec, state, task, evidence=evidence)
        model = ctx.models.json_chat(route.effort, debating.DebateVerdict)
        raised = ctx.guard(state, "judge", route.effort, model, messages, MAX_ATTEMPTS)
        outcome = invoke_structured(model, messages, debating.DebateVerdict, effort=route.effort,
                                    validate=lambda v: debating.check_verdict(v, debate, arguments),
                                    **ctx.access.structured(ctx.uses_cache(state, step.id)))
        rec.model_calls(outcome.calls)
        verdict = outcome.value or debating.fallback_verdict(debate, arguments, outcome.errors)
        rec.inputs = {"plan_step": step.id, "arguments": list(arguments), **route.recorded()}
        rec.output = {"verdict": verdict.model_dump(mode="json"), "fallback": outcome.value is None,
                      "errors": outcome.errors}
    data: dict[str, Any] = {"question": step.instruction, "positions": [p.model_dump() for p in debate.positions],
            "rounds": debate.rounds, "arguments": arguments, "verdict": verdict.model_dump(mode="json")}
    summary = debating.verdict_summary(data["verdict"])
    if len(summary) > FINDING_CHARS:
        summary = summary[:FINDING_CHARS - 1].rstrip() + "…"
    finding = Finding(step_id=step.id, title=step.title, summary=summary, data=data if step.keep_data else None,
                      step_no=rec.step_no)
    return {**add_finding(state, finding, step.keep_data), **advance(state, step.id), "step": rec.step_no,
            "debate_args": None, **raised}


after_judge = after_observe

__all__ = ["after_judge", "after_round", "argue", "debate_round", "judge"]
