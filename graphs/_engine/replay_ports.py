"""The record-backed ports of a replay: a recorded run's model answers, tool results, cache hits
and budget shares served in record order, each request checked against the record first.

They implement the engine's ports (:mod:`chainproof.graphs._engine.context`) so the nodes run
unchanged: :class:`ReplayModels` (``ModelSource``), :class:`RecordedTool` (``Invocable``),
:class:`RecordedCache` (``CacheSource``) and :class:`RecordedBudgets` (``Guards``).
:func:`chainproof._wiring.context_from_record` puts them together.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool

from chainproof._boundaries import is_refused_call, recorded_refusal
from chainproof.agents.calls import ai_message, wire_messages
from chainproof.checkpoints.audit_hashing import Redactor, has_zdr_stub, sha256_hex
from chainproof.checkpoints.audit_read import Record
from chainproof.errors import NotRetained, ReplayDivergence
from chainproof.graphs.routing import BudgetShare
from chainproof.values import decode_value, encode_value

SNIPPET = 60  # characters of context shown around a difference
PARALLEL_WINDOW = 64  # recorded calls searched for the one a replayed call asks for (a parallel group's calls)


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


def keys_differing(recorded: Any, replayed: Any) -> str:
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        keys = sorted(k for k in recorded.keys() | replayed.keys() if recorded.get(k) != replayed.get(k))
        return f"keys {keys}"
    return f"recorded {_clip(recorded)}, replayed {_clip(replayed)}"


class RecordedCalls:
    """Serves a run's recorded model and tool calls in record (``seq``) order, except that a call
    is matched to the first of the next few records that asks the same (prompt hash and effort;
    tool and argument hash), since a parallel group's branches run in any order; and checks each
    request against the record. Counts what it served (``model_calls_served``, ``tool_calls_served``)."""

    def __init__(self, model_calls: Iterable[Record], tool_calls: Iterable[Record], redactor: Redactor):
        self._models = deque(model_calls)
        # a call refused before it ran (arguments not fitting the tool's schema) is reproduced by
        # the replay's own check, never served
        self._tools = deque(t for t in tool_calls if not is_refused_call(t.error))
        self._redactor = redactor
        self._lock = threading.Lock()  # the branches of a parallel group ask from several threads
        self.model_calls_served = 0
        self.tool_calls_served = 0
        self.last_step_no = 0

    def cached_reply(self, wire: list[dict[str, Any]], effort: str) -> dict[str, Any] | None:
        """The recorded answer when the next recorded call was a reasoning-cache hit (checked like
        :meth:`model_reply`), as a cache response dict; None when it was a model call."""
        with self._lock:
            asked = sha256_hex(wire)
            at = self._match(self._models, lambda r: r.prompt_hash == asked and r.effort == effort)
            if not self._models or not self._models[at].cache_hit:
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
        with self._lock:
            rec = self._next(wire_messages(messages), effort)
        usage = {
            "input_tokens": rec.input_tokens, "output_tokens": rec.output_tokens,
            "total_tokens": rec.input_tokens + rec.output_tokens,
            "input_token_details": {"cache_read": rec.cached_input_tokens},
            "output_token_details": {"reasoning": rec.reasoning_tokens},
        }
        return ai_message(
            rec.output, rec.tool_calls, usage_metadata=usage,
            additional_kwargs={"reasoning_content": rec.reasoning} if rec.reasoning else {},
            response_metadata={"model_name": rec.model, "finish_reason": rec.finish_reason},
        )

    @staticmethod
    def _match(queue: deque[Record], fits: Callable[[Record], bool]) -> int:
        """The position of the first of the next :data:`PARALLEL_WINDOW` records that ``fits``, else 0
        (the next one, which is then reported as the divergence). The branches of a parallel group
        call in whatever order their threads run; their records are told apart by what they ask."""
        return next((i for i, r in enumerate(itertools.islice(queue, PARALLEL_WINDOW)) if fits(r)), 0)

    def _next(self, replayed: list[dict[str, Any]], effort: str) -> Record:
        if not self._models:
            raise ReplayDivergence(self.last_step_no, ["an extra model call the recorded run did not make"])
        prompt_hash = sha256_hex(replayed)
        at = self._match(self._models, lambda r: r.prompt_hash == prompt_hash and r.effort == effort)
        rec = self._models[at]
        del self._models[at]
        self.last_step_no = rec.step_no
        differences = []
        if rec.effort != effort:
            differences.append(f"effort: recorded {rec.effort}, replayed {effort}")
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
        replayed = self._redactor(encode_value(args, where=f"tool {tool}", root="args"))  # the tool got them decoded
        with self._lock:
            if not self._tools:
                raise ReplayDivergence(self.last_step_no, [f"an extra tool call ({tool}) the recorded run did not make"])
            wanted = sha256_hex(replayed)
            at = self._match(self._tools, lambda r: r.tool == tool and sha256_hex(r.args) == wanted)
            rec = self._tools[at]
            del self._tools[at]
            self.last_step_no = rec.step_no
        if rec.tool != tool:
            raise ReplayDivergence(rec.step_no, [f"tool: recorded {rec.tool}, replayed {tool}"])
        if sha256_hex(replayed) != sha256_hex(rec.args):
            raise ReplayDivergence(rec.step_no, [f"tool {tool} arguments differ: {keys_differing(rec.args, replayed)}"])
        self.tool_calls_served += 1
        refusal = recorded_refusal(rec.error)  # a refused result (value contract) is refused again
        if refusal is not None:
            raise refusal
        if rec.error:
            name, _, message = rec.error.partition(": ")
            raise type(name if name.isidentifier() else "RecordedToolError", (RuntimeError,), {})(message)
        return decode_value(rec.result, where=f"tool {tool}")  # what the tool returned


class ReplayChatModel(BaseChatModel):
    """A chat model whose every answer comes from :class:`RecordedCalls` (never from a model)."""

    source: Any
    effort: str

    @property
    def _llm_type(self) -> str:
        return "chainproof-replay"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        """Bind tools as OpenAI tool dicts (as a live model would); the answers still come from the record."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.source.model_reply(messages, self.effort))])


