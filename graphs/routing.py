"""Effort routing: which effort level (``low`` / ``medium`` / ``high``) each model step runs at, and why.

Sources, in order of precedence (the first that gives an effort decides):

1. **override** — the run's explicit effort (``--effort``, ``Chainproof.start(effort=...)``): final,
   not capped;
2. **static** — the effort set on the plan step (``PlanStep.effort``) or on the graph's review /
   decide node (``ChainSpec.review_effort`` / ``decide_effort``);
3. **rules** — the first rule whose regular expression matches the step's *task* (the instruction
   of the plan step, the review prompt or the decision prompt), case-insensitive; defaults in
   :func:`default_rules` ("what is / list / summarise" → low, "assess risk / prove / design /
   recommend / trade-off" → high);
4. **complexity** — a score in [0, 1] from features of the task (:class:`ComplexityWeights`,
   thresholds in :class:`RoutingSettings`);

then, for sources 2-4, a **budget cap**: when a cost budget of the run or its department is
running out, effort is lowered to the cap of the highest threshold reached
(:class:`BudgetCap`; default 70 % spent → at most medium, 90 % → low);

then, for sources 3-4 and the cap, a **reading floor**: a step that reads evidence (a tool result
or cited findings of at least ``reading_min_chars`` characters shown with its task) runs at least
at ``reading_floor`` (default medium). A routed low effort starved such steps: at ~27 output tokens
a reading of a search result said "nothing relevant" when the figure was there (issue 11). An
effort set on the step or the run (sources 1-2) is the author's and is kept.

Every decision is a :class:`Route` with a reason such as ``rule: assess risk -> high`` or
``complexity 0.42 (words 0.12, cues 0.30) -> medium; budget cap: 91% of the run budget spent -> low``,
recorded on the step row (``effort_reason``). The policy is a pure function of the task, the step's
settings and the spent share, which is recorded on the step row too, so a replay routes identically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from chainproof.agents.config import EFFORTS, Effort

RANK = {e: i for i, e in enumerate(EFFORTS)}


class Rule(BaseModel):
    """A routing rule: when ``pattern`` (a Python regular expression, matched case-insensitively
    anywhere in the task) matches, the step runs at ``effort``; ``name`` labels it in the reason."""

    name: str = Field(min_length=1, max_length=60)
    pattern: str = Field(min_length=1)
    effort: Effort

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern {value!r} is not a valid regular expression ({exc})") from None
        return value


def default_rules() -> list[Rule]:
    """The shipped rules, high first (a task that asks to list *and* assess risk is hard)."""
    return [
        Rule(name="assess risk", pattern=r"\bassess(?:es|ing)?\b[^.]{0,40}\brisks?\b", effort="high"),
        Rule(name="prove", pattern=r"\bprov(?:e|es|ing)\b", effort="high"),
        Rule(name="design", pattern=r"\bdesign\b", effort="high"),
        Rule(name="recommend", pattern=r"\brecommend\b", effort="high"),
        Rule(name="trade-off", pattern=r"\btrade-?offs?\b", effort="high"),
        Rule(name="what is", pattern=r"^\W*what (?:is|are)\b", effort="low"),
        Rule(name="list", pattern=r"^\W*list\b", effort="low"),
        Rule(name="summarise", pattern=r"\bsummari[sz]e\b", effort="low"),
    ]


REASONING_CUES = ("why", "compare", "explain", "evaluate", "assess", "weigh", "justify", "analyse", "analyze",
                  "implication", "risk", "trade", "cause", "whether")


class ComplexityWeights(BaseModel):
    """Features of the complexity score and their weights (each feature is capped; the score is
    their sum, at most 1):

    * ``per_25_words`` per 25 words of the task (cap ``words_cap``): longer tasks ask for more;
    * ``per_cue`` per distinct reasoning cue word in the task (:data:`REASONING_CUES`: why, compare,
      explain, evaluate, assess, weigh, justify, analyse, implication, risk, trade, cause, whether;
      cap ``cues_cap``);
    * ``per_item`` per item asked for beyond the first (items split at ``,``, ``;`` and `` and ``;
      cap ``items_cap``);
    * ``structured`` when the answer must fit a JSON schema (review, decide);
    * ``per_1k_material_tokens`` per 1,000 tokens of material shown with the task, estimated as
      characters / 4 (cap ``material_cap``).

    The defaults are a judgement, not a fit: a one-line factual question lands well under the low
    threshold, a multi-part analytic instruction over a large tool result above the high one."""

    per_25_words: float = Field(default=0.1, ge=0)
    words_cap: float = Field(default=0.3, ge=0)
    per_cue: float = Field(default=0.15, ge=0)
    cues_cap: float = Field(default=0.45, ge=0)
    per_item: float = Field(default=0.05, ge=0)
    items_cap: float = Field(default=0.2, ge=0)
    structured: float = Field(default=0.2, ge=0)
    per_1k_material_tokens: float = Field(default=0.1, ge=0)
    material_cap: float = Field(default=0.2, ge=0)


class BudgetCap(BaseModel):
    """From ``at`` (share of a cost budget spent, 0-1) on, effort is at most ``max_effort``."""

    at: float = Field(gt=0, le=1)
    max_effort: Effort


class RoutingSettings(BaseModel):
    """Configuration of the routing policy (``[routing]`` in ``chainproof.toml``).

    ``low_below`` / ``high_from``: complexity thresholds (score < low_below → low; ≥ high_from →
    high; medium between). ``rules`` are tried in order. ``budget_caps``: lower effort as a budget
    runs out (the cap of the highest ``at`` reached applies). ``reading_floor``: the lowest effort
    of a routed step that reads at least ``reading_min_chars`` characters of material (a tool
    result, cited evidence; 400 characters is about 100 tokens, more than a one-line result);
    None: no floor (runs recorded before the floor existed replay with None)."""

    rules: list[Rule] = Field(default_factory=default_rules)
    complexity: ComplexityWeights = Field(default_factory=ComplexityWeights)
    low_below: float = Field(default=0.35, ge=0, le=1)
    high_from: float = Field(default=0.65, ge=0, le=1)
    budget_caps: list[BudgetCap] = Field(default_factory=lambda: [BudgetCap(at=0.7, max_effort="medium"),
                                                                  BudgetCap(at=0.9, max_effort="low")])
    reading_floor: Effort | None = "medium"
    reading_min_chars: int = Field(default=400, ge=0)

    @model_validator(mode="after")
    def _thresholds(self) -> RoutingSettings:
        if self.low_below > self.high_from:
            raise ValueError(f"routing.low_below ({self.low_below}) must not exceed routing.high_from ({self.high_from})")
        return self


@dataclass(frozen=True)
class Task:
    """What a model step is asked: ``text`` (the instruction, review or decision prompt),
    ``material_chars`` (characters of material shown with it, e.g. a tool result) and whether the
    answer is ``structured`` (must fit a JSON schema)."""

    text: str
    material_chars: int = 0
    structured: bool = False


@dataclass(frozen=True)
class BudgetShare:
    """How much of the tightest cost budget is spent: ``share`` (0-1+) of ``scope`` (e.g. ``run``,
    ``department credit 2026-11``)."""

    share: float
    scope: str


@dataclass(frozen=True)
class Route:
    """A routing decision: ``effort``, the human-readable ``reason`` and the budget share it saw
    (recorded with the step so a replay routes the same way)."""

    effort: Effort
    reason: str
    budget: BudgetShare | None = None

    def recorded(self) -> dict[str, Any]:
        """What the step row's ``inputs`` keep of the decision: ``{"budget_share": {share, scope}}``
        when a cost budget applied, else nothing (effort and reason have their own columns)."""
        return {"budget_share": {"share": self.budget.share, "scope": self.budget.scope}} if self.budget else {}


class RoutingPolicy:
    """The policy of the module docstring over ``settings``. Thread-safe (no mutable state)."""

    def __init__(self, settings: RoutingSettings | None = None):
        self.settings = settings or RoutingSettings()

    @cached_property
    def _rules(self) -> list[tuple[Rule, re.Pattern[str]]]:
        return [(r, re.compile(r.pattern, re.IGNORECASE)) for r in self.settings.rules]

    def complexity(self, task: Task) -> tuple[float, dict[str, float]]:
        """The complexity score of ``task`` in [0, 1] and each feature's contribution."""
        w = self.settings.complexity
        text = task.text.lower()
        words = len(text.split())
        cues = {c for c in REASONING_CUES if re.search(rf"\b{c}", text)}
        items = max(0, len([p for p in re.split(r",|;|\band\b", text) if p.strip()]) - 1)
        parts = {
            "words": min(w.words_cap, w.per_25_words * words / 25),
            "cues": min(w.cues_cap, w.per_cue * len(cues)),
            "items": min(w.items_cap, w.per_item * items),
            "structured": w.structured if task.structured else 0.0,
            "material": min(w.material_cap, w.per_1k_material_tokens * task.material_chars / 4 / 1000),
        }
        return min(1.0, sum(parts.values())), parts

    def route(self, task: Task, *, override: Effort | None = None, static: Effort | None = None,
              static_where: str = "the plan step", budget: BudgetShare | None = None) -> Route:
        """Decide the effort of one model step (precedence in the module docstring)."""
        if override:
            return Route(override, "override: run config", budget)
        if static:
            return self._capped(static, f"static: set on {static_where}", budget)
        effort, reason = self._by_task(task)
        return self._floored(self._capped(effort, reason, budget), task)

    def _floored(self, route: Route, task: Task) -> Route:
        floor, s = self.settings.reading_floor, self.settings
        if floor is None or task.material_chars < s.reading_min_chars or RANK[route.effort] >= RANK[floor]:
            return route
        return Route(floor, f"{route.reason}; reading floor: the step reads {task.material_chars:,} characters of "
                            f"evidence -> {floor}", route.budget)

    def _by_task(self, task: Task) -> tuple[Effort, str]:
        for rule, pattern in self._rules:
            if pattern.search(task.text):
                return rule.effort, f"rule: {rule.name} -> {rule.effort}"
        score, parts = self.complexity(task)
        s = self.settings
        effort: Effort = "low" if score < s.low_below else "high" if score >= s.high_from else "medium"
        shown = ", ".join(f"{k} {v:.2f}" for k, v in parts.items() if round(v, 2))
        return effort, f"complexity {score:.2f}" + (f" ({shown})" if shown else "") + f" -> {effort}"

    def _capped(self, effort: Effort, reason: str, budget: BudgetShare | None) -> Route:
        reached = [c for c in self.settings.budget_caps if budget and budget.share >= c.at]
        cap = max(reached, key=lambda c: c.at).max_effort if reached else None
        if budget is None or cap is None or RANK[cap] >= RANK[effort]:
            return Route(effort, reason, budget)
        return Route(cap, f"{reason}; budget cap: {budget.share:.0%} of the {budget.scope} budget spent -> {cap}", budget)
