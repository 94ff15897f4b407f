"""Agent steps (ReAct): what the model sees each iteration, what the state keeps, how a step ends.

An agent plan step (``PlanStep(kind="agent")``) runs as one super-step per iteration (the
``agent`` node, ``graphs/_engine/nodes/agent.py``): the model, with the step's tools bound
(LangChain ``bind_tools``), answers with text or asks for tool calls; each call is checked against
its tool's schema and run, and the results go back to the model in the next iteration, as in
LangGraph's prebuilt ``create_react_agent`` (model node, then ``ToolNode`` returning one
``ToolMessage`` per call, errors included as its ``handle_tool_errors`` does).

**Bounded context.** The conversation is not kept whole: the checkpointed state holds the last
:data:`WINDOW_ITERATIONS` iterations as messages, and every earlier tool call as one line of
:data:`NOTE_CHARS` characters (the latest :data:`NOTE_LINES` lines). So each iteration's prompt,
checkpoint and audit rows stay the same size however long the loop runs (``bench/agent_loop.py``
measures it), in the way LangGraph's ``pre_model_hook`` with ``trim_messages`` bounds a prebuilt
agent's history. The full text of every call and result is in the audit store.

**How a step ends** (:data:`StopReason`): ``answered`` (the model replied without a tool call),
``returned`` (a call of a ``return_direct`` tool ran: its result, as the model would have seen it,
is the answer, LangGraph's ``create_react_agent`` behaviour; unlike LangGraph, an invalid or
failed call of such a tool does not end the step but goes back to the model to repair), ``max_iterations``, ``invalid_calls`` (more invalid calls than ``max_invalid_calls``), or
``review`` (a goal review ended it). Every ending gives the best answer available (the answer;
else the model's last text; else the latest tool results, written by code) and the reason.

**Reviews** every ``review_every`` iterations (:class:`AgentReview`): continue, re-scope the
step's task, or end the step.

**Answer checks.** When the model answers (a reply without a tool call), the spec's
:meth:`~chainproof.graphs.spec.ChainSpec.check_answer` sees the answer and what the step did
(:class:`AgentAnswer`) and may send it back with a note, as PydanticAI's output validators do by
raising ``ModelRetry``: the answer and the note join the window and the loop goes on, at most
``PlanStep.answer_checks`` times per step (then, or at ``max_iterations``, the answer stands).
A :class:`SendBack` may also name the tool the model's next reply must call (OpenAI's
``tool_choice`` naming a function), for that one iteration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel, Field, model_validator

from chainproof.agents.structured import Clip
from chainproof.graphs.prompting import known_parts
from chainproof.graphs.spec import ChainSpec, PlanStep

WINDOW_ITERATIONS = 3  # iterations the model sees as messages
NOTE_LINES = 12  # one line per earlier tool call, the latest kept
NOTE_CHARS = 160  # characters of one such line
RESULT_CHARS = 2400  # characters of a tool result shown to the model (the audit keeps it whole)
ANSWER_CHARS = 4000  # characters of a step's answer kept in state

StopReason = Literal["answered", "returned", "max_iterations", "invalid_calls", "review"]

AGENT_RULES = (
    "You can call the tools you are given. Call a tool whenever you need a fact or a calculation; never compute "
    "or invent numbers yourself. When you can answer the task, reply with the answer as plain text and call no tool."
)


class AgentReview(BaseModel):
    """The reviewer's answer on an agent step in progress: ``continue``; ``rescope`` with
    ``instruction``, the task for the remaining iterations; or ``end_step`` (the step ends with
    the best answer available)."""

    decision: Literal["continue", "rescope", "end_step"]
    reason: Annotated[str, Clip(300, "why, in one or two sentences", 3)]
    instruction: str | None = Field(default=None, max_length=600)

    @model_validator(mode="after")
    def _instruction_when_rescoping(self) -> AgentReview:
        if self.decision == "rescope" and not (self.instruction or "").strip():
            raise ValueError("instruction: a rescope needs the new task for the remaining iterations")
        return self


@dataclass(frozen=True)
class AgentAnswer:
    """An agent step's answer as :meth:`~chainproof.graphs.spec.ChainSpec.check_answer` sees it:
    ``text`` (the model's reply), ``iteration`` (1-based), ``tools_run`` (names of the tools that
    ran without error in this step, in the order first run), ``results`` (the tool results the
    model still sees, as shown to it: ``(tool name, text)``, at most :data:`RESULT_CHARS` each)
    and ``checks`` (how many answers of this step were already sent back)."""

    text: str
    iteration: int
    tools_run: tuple[str, ...]
    results: tuple[tuple[str, str], ...]
    checks: int


@dataclass(frozen=True)
class SendBack:
    """What :meth:`~chainproof.graphs.spec.ChainSpec.check_answer` returns to send an answer
    back: ``note`` for the model and, optionally, ``tool``, the next reply's ``tool_choice`` (for
    that one reply): one of the step's tools, which it must call (OpenAI's ``{"type": "function",
    "function": {"name": tool}}``), or OpenAI's ``"none"`` (it must answer in text; the embedded
    model is then shown no tool schemas) or ``"required"``. A plain string is a ``SendBack``
    without a tool (the model chooses: ``"auto"``). A tool the step does not have fails the run
    (``ValueError`` naming ``check_answer``)."""

    note: str
    tool: str | None = None


def start(step: PlanStep) -> dict[str, Any]:
    """The state of an agent step before its first iteration (``ChainState["agent"]``)."""
    return {"step_id": step.id, "iteration": 0, "instruction": step.instruction, "window": [], "notes": [],
            "earlier_calls": 0, "invalid": 0, "calls": 0, "best": "", "last_review_at": 0}


def answer_of(run: Mapping[str, Any], text: str) -> AgentAnswer:
    """The :class:`AgentAnswer` of ``text`` given at the run's current iteration."""
    results = tuple((m["name"], m["content"]) for m in run["window"] if m["role"] == "tool" and not m.get("error"))
    return AgentAnswer(text=text, iteration=run["iteration"], tools_run=tuple(run.get("tools_run", ())),
                       results=results, checks=run.get("answer_checks", 0))


