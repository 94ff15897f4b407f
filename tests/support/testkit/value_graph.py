"""A graph whose inputs, tool results, decision and edits carry every kind of the value contract.

Plan: tool ``make`` builds ``{"items": [0, 1, {"when": VALUE}], "kinds": {...}}`` where ``VALUE``
is chosen by the ``kind`` input (a supported kind, or a refused one: ``fraction``, ``range``,
``opaque``, ``object``); tool ``echo`` gets that data back as its argument and reports the types it
received; then the decision (:class:`Stamp`) is built by ``fallback_decision`` from the decoded
tool data, because a scripted model cannot produce a ``ZoneInfo`` datetime. The report prints the
types and values the hooks read. ``INVOCATIONS`` counts tool runs in this process; with
``VALUE_GRAPH_LOG`` set, every run also appends the tool name to that file (for child processes).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict

from chainproof.graphs.spec import ChainSpec, PlanStep
from chainproof.values import encode_value, register_value_type

NY = ZoneInfo("America/New_York")
BEFORE_DST = datetime(2018, 3, 10, 12, 0, tzinfo=NY)  # 24 h later is 2018-03-11 12:00 EDT (-04:00)
INVOCATIONS: dict[str, int] = {}


class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


@dataclasses.dataclass
class Box:
    size: int
    label: str = dataclasses.field(init=False, default="unset")


class Inner(BaseModel):
    x: int
    at: datetime


class Point:
    """A developer's own type, registered below."""

    def __init__(self, x: float, y: float):
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


register_value_type(Point, lambda p: [p.x, p.y], lambda v: Point(*v), name="testkit.point")


class Opaque:
    """A custom class nobody registered."""


def _box() -> Box:
    b = Box(3)
    b.label = "set after init"
    return b


SUPPORTED: dict[str, Any] = {
    "datetime_ny": BEFORE_DST,
    "datetime_naive": datetime(2018, 3, 10, 12, 0),
    "datetime_offset": datetime(2018, 3, 10, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    "date": date(2018, 3, 11),
    "decimal": Decimal("1.10"),
    "enum": Level.HIGH,
    "model": Inner(x=1, at=BEFORE_DST),
    "dataclass": None,  # built fresh (mutable)
    "registered": Point(1.5, -2.0),
    "tuple": (1, "a"),
    "json": {"a": [1, 2.5, None, True]},
}
REFUSED: dict[str, Any] = {"fraction": lambda: Fraction(1, 3), "range": lambda: range(3), "opaque": Opaque,
                           "object": object}


def value_of(kind: str) -> Any:
    if kind == "all":
        return {k: value_of(k) for k in SUPPORTED}
    if kind == "dataclass":
        return _box()
    if kind in REFUSED:
        return REFUSED[kind]()
    return SUPPORTED[kind]


def _log(name: str) -> None:
    INVOCATIONS[name] = INVOCATIONS.get(name, 0) + 1
    if os.environ.get("VALUE_GRAPH_LOG"):
        with open(os.environ["VALUE_GRAPH_LOG"], "a") as f:
            f.write(name + "\n")


def _make(kind: str, start: Any = None) -> dict[str, Any]:
    _log("make")
    return {"items": [0, 1, {"when": value_of(kind)}], "start": start, "level": Level.LOW}


def check_kinds(values: dict[str, Any]) -> dict[str, list[Any]]:
    """Per supported kind: ``[type name, exactly the value that went in]``."""
    return {k: [type(v).__qualname__, encode_value(v) == encode_value(value_of(k))] for k, v in values.items()}


def _echo(data: Any) -> dict[str, Any]:
    _log("echo")  # a tool receives decoded values
    return {"received": check_kinds(data["items"][2]["when"]), "start_zone": getattr(data["start"].tzinfo, "key", None),
            "level": type(data["level"]).__qualname__}


class Stamp(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    when: datetime
    level: Level
    box: Box
    anything: Any = None
    amount: Decimal
    day: date
    note: str = ""


def sample_stamp() -> Stamp:
    return Stamp(when=BEFORE_DST, level=Level.HIGH, box=_box(), anything=Inner(x=2, at=BEFORE_DST),
                 amount=Decimal("0.10"), day=date(2018, 3, 11), note="from the tool data")


def describe(stamp: Stamp) -> dict[str, Any]:
    """What a user would check of a decision: types, the zone key and the wall time 24 h later."""
    return {"when_type": type(stamp.when).__qualname__, "tz": getattr(stamp.when.tzinfo, "key", None),
            "plus_24h": (stamp.when + timedelta(hours=24)).isoformat(), "level": repr(stamp.level),
            "box": [type(stamp.box).__qualname__, stamp.box.size, stamp.box.label],
            "anything": type(stamp.anything).__qualname__, "amount": repr(stamp.amount), "day": repr(stamp.day),
            "note": stamp.note,
            "exact": encode_value(stamp) == encode_value(sample_stamp().model_copy(update={"note": stamp.note}))}


class ValueGraph(ChainSpec[Stamp]):
    name = "values-kinds"
    decision_schema = Stamp
    review_every = 0

    def tools(self):
        return [StructuredTool.from_function(_make, name="make", description="make a value"),
                StructuredTool.from_function(_echo, name="echo", description="echo the types")]

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        if inputs.get("kind") not in {"all", *REFUSED}:
            raise ValueError(f"kind: expected 'all' or one of {sorted(REFUSED)}, got {inputs.get('kind')!r}")
        return inputs

    def goal(self, inputs):
        assert isinstance(inputs["start"], datetime) and inputs["start"].tzinfo is NY, inputs
        return f"Make a {inputs['kind']} value."

    def plan(self, inputs):
        assert isinstance(inputs["start"], datetime), inputs  # hooks read decoded inputs
        make = PlanStep(id="make", title="Make", kind="tool", tool="make", args={"kind": "{inputs.kind}",
                        "start": "{inputs.start}"}, instruction="Say what was made.", keep_data=True, effort="low")
        if inputs["kind"] in REFUSED:
            return [make]
        return [make, PlanStep(id="echo", title="Echo", kind="tool", tool="echo", args_from_findings={"data": "make"},
                               instruction="Say what was echoed.", keep_data=True, effort="low")]

    def decision_prompt(self, view):
        return "Give the stamp."

    def fallback_decision(self, view, errors):
        data = view.finding("make").data
        if data is not None and data["items"][2]["when"]["datetime_ny"].tzinfo is not NY:
            raise AssertionError(f"the decision hook did not get the tool's datetime: {data!r}")
        return sample_stamp()

    def render_report(self, view):
        stamp = view.decision_as(Stamp)
        made = view.finding("make").data
        echo = view.finding("echo")
        facts = {"decision": describe(stamp), "echo": echo.data if echo else None,
                 "data": check_kinds(made["items"][2]["when"]) if made else None,
                 "findings": {f.step_id: f.summary for f in view.findings},
                 "edited_by": view.edited_by}
        return "# Values\n" + json.dumps(facts, sort_keys=True) + "\n"


def report_facts(text: str) -> dict[str, Any]:
    """The JSON line of a :class:`ValueGraph` report."""
    return json.loads(text.splitlines()[1])
