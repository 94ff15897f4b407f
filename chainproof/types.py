"""The typed payloads shared by the engine and the shell: why a run paused, what it reports while
it runs, and where it stands after a call.

Modelled on LangGraph's ``langgraph/types.py`` (``Interrupt`` with ``value``/``id``; ``StreamPart``
as a union of typed parts) with each attribute documented under it, and on the discriminated
unions of pydantic (``Field(discriminator="kind")``).

The interrupt values written into checkpoints stay the JSON dicts they always were (so existing
checkpoints and recorded runs resume and replay unchanged); only the reading side is typed:
:func:`parse_pause` turns an interrupt value into a :data:`Pause`, :func:`parse_progress` a
progress event (a dict from the run's progress sink) into a :data:`ProgressEvent`. Each parsed object keeps the dict it was
parsed from as ``.value`` (what the audit events record, byte for byte).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from chainproof.graphs.approval import ApprovalRequest

__all__ = ["ApprovalPause", "BudgetAlert", "CostBudgetPause", "Pause", "ProgressEvent", "RunResult", "RunStatus",
           "StepBudgetPause", "StepFinished", "ValueRefusedPause", "parse_pause", "parse_progress"]


class _Wire(BaseModel):
    """A typed view of a JSON dict from the engine; ``value`` is that dict as written."""

    model_config = ConfigDict(frozen=True)
    _value: dict[str, Any] | None = PrivateAttr(default=None)

    @property
    def value(self) -> dict[str, Any]:
        """The JSON dict as the engine wrote it (the interrupt value or stream chunk)."""
        return self._value if self._value is not None else self.model_dump(mode="json", exclude={"interrupt_id"})

    # Read compatibility for callers written against the untyped dicts (``event["node"]``,
    # ``event.get("kind")``); new code reads the attributes.
    def __getitem__(self, key: str) -> Any:
        return self.value[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.value.get(key, default)


class ApprovalPause(ApprovalRequest, _Wire):
    """The run waits for a person's decision on one request (one LangGraph interrupt of the
    ``approve`` node; several requests of a round pause together). Fields: those of
    :class:`chainproof.graphs.approval.ApprovalRequest`."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["approval"] = "approval"
    """Discriminator."""
    interrupt_id: str = Field(default="", exclude=True)
    """LangGraph's id of the interrupt (the key of its ``Command(resume={id: answer})``)."""


class StepBudgetPause(_Wire):
    """The run stopped at its step budget (``Budget.on_budget="pause"``); resume it with a larger
    ``max_steps`` (``chainproof resume RUN_ID --max-steps N``)."""

    kind: Literal["budget"] = "budget"
    """Discriminator (the interrupt value's ``kind``)."""
    run_id: str
    """The run."""
    done_count: int
    """Plan steps done."""
    max_steps: int
    """The budget reached, in plan steps."""
    remaining: int
    """Plan steps left."""
    question: str
    """What the pause asks, for a person to read."""
    interrupt_id: str = Field(default="", exclude=True)
    """LangGraph's id of the interrupt."""


class CostBudgetPause(_Wire):
    """The run paused before a model call whose projected cost would exceed a budget
    (:mod:`chainproof.graphs.budgets`); the call was not made."""

    kind: Literal["cost_budget"] = "cost_budget"
    """Discriminator (the interrupt value's ``kind``)."""
    run_id: str
    """The run."""
    scope: str
    """Which budget: ``run`` or ``department NAME YYYY-MM``."""
    field: str
    """What to raise: ``budget_usd`` (``--budget-usd``) or ``budgets.departments.NAME`` (settings)."""
    budget_usd: float
    """The budget in USD."""
    spent_usd: float
    """Spent so far in USD (a lower bound when ``unpriced_calls`` > 0)."""
    unpriced_calls: int = 0
    """Recorded calls without a price."""
    projected_usd: float
    """Worst-case USD of the paused node's calls."""
    node: str
    """The node that paused."""
    step_no: int
    """The super-step it would have been."""
    effort: str
    """Its effort."""
    question: str
    """What the pause asks, for a person to read."""
    interrupt_id: str = Field(default="", exclude=True)
    """LangGraph's id of the interrupt."""


class ValueRefusedPause(_Wire):
    """A tool returned a value outside the value contract (:mod:`chainproof.values`): the tool call
    is recorded with the refusal as its error and the run stops, recorded as failed.
    ``chainproof resume RUN_ID`` continues it with the refusal as the step's finding; the tool is
    not run again (``chainproof/_boundaries.py``)."""

    kind: Literal["value_refused"] = "value_refused"
    """Discriminator (the interrupt value's ``kind``)."""
    run_id: str
    """The run."""
    step_no: int
    """The super-step the refusal's finding is recorded under."""
    plan_step: str
    """The plan step whose tool result was refused."""
    tool: str | None = None
    """The tool."""
    error: str
    """The refusal: the tool, the key path and the type."""
    interrupt_id: str = Field(default="", exclude=True)
    """LangGraph's id of the interrupt."""