def sent_back(run: Mapping[str, Any], iteration: int, text: str, back: SendBack) -> dict[str, Any]:
    """``run`` after an answer was sent back: the answer and the note join the window, the count
    of checks of the step goes up, and the next iteration's ``tool_choice`` is the named tool."""
    entries: list[dict[str, Any]] = [{"role": "ai", "content": text, "calls": []},
                                     {"role": "human", "content": back.note}]
    out = {**advance_window(run, iteration, entries), "answer_checks": run.get("answer_checks", 0) + 1}
    if back.tool:
        out["tool_choice"] = back.tool
    return out


def limit_of(spec: ChainSpec, step: PlanStep) -> int:
    """The step's ``max_iterations`` (the spec's ``max_iterations`` when unset)."""
    return step.max_iterations or spec.max_iterations


def review_every_of(step: PlanStep, budget: Mapping[str, Any]) -> int:
    """Iterations between goal reviews of the step (its own ``review_every``, else the run's)."""
    return step.review_every if step.review_every is not None else int(budget.get("review_every") or 0)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 14] + " …[truncated]"


def as_text(value: Any) -> str:
    """A tool result or arguments as one line of exact JSON (text stays text)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                                                           default=str)


def messages_of(window: list[dict[str, Any]]) -> list[BaseMessage]:
    """The window's compact messages as LangChain messages (what the model is sent)."""
    out: list[BaseMessage] = []
    for m in window:
        if m["role"] == "ai":
            out.append(AIMessage(content=m["content"], tool_calls=[
                {"name": c["name"], "args": c["args"], "id": c["id"], "type": "tool_call"} for c in m["calls"]]))
        elif m["role"] == "tool":
            out.append(ToolMessage(content=m["content"], tool_call_id=m["id"], name=m["name"],
                                   status="error" if m.get("error") else "success"))
        else:
            out.append(HumanMessage(m["content"]))
    return out