class ReplayModels:
    """The :class:`chainproof.agents.models.ModelProvider` of a replay: recorded answers at every effort."""

    def __init__(self, source: RecordedCalls):
        self.source = source

    def chat(self, effort: str) -> ReplayChatModel:
        return ReplayChatModel(source=self.source, effort=effort)

    def json_chat(self, effort: str, schema: Any) -> ReplayChatModel:
        return self.chat(effort)

    def recorded_reply(self, messages: list[BaseMessage], effort: str) -> AIMessage:
        """The recorded answer to a call a developer's own model makes inside an instrumented
        node (``graphs/_engine/node_calls.py`` serves it in place of the model's)."""
        return self.source.model_reply(messages, effort)


@dataclass
class RecordedCache:
    """The reasoning cache of a replay (:class:`chainproof.graphs.model_access.CacheSource`): a hit exactly
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

    steps: dict[int, Record]
    raised: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_record(cls, recorded: list[Record]) -> RecordedBudgets:
        raised: dict[int, float] = {}
        paused_at: int | None = None
        for r in recorded:
            if r.__tablename__ == "events" and r.kind == "run_paused" and "cost_budget_stop" in (r.detail or {}):
                paused_at = r.detail["cost_budget_stop"]["step_no"]
            elif r.__tablename__ == "events" and r.kind == "run_resumed" and paused_at is not None:
                if (r.detail or {}).get("budget_usd") is not None:
                    raised[paused_at] = float(r.detail["budget_usd"])
                paused_at = None
        return cls({r.step_no: r for r in recorded if r.__tablename__ == "steps"}, raised)

    def share(self, state: Any) -> BudgetShare | None:
        step = self.steps.get(state.get("step", 0) + 1)
        recorded = (step.inputs or {}).get("budget_share") if step is not None else None
        return BudgetShare(recorded["share"], recorded["scope"]) if recorded else None

    def check(self, state: Any, *, step_no: int, **_: Any) -> dict[str, Any]:
        if step_no not in self.raised:
            return {}
        return {"budget": {**(state.get("budget") or {}), "max_cost_usd": self.raised[step_no]}}

    def after_step(self, state: Any, progress: Any = None) -> None:
        return None


@dataclass
class RecordedTool:
    """Stands in for tool ``name``: ``invoke(args)`` returns the recorded result, runs nothing."""

    name: str
    source: RecordedCalls

    def invoke(self, input: dict[str, Any]) -> Any:
        return self.source.tool_result(self.name, input)
