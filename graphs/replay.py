"""Replay a recorded run from its audit trail: the same graph, no model calls, no tool side effects.

The run's graph spec (``graphs.registry.get_spec(run.graph)``) is compiled again with

* a :class:`ReplayModels` provider that answers every model call with the recorded output, in
  record order, after checking that the prompt hashes to the recorded ``prompt_hash``
  (SHA-256 of ``agents.calls.wire_messages``, as ``graphs/recorder.py`` computes it) at the recorded effort;
* :class:`RecordedTool` objects that return the recorded tool results (or raise the recorded
  error) after checking the tool name and the SHA-256 of the arguments;
* LangGraph's ``InMemorySaver`` and a scratch in-memory audit store, so nothing is written to the
  original run (or to any file: the report is rendered and hashed, not written);
* the recorded approval answers, given at each approval ``interrupt`` as ``Command(resume=…)``;
* a reasoning cache (:class:`RecordedCache`) that answers exactly where the recorded run had a
  cache hit (``model_calls.cache_hit``), with the recorded answer, so hits replay as hits;
* the pricing table and routing settings recorded when the run started (``run_started``), and
  the budget share each step's routing saw (its row's ``inputs.budget_share``), so efforts, reasons
  and costs come out the same; cost budgets are not enforced (a pause left no step record).

Afterwards every step's records (steps, model calls, tool calls, approvals, reviews) are compared
with the recorded ones, ignoring each table's ``__replay_ignore__`` columns (ids, timings,
timestamps). The report gives each step as ``identical``, ``divergent`` or ``not-reproducible``
(zero data retention kept only a stub of the model output) and the first divergence with what
differed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from chainproof._boundaries import REFUSAL_KIND, recorded_refusal  # value contract
from chainproof.agents.calls import wire_messages
from chainproof.agents.pricing import Price
from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_hashing import Redactor, has_zdr_stub, record_content, sha256_hex
from chainproof.checkpoints.audit_schema import ApprovalRecord, Chained, EventRecord, ModelCallRecord, Step, ToolCallRecord
from chainproof.errors import NotRetained, ReplayDivergence
from chainproof.graphs.orchestrator import ChainState, Runtime, build_graph
from chainproof.graphs.registry import get_spec
from chainproof.graphs.review import Budget
from chainproof.graphs.routing import BudgetShare, RoutingPolicy, RoutingSettings
from chainproof.values import decode_value, encode_value  # value contract

StepStatus = Literal["identical", "divergent", "not-reproducible", "not-replayed"]
Outcome = Literal["identical", "divergent", "not-reproducible"]
SNIPPET = 60  # characters of context shown around a difference


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= SNIPPET * 2 else text[: SNIPPET * 2] + "…"


def _first_text_difference(recorded: str, replayed: str) -> str:
    at = next((i for i, (a, b) in enumerate(zip(recorded, replayed)) if a != b), min(len(recorded), len(replayed)))
    lo = max(0, at - SNIPPET // 2)
    return (f"differs at character {at}: recorded {recorded[lo:at + SNIPPET // 2]!r}, "
            f"replayed {replayed[lo:at + SNIPPET // 2]!r}")


def describe_prompt_difference(recorded: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> str:
    """Where two prompts (``wire_messages`` lists) first differ, for a person to read."""
    if len(recorded) != len(replayed):
        return f"recorded {len(recorded)} messages, replayed {len(replayed)}"
    for i, (a, b) in enumerate(zip(recorded, replayed), start=1):
        ca, cb = str(a.get("content", "")), str(b.get("content", ""))
        if a.get("role") != b.get("role"):
            return f"message {i}: recorded a {a.get('role')} message, replayed a {b.get('role')} message"
        if ca != cb:
            if has_zdr_stub(ca):
                return f"message {i} ({a.get('role')}): the recorded text was not retained (zero data retention)"
            return f"message {i} ({a.get('role')}) " + _first_text_difference(ca, cb)
    return "the messages differ outside their text (metadata)"


def _keys_differing(recorded: Any, replayed: Any) -> str:
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        keys = sorted(k for k in recorded.keys() | replayed.keys() if recorded.get(k) != replayed.get(k))
        return f"keys {keys}"
    return f"recorded {_clip(recorded)}, replayed {_clip(replayed)}"


class RecordedCalls:
    """Serves a run's recorded model and tool calls in record (``seq``) order and checks each
    request against the record. Counts what it served (``model_calls_served``, ``tool_calls_served``)."""

    def __init__(self, model_calls: Iterable[ModelCallRecord], tool_calls: Iterable[ToolCallRecord], redactor: Redactor):
        self._models = deque(model_calls)
        self._tools = deque(tool_calls)
        self._redactor = redactor
        self.model_calls_served = 0
        self.tool_calls_served = 0
        self.last_step_no = 0

    def cached_reply(self, wire: list[dict[str, Any]], effort: str) -> dict[str, Any] | None:
        """The recorded answer when the next recorded call was a reasoning-cache hit (checked like
        :meth:`model_reply`), as a cache response dict; None when it was a model call."""
        if not self._models or not self._models[0].cache_hit:
            return None
        rec = self._next(wire, effort)
        return {"model": rec.model, "output": rec.output, "reasoning": rec.reasoning, "tool_calls": rec.tool_calls,
                "usage": {"input_tokens": rec.input_tokens, "cached_input_tokens": rec.cached_input_tokens,
                          "output_tokens": rec.output_tokens, "reasoning_tokens": rec.reasoning_tokens},
                "finish_reason": rec.finish_reason}

    def model_reply(self, messages: list[BaseMessage], effort: str) -> AIMessage:
        """The recorded reply to the next model call. Raises :class:`ReplayDivergence` when the
        prompt or effort differs or the run made no further call, :class:`NotRetained` when only a
        zero-data-retention stub of the output was kept."""
        rec = self._next(wire_messages(messages), effort)
        usage = {
            "input_tokens": rec.input_tokens, "output_tokens": rec.output_tokens,
            "total_tokens": rec.input_tokens + rec.output_tokens,
            "input_token_details": {"cache_read": rec.cached_input_tokens},
            "output_token_details": {"reasoning": rec.reasoning_tokens},
        }
        return AIMessage(
            content=rec.output, tool_calls=rec.tool_calls, usage_metadata=usage,
            additional_kwargs={"reasoning_content": rec.reasoning} if rec.reasoning else {},
            response_metadata={"model_name": rec.model, "finish_reason": rec.finish_reason},
        )

    def _next(self, replayed: list[dict[str, Any]], effort: str) -> ModelCallRecord:
        if not self._models:
            raise ReplayDivergence(self.last_step_no, ["an extra model call the recorded run did not make"])
        rec = self._models.popleft()
        self.last_step_no = rec.step_no
        differences = []
        if rec.effort != effort:
            differences.append(f"effort: recorded {rec.effort}, replayed {effort}")
        prompt_hash = sha256_hex(replayed)
        if prompt_hash != rec.prompt_hash:
            differences.append(f"prompt_hash: recorded {rec.prompt_hash[:12]}…, replayed {prompt_hash[:12]}… ("
                               + describe_prompt_difference(rec.messages, self._redactor(replayed)) + ")")
        if differences:
            raise ReplayDivergence(rec.step_no, [f"model call ({rec.node}): {d}" for d in differences])
        if has_zdr_stub(rec.output) or has_zdr_stub(rec.tool_calls):
            raise NotRetained(rec.step_no, "the model output")
        self.model_calls_served += 1
        return rec

    def tool_result(self, tool: str, args: dict[str, Any]) -> Any:
        """The recorded result of the next tool call (or its recorded error, raised as an exception
        of the recorded class name). Raises :class:`ReplayDivergence` on another tool or arguments."""
        if not self._tools:
            raise ReplayDivergence(self.last_step_no, [f"an extra tool call ({tool}) the recorded run did not make"])
        rec = self._tools.popleft()
        self.last_step_no = rec.step_no
        replayed = self._redactor(encode_value(args, where=f"tool {tool}", root="args"))  # value contract: as recorded
        if rec.tool != tool:
            raise ReplayDivergence(rec.step_no, [f"tool: recorded {rec.tool}, replayed {tool}"])
        if sha256_hex(replayed) != sha256_hex(rec.args):
            raise ReplayDivergence(rec.step_no, [f"tool {tool} arguments differ: {_keys_differing(rec.args, replayed)}"])
        self.tool_calls_served += 1
        refusal = recorded_refusal(rec.error)  # value contract: a refused result is refused again
        if refusal is not None:
            raise refusal
        if rec.error:
            name, _, message = rec.error.partition(": ")
            raise type(name if name.isidentifier() else "RecordedToolError", (RuntimeError,), {})(message)
        return decode_value(rec.result, where=f"tool {tool}")  # value contract: what the tool returned


class ReplayChatModel(BaseChatModel):
    """A chat model whose every answer comes from :class:`RecordedCalls` (never from a model)."""

    source: Any
    effort: str

    @property
    def _llm_type(self) -> str:
        return "chainproof-replay"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.source.model_reply(messages, self.effort))])


class ReplayModels:
    """The :class:`agents.models.ModelProvider` of a replay: recorded answers at every effort."""

    def __init__(self, source: RecordedCalls):
        self.source = source

    def chat(self, effort: str) -> ReplayChatModel:
        return ReplayChatModel(source=self.source, effort=effort)

    def json_chat(self, effort: str, schema: Any) -> ReplayChatModel:
        return self.chat(effort)


@dataclass
class RecordedCache:
    """The reasoning cache of a replay (:class:`graphs.model_access.CacheSource`): a hit exactly
    where the recorded run had one, with the recorded answer; stores nothing."""

    source: RecordedCalls

    def lookup(self, key: str, messages: list[dict[str, Any]], effort: str) -> dict[str, Any] | None:
        return self.source.cached_reply(messages, effort)

    def store(self, key: str, model: str, effort: str, response: dict[str, Any]) -> None:
        return None


@dataclass
class RecordedBudgets:
    """Cost budgets in a replay: each step's routing sees the budget share recorded on its step row
    (``inputs.budget_share``); nothing pauses and no alert is written, but a step that paused at a
    cost budget and was resumed with a larger one (``raised``: step number -> USD, from the
    ``run_paused`` / ``run_resumed`` events) raises it in the state as the live run did."""

    steps: dict[int, Step]
    raised: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_record(cls, recorded: list[Chained]) -> RecordedBudgets:
        raised: dict[int, float] = {}
        paused_at: int | None = None
        for r in recorded:
            if isinstance(r, EventRecord) and r.kind == "run_paused" and "cost_budget_stop" in (r.detail or {}):
                paused_at = r.detail["cost_budget_stop"]["step_no"]
            elif isinstance(r, EventRecord) and r.kind == "run_resumed" and paused_at is not None:
                if (r.detail or {}).get("budget_usd") is not None:
                    raised[paused_at] = float(r.detail["budget_usd"])
                paused_at = None
        return cls({r.step_no: r for r in recorded if isinstance(r, Step)}, raised)

    def share(self, state: Any) -> BudgetShare | None:
        step = self.steps.get(state.get("step", 0) + 1)
        recorded = (step.inputs or {}).get("budget_share") if step is not None else None
        return BudgetShare(recorded["share"], recorded["scope"]) if recorded else None

    def check(self, state: Any, *, step_no: int, **_: Any) -> dict[str, Any]:
        if step_no not in self.raised:
            return {}
        return {"budget": {**(state.get("budget") or {}), "max_cost_usd": self.raised[step_no]}}

    def after_step(self, state: Any) -> None:
        return None


@dataclass
class RecordedTool:
    """Stands in for tool ``name``: ``invoke(args)`` returns the recorded result, runs nothing."""

    name: str
    source: RecordedCalls

    def invoke(self, input: dict[str, Any]) -> Any:
        return self.source.tool_result(self.name, input)


@dataclass
class StepComparison:
    """One step of a replay. ``recorded`` / ``replayed``: the step's records as compared (each a
    dict with its ``table`` and compared columns); ``differences``: what differed, readable."""

    step_no: int
    node: str
    title: str
    status: StepStatus
    differences: list[str] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)
    replayed: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ReplayReport:
    """Outcome of :func:`replay_run`. ``outcome`` is ``identical`` (every recorded step was
    reproduced exactly), ``divergent`` (``first_divergence`` names the step) or
    ``not-reproducible`` (zero data retention: ``steps`` marks which). ``duration_s``: wall time."""

    run_id: str
    graph: str
    outcome: Outcome
    steps: list[StepComparison]
    model_calls_served: int
    tool_calls_served: int
    duration_s: float
    stopped_by: str | None = None

    @property
    def first_divergence(self) -> StepComparison | None:
        return next((s for s in self.steps if s.status == "divergent"), None)

    def step(self, step_no: int) -> StepComparison:
        """The comparison of ``step_no``. Raises ``ValueError`` naming the steps there are."""
        for s in self.steps:
            if s.step_no == step_no:
                return s
        numbers = [s.step_no for s in self.steps]
        span = f"{min(numbers)}..{max(numbers)}" if numbers else "none"
        raise ValueError(f"step: run {self.run_id} has steps {span}, not {step_no}")


TRANSPORT_KEYS = ("model_attempts",)
"""Step-output keys about how a model was reached (HTTP attempts, waits, failovers), not about the
reasoning: a replay serves answers from the record, so it has none to compare."""


def _comparable(rec: Chained) -> dict[str, Any]:
    content = record_content(rec)
    out = {k: v for k, v in content.items() if k not in rec.__replay_ignore__ or k == "table"}
    if isinstance(out.get("output"), dict):
        out["output"] = {k: v for k, v in out["output"].items() if k not in TRANSPORT_KEYS}
    return out


def _by_step(records: Iterable[Chained]) -> dict[int, list[Chained]]:
    """Records per step number. A step that failed (``status='error'``: a model endpoint down, the
    process interrupted) and ran again when the run was resumed keeps only its final execution:
    the failed attempt is history, not something a replay reproduces."""
    out: dict[int, list[Chained]] = {}
    for rec in records:
        if not isinstance(rec, EventRecord):
            out.setdefault(rec.step_no, []).append(rec)
    for step_no, recs in out.items():
        errors = [i for i, r in enumerate(recs) if isinstance(r, Step) and r.status == "error"]
        if errors and any(isinstance(r, Step) and r.status != "error" for r in recs[errors[-1] + 1:]):
            out[step_no] = recs[errors[-1] + 1:]
    return out


def _differences(recorded: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> list[str]:
    if [r["table"] for r in recorded] != [r["table"] for r in replayed]:
        return [f"records: recorded {[r['table'] for r in recorded]}, replayed {[r['table'] for r in replayed]}"]
    out = []
    for a, b in zip(recorded, replayed):
        for key in sorted(a.keys() | b.keys()):
            if a.get(key) != b.get(key):
                detail = (describe_prompt_difference(a[key], b[key]) if key == "messages"
                          else _keys_differing(a.get(key), b.get(key)))
                out.append(f"{a['table']}.{key}: {detail}")
    return out


def _title(records: list[Chained]) -> tuple[str, str]:
    step = next((r for r in records if isinstance(r, Step)), None)
    return (step.node, step.title) if step else ("-", "-")


def compare_steps(recorded: list[Chained], replayed: list[Chained], stop: BaseException | None) -> list[StepComparison]:
    """Compare two traces step by step (see the module docstring); ``stop`` is what ended the
    replay early (a :class:`ReplayDivergence`, :class:`NotRetained` or another exception)."""
    rec_steps, rep_steps = _by_step(recorded), _by_step(replayed)
    out: list[StepComparison] = []
    settled: StepStatus | None = None  # once a step diverged or could not be reproduced
    for step_no in sorted(rec_steps.keys() | rep_steps.keys()):
        a, b = rec_steps.get(step_no, []), rep_steps.get(step_no, [])
        node, title = _title(a or b)
        ca, cb = [_comparable(r) for r in a], [_comparable(r) for r in b]
        if settled:
            status: StepStatus = "not-reproducible" if settled == "not-reproducible" else "not-replayed"
            out.append(StepComparison(step_no, node, title, status if a else "not-replayed", [], ca, cb))
            continue
        if isinstance(stop, ReplayDivergence) and stop.step_no == step_no:
            out.append(StepComparison(step_no, node, title, "divergent", stop.differences, ca, cb))
            settled = "divergent"
            continue
        if isinstance(stop, NotRetained) and stop.step_no == step_no:
            out.append(StepComparison(step_no, node, title, "not-reproducible",
                                      [f"{stop.what} was not retained (zero data retention)"], ca, cb))
            settled = "not-reproducible"
            continue
        if not a:
            diffs = ["the replay ran a step the recorded run does not have"]
        elif not b:
            diffs = ["the replay did not reach this step"]
            if stop is not None:
                diffs.append(f"the replay stopped: {type(stop).__name__}: {stop}")
        else:
            diffs = _differences(ca, cb)
        status = "divergent" if diffs else "identical"
        out.append(StepComparison(step_no, node, title, status, diffs, ca, cb))
        if diffs:
            settled = "divergent"
    return out


def _report_dir(steps: list[Step]) -> Path:
    for s in steps:
        if s.node == "report" and isinstance(s.output, dict) and s.output.get("path"):
            return Path(s.output["path"]).parent
    return Path(".")


def replay_run(store: AuditStore, run_id: str) -> ReplayReport:
    """Replay ``run_id`` of ``store`` (see the module docstring). Reads the store only.

    Raises ``LookupError`` for an unknown run and ``KeyError`` when its graph is not registered.
    """
    started = time.perf_counter()
    run = store.get_run(run_id)
    if run is None:
        raise LookupError(f"no run {run_id!r} in the audit store")
    recorded = store.records(run_id)
    spec = get_spec(run.graph)
    source = RecordedCalls(
        [r for r in recorded if isinstance(r, ModelCallRecord)],
        [r for r in recorded if isinstance(r, ToolCallRecord)],
        store.redactor,
    )
    first_event = next((r for r in recorded if isinstance(r, EventRecord) and r.kind == "run_started"), None)
    started_detail = (first_event.detail or {}) if first_event else {}
    effort = started_detail.get("effort_override")
    budget = Budget.model_validate(started_detail.get("budget") or {"max_steps": spec.max_steps,
                                                                     "review_every": spec.review_every})
    decisions = {r.request_id: r for r in recorded if isinstance(r, ApprovalRecord) and r.action != "requested"}
    extensions = deque(r for r in recorded if isinstance(r, Step) and r.node == "review"
                       and "budget" in (r.output or {}) and r.output.get("decision") == "continue")

    scratch = AuditStore.scratch(store.redactor)
    try:
        goal = spec.goal(decode_value(run.inputs, where="inputs"))  # value contract
        scratch.start_run(run_id, graph=run.graph, goal=goal, inputs=run.inputs, company=run.company,
                          department=run.department, started_by=run.started_by, zdr=run.zdr, effort_override=effort)
        pricing = started_detail.get("pricing")
        steps = [r for r in recorded if isinstance(r, Step)]
        runtime = Runtime(
            spec, ReplayModels(source), scratch, _report_dir(steps), effort,
            tools={t.name: RecordedTool(t.name, source) for t in spec.tools()}, write_reports=False,
            routing=RoutingPolicy(RoutingSettings.model_validate(started_detail.get("routing") or {})),
            pricing={m: Price.model_validate(p) for m, p in pricing.items()} if pricing is not None else None,
            cache=RecordedCache(source), budgets=RecordedBudgets.from_record(recorded),
        )
        app = build_graph(runtime, InMemorySaver())
        config: dict[str, Any] = {"configurable": {"thread_id": run_id}, "recursion_limit": budget.recursion_limit()}
        payload: Any = store.redactor(ChainState(run_id=run_id, graph=run.graph, goal=goal, inputs=run.inputs, step=0,
                                                 budget=budget.model_dump()))
        stop: BaseException | None = None
        while True:
            try:
                for _ in app.stream(payload, config, stream_mode="updates"):
                    pass
            except Exception as exc:
                stop = exc
                break
            interrupts = app.get_state(config).interrupts
            if not interrupts:
                break
            resume, stop = _recorded_answers(interrupts, decisions, extensions, scratch, run_id,
                                             {s.step_no for s in steps})
            if stop is not None or not resume:
                break
            if any(i.value.get("kind") == "budget" for i in interrupts):
                new_max = max(v["max_steps"] for v in resume.values() if "max_steps" in v)
                config["recursion_limit"] = budget.model_copy(update={"max_steps": new_max}).recursion_limit()
            payload = Command(resume=resume)
        steps = compare_steps(recorded, scratch.records(run_id), stop)
    finally:
        scratch.close()
    statuses = {s.status for s in steps}
    outcome: Outcome = ("divergent" if "divergent" in statuses
                        else "not-reproducible" if "not-reproducible" in statuses else "identical")
    return ReplayReport(run_id, run.graph, outcome, steps, source.model_calls_served, source.tool_calls_served,
                        round(time.perf_counter() - started, 4),
                        stopped_by=f"{type(stop).__name__}: {stop}" if stop is not None else None)


def _recorded_answers(interrupts: Any, decisions: dict[str, ApprovalRecord], extensions: deque, scratch: AuditStore,
                      run_id: str, recorded_steps: set[int]) -> tuple[dict[str, Any], BaseException | None]:
    """The resume map for the replay's open interrupts, from the record: a budget stop gets the
    recorded extension; an approval request gets its recorded decision, which is first written
    to the scratch store (the approve node accepts only recorded decisions, as in a live run)."""
    resume: dict[str, Any] = {}
    for intr in interrupts:
        value = intr.value
        if value.get("kind") == REFUSAL_KIND:  # value contract: go on where the recorded run was resumed
            if value.get("step_no") not in recorded_steps:
                return {}, None
            resume[intr.id] = {}
            continue
        if value.get("kind") == "budget":
            if not extensions:
                return {}, None  # the run was still stopped at its budget when recorded
            out = extensions.popleft().output
            resume[intr.id] = {"max_steps": out["budget"]["max_steps"], "by": out.get("by")}
            continue
        decision = decisions.get(value.get("request_id"))
        if decision is None:
            if resume or decisions:
                return {}, ReplayDivergence(value.get("step_no", 0), [
                    f"approval request {value.get('request_id')} has no recorded decision "
                    f"(recorded: {sorted(decisions)})"])
            return {}, None  # the run was still waiting for approval when recorded
        scratch.append_decision(run_id, ApprovalRecord(
            step_no=decision.step_no, request_id=decision.request_id, action=decision.action,
            approver=decision.approver, comment=decision.comment, proposed_hash=decision.proposed_hash,
            payload=decision.payload))
        resume[intr.id] = decision.payload
    return resume, None


__all__ = ["NotRetained", "RecordedBudgets", "RecordedCache", "RecordedCalls", "RecordedTool", "ReplayChatModel", "ReplayDivergence", "ReplayModels",
           "ReplayReport", "StepComparison", "compare_steps", "replay_run"]