Pause = Annotated[Union[ApprovalPause, StepBudgetPause, CostBudgetPause, ValueRefusedPause],
                  Field(discriminator="kind")]
"""Why a run stopped at an interrupt: one of the four interrupt kinds, told apart by ``kind``."""

_PAUSE: TypeAdapter[Pause] = TypeAdapter(Pause)


def parse_pause(value: Mapping[str, Any], interrupt_id: str = "") -> Pause:
    """The typed pause of an interrupt ``value`` (a value without ``kind``, as written before kinds
    existed, is an approval request). Raises ``pydantic.ValidationError`` for a value of none of
    the three shapes."""
    data = dict(value)
    pause = _PAUSE.validate_python({"kind": "approval", **data, "interrupt_id": interrupt_id})
    pause._value = dict(value)
    return pause


class StepFinished(_Wire):
    """A super-step finished and was recorded (written by
    :class:`chainproof.graphs.recorder.StepRecorder` to the run's progress sink)."""

    kind: Literal["step"] = "step"
    """Discriminator (absent on the wire: a chunk without ``kind`` is a step)."""
    step: int
    """Super-step number."""
    node: str
    """Node name."""
    title: str
    """The step's title."""
    effort: str | None = None
    """Effort of its model calls (None: no model call)."""
    model: str | None = None
    """Model name(s)."""
    tokens: int = 0
    """Total tokens."""
    reasoning_tokens: int = 0
    """Reasoning tokens (part of the output tokens)."""
    cost_usd: float | None = None
    """USD (None: unknown, a model without a price)."""
    cache_hits: int = 0
    """Reasoning-cache hits."""
    elapsed_s: float
    """Wall time of the step in seconds."""
    status: Literal["ok", "error"]
    """``error``: the step raised (the run fails resumably)."""


class BudgetAlert(_Wire):
    """A budget's spend reached its alert share (once per run and budget; also a ``budget_alert``
    audit event with the same fields)."""

    kind: Literal["budget_alert"] = "budget_alert"
    """Discriminator."""
    scope: str
    """Which budget: ``run`` or ``department NAME YYYY-MM``."""
    budget_usd: float
    """The budget in USD."""
    spent_usd: float
    """Spent so far in USD."""
    unpriced_calls: int = 0
    """Calls without a price (the spend is then a lower bound)."""
    share: float
    """Spent share of the budget (0-1)."""
    alert_share: float
    """The share that triggers the alert (settings ``budgets.alert_share``)."""


ProgressEvent = Annotated[Union[StepFinished, BudgetAlert], Field(discriminator="kind")]
"""What ``on_progress`` receives while a run advances."""

_PROGRESS: TypeAdapter[ProgressEvent] = TypeAdapter(ProgressEvent)


def parse_progress(chunk: Mapping[str, Any]) -> ProgressEvent:
    """The typed event of a progress dict (from the run's progress sink). Raises ``pydantic.ValidationError``."""
    event = _PROGRESS.validate_python({"kind": "step", **chunk})
    event._value = dict(chunk)
    return event


RunStatus = Literal["paused", "completed", "resumed", "queued", "started"]
"""Where a run stands after a call that returned (a failure raises instead; the run stays
resumable, and its audit status is ``failed``). ``resumed``: ``decide(wait=False)`` recorded the
decision and left the run for ``resume`` to continue. ``queued``: submitted to workers, or a
decision that woke a submitted run; a ``chainproof worker`` advances it (``chainproof.workers``).
``started``: ``fork(wait=False)`` recorded the fork and left it for ``advance`` to run."""


@dataclass
class RunResult:
    """Where a run stands after ``Chainproof.start/decide/resume``."""

    run_id: str
    """The run."""
    status: RunStatus
    """``paused`` (see ``pauses``), ``completed`` (see ``report_path``) or ``queued`` (a worker
    advances it)."""
    pauses: list[Pause] = field(default_factory=list)
    """What the run waits for: one cost-budget or step-budget pause, or the open approval
    requests (one per request). Empty when completed."""
    report_path: str | None = None
    """The report's path, once completed."""
    state: dict[str, Any] = field(default_factory=dict)
    """The graph state at the pause or end."""

    @property
    def pause(self) -> Pause | None:
        """The first pause (the only one unless several approval requests are open), or None."""
        return self.pauses[0] if self.pauses else None

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The open approval requests as JSON dicts (the interrupt values)."""
        return [p.value for p in self.pauses if isinstance(p, ApprovalPause)]

    @property
    def budget_stop(self) -> dict[str, Any] | None:
        """The step-budget pause as its JSON dict, or None."""
        return next((p.value for p in self.pauses if isinstance(p, StepBudgetPause)), None)

    @property
    def cost_stop(self) -> dict[str, Any] | None:
        """The cost-budget pause as its JSON dict, or None."""
        return next((p.value for p in self.pauses if isinstance(p, CostBudgetPause)), None)