def prompt(spec: ChainSpec, state: Mapping[str, Any], run: Mapping[str, Any], iteration: int, limit: int,
           progress: str, evidence: str = "") -> list[BaseMessage]:
    """The prompt of one iteration: the system prompt with the agent rules, the step's task with
    the goal, progress, rolling summary, the review's note, the cited ``evidence`` and notes on
    earlier calls, then the window. The text is
    part of every recorded prompt hash: changing it breaks replay of recorded agent runs."""
    parts = [f"Goal: {state['goal']}", progress, *known_parts(state)]
    if evidence:
        parts.append(evidence)
    parts.append(f"Your task now: {run['instruction']}")
    if run["notes"]:
        omitted = run["earlier_calls"] - len(run["notes"])
        head = f"Earlier tool calls ({omitted} older ones not shown):" if omitted else "Earlier tool calls:"
        parts.append(head + "\n" + "\n".join(f"- {n}" for n in run["notes"]))
    parts.append(f"Iteration {iteration} of at most {limit}.")
    return [SystemMessage(f"{spec.system_prompt}\n\n{AGENT_RULES}"), HumanMessage("\n\n".join(parts)),
            *messages_of(run["window"])]


def advance_window(run: Mapping[str, Any], iteration: int, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """``run`` with one iteration's messages (``entries``, each tagged with the iteration) added;
    iterations older than :data:`WINDOW_ITERATIONS` leave the window as one note per tool call."""
    window = [*run["window"], *({**e, "it": iteration} for e in entries)]
    oldest = iteration - WINDOW_ITERATIONS + 1
    old = [m for m in window if m["it"] < oldest]
    notes, earlier = list(run["notes"]), run["earlier_calls"]
    calls = {c["id"]: c for m in old if m["role"] == "ai" for c in m["calls"]}
    for m in old:
        if m["role"] == "tool":
            call = calls.get(m["id"], {"name": m["name"], "args": {}})
            notes.append(_clip(f"#{m['it']} {call['name']}({as_text(call['args'])}) -> {m['content']}", NOTE_CHARS))
            earlier += 1
    return {**run, "window": [m for m in window if m["it"] >= oldest], "notes": notes[-NOTE_LINES:],
            "earlier_calls": earlier}


def tool_message(call_id: str, name: str, content: str, error: bool) -> dict[str, Any]:
    """A tool result (or error) as the window keeps it."""
    return {"role": "tool", "id": call_id, "name": name, "content": _clip(content, RESULT_CHARS), "error": error}


def best_answer(run: Mapping[str, Any]) -> str:
    """The best answer available when the model gave none: its last text, else the latest tool
    results (built by code from the window), else a plain statement that there is none."""
    if run["best"]:
        return str(run["best"])
    results = [f"{m['name']} -> {m['content']}" for m in run["window"] if m["role"] == "tool" and not m.get("error")]
    if results:
        return _clip("No answer from the model; latest tool results: " + "; ".join(results[-3:]), ANSWER_CHARS)
    return "No answer from the model and no tool result."


def outcome(run: Mapping[str, Any], reason: StopReason, answer: str | None, detail: str) -> dict[str, Any]:
    """What an ended agent step hands to ``observe`` (and keeps as the finding's data with
    ``keep_data``): the answer (None unless the model answered), the best answer available, why
    and after how many iterations it stopped, and how many tool calls it made."""
    return {"answer": _clip(answer, ANSWER_CHARS) if answer is not None else None,
            "best": _clip(answer, ANSWER_CHARS) if answer else best_answer(run), "stop_reason": reason,
            "detail": detail, "iterations": run["iteration"], "tool_calls": run["calls"],
            "invalid_calls": run["invalid"]}


def finding_summary(result: Mapping[str, Any]) -> str:
    """The finding's summary of an ended agent step."""
    if result["stop_reason"] in ("answered", "returned"):
        return str(result["answer"]).strip() or "(the model returned no text)"
    return f"Stopped without an answer ({result['detail']}). Best answer available: {result['best']}"


def review_task(step: PlanStep, run: Mapping[str, Any], limit: int) -> str:
    """The reviewer's task on an agent step in progress (goal and summary come from the step prompt)."""
    recent = [f"{m['name']} -> {m['content'][:200]}" for m in run["window"] if m["role"] == "tool"]
    calls = "\n".join(f"- {n}" for n in [*run["notes"][-6:], *recent[-6:]]) or "- none yet"
    return (
        f"Review the agent step '{step.title}' after {run['iteration']} of at most {limit} iterations against the "
        f"ORIGINAL goal. Its task: {run['instruction']}\nIts latest tool calls:\n{calls}\n\nDecide 'continue' if it is "
        "making progress toward the task, 'rescope' (give instruction: the corrected or narrower task for the "
        "remaining iterations) if it has drifted, or 'end_step' if more iterations will not help."
    )
