"""Cost budgets: per run and per department (or project) per calendar month, in USD.

* **Spend** comes from the audit store: the priced ``model_calls`` rows (``cost_usd``; cache hits
  cost 0) of the run, or of every run of the department with calls in the month (UTC).
* **Alert**: when spend reaches ``alert_share`` (default 80 %) of a budget, a ``budget_alert``
  event is recorded once per run and budget, and shown live (``chainproof run``) and by
  ``chainproof costs``.
* **Pause**: before a node calls a model, its *projected* cost — every attempt it may make at the
  effort profile's full output cap, prompts estimated at characters / 4 tokens (the estimate of
  :func:`chainproof.agents.ratelimit.estimate_tokens`), priced with the pricing table — is added to the
  spend. If that would exceed a budget, the node pauses with LangGraph ``interrupt()``
  (``kind="cost_budget"``) *before* the call: the over-budget call is never made, the checkpoint
  keeps all work done, and ``chainproof resume RUN_ID --budget-usd N`` (a run budget) or a raised
  ``budgets.departments`` entry and ``chainproof resume RUN_ID`` (a department budget) continues
  it. The check runs before anything else in the node (LangGraph re-runs a resumed node from its
  first line).
* **Routing**: the share spent of the tightest budget is given to the routing policy, whose budget
  cap lowers effort as a budget runs out (:mod:`chainproof.graphs.routing`).

A budget cannot be enforced for a model without a price: the check raises
:class:`BudgetUnenforceable` naming the model rather than guess (the run fails before the call and
can be resumed after the price is added). Calls already recorded without a price make the spend a
lower bound; the alert and ``chainproof costs`` say so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from chainproof.agents.config import EffortProfile
from chainproof.agents.pricing import Price, cost_usd
from chainproof.checkpoints.audit import AuditStore, Spend
from chainproof.checkpoints.audit_schema import EventRecord, utcnow
from chainproof.errors import BudgetUnenforceable, CostBudgetExceeded, InputError
from chainproof.graphs.budget_settings import BudgetSettings
from chainproof.graphs.routing import BudgetShare

if TYPE_CHECKING:  # pragma: no cover - typing only
    from langchain_core.messages import BaseMessage

# LangGraph, langchain-core and agents.calls are imported where used: write commands must not pay for
# them before a run starts. BudgetSettings lives in graphs/budget_settings.py (the settings' light
# part loads it without this module) and is re-exported here.

RETRY_NOTE_TOKENS = 60
"""Tokens added per retried structured-output attempt for the error note shown to the model."""


@dataclass(frozen=True)
class Limit:
    """One budget in force: ``scope`` (``run`` or ``department NAME YYYY-MM``), ``usd`` (the
    budget), ``spent`` so far and ``field`` (what to raise: ``budget_usd`` or
    ``budgets.departments.NAME``)."""

    scope: str
    usd: float
    spent: Spend
    field: str

    @property
    def share(self) -> float:
        return self.spent.usd / self.usd


def projected_cost(model: str, messages: list[BaseMessage], profile: EffortProfile, pricing: Mapping[str, Price],
                   attempts: int = 1) -> float | None:
    """Worst-case USD of a node's calls: ``attempts`` calls, each at the full output cap
    (``profile.max_tokens``), the k-th prompt grown by the k-1 earlier answers and error notes.
    None when ``model`` has no price."""
    from chainproof.agents.calls import Usage
    from chainproof.agents.ratelimit import estimate_tokens

    prompt = estimate_tokens(messages, 0)
    total = 0.0
    for k in range(attempts):
        grown = prompt + k * (profile.max_tokens + RETRY_NOTE_TOKENS)
        cost = cost_usd(model, Usage(input_tokens=grown, output_tokens=profile.max_tokens), dict(pricing))
        if cost is None:
            return None
        total += cost
    return total


class CostGuard:
    """Enforces :class:`BudgetSettings` for live runs (see the module docstring).

    ``clock`` gives the current UTC time (the month of department budgets)."""

    def __init__(self, audit: AuditStore, settings: BudgetSettings, pricing: Mapping[str, Price],
                 clock: Callable[[], datetime] = utcnow):
        self.audit, self.settings, self.pricing, self.clock = audit, settings, pricing, clock

    def limits(self, state: Mapping[str, Any]) -> list[Limit]:
        """The budgets in force for the run of ``state`` (its ``budget.max_cost_usd``, its
        department's monthly budget)."""
        run_id = state["run_id"]
        out: list[Limit] = []
        max_cost = (state.get("budget") or {}).get("max_cost_usd")
        if max_cost is None and not self.settings.departments:
            return out  # no budget can apply: no queries
        if max_cost is not None:
            out.append(Limit("run", float(max_cost), self.audit.run_spend(run_id), "budget_usd"))
        run = self.audit.get_run(run_id)
        department = run.department if run else None
        if department and department in self.settings.departments:
            month = self.clock().strftime("%Y-%m")
            out.append(Limit(f"department {department} {month}", self.settings.departments[department],
                             self.audit.department_spend(department, month), f"budgets.departments.{department}"))
        return out

    def share(self, state: Mapping[str, Any]) -> BudgetShare | None:
        """The share spent of the tightest budget, for the routing policy's budget cap."""
        limits = self.limits(state)
        if not limits:
            return None
        tight = max(limits, key=lambda limit: limit.share)
        return BudgetShare(round(tight.share, 4), tight.scope)

    def check(self, state: Mapping[str, Any], *, node: str, step_no: int, model: str, effort: str,
              messages: list[BaseMessage], profile: EffortProfile, attempts: int = 1) -> dict[str, Any]:
        """Pause (``interrupt``; its value is a :class:`chainproof.types.CostBudgetPause` as JSON)
        when the node's projected cost does not fit a budget; returns the state update to merge
        into the node's (the raised run budget after a resume), or ``{}``.

        Raises :class:`BudgetUnenforceable` (unpriced model under a budget) and
        :class:`CostBudgetExceeded` (resumed without enough budget)."""
        limits = self.limits(state)
        if not limits:
            return {}
        projected = projected_cost(model, messages, profile, self.pricing, attempts)
        if projected is None:
            raise BudgetUnenforceable(
                f"pricing: model {model!r} has no price, so the cost budget ({limits[0].scope}) cannot be enforced; "
                f"add [pricing.\"{model}\"] (input, cached_input, output USD per 1M tokens, source, date) to chainproof.toml")
        over = next((limit for limit in limits if limit.spent.usd + projected > limit.usd), None)
        if over is None:
            return {}
        from langgraph.types import interrupt

        answer = interrupt({
            "kind": "cost_budget", "run_id": state["run_id"], "scope": over.scope, "field": over.field,
            "budget_usd": over.usd, "spent_usd": over.spent.usd, "unpriced_calls": over.spent.unpriced,
            "projected_usd": round(projected, 8), "node": node, "step_no": step_no, "effort": effort,
            "question": (f"The {over.scope} budget of {over.usd:.4f} USD would be exceeded: {over.spent.usd:.4f} USD "
                         f"spent, the next {node} step may cost up to {projected:.4f} USD. Resume with a larger budget?"),
        })
        budget = dict(state.get("budget") or {})
        if answer.get("budget_usd") is not None:
            budget["max_cost_usd"] = float(answer["budget_usd"])
        raised = {**state, "budget": budget}
        still = next((limit for limit in self.limits(raised) if limit.spent.usd + projected > limit.usd), None)
        if still is not None:
            raise CostBudgetExceeded(
                f"{still.field}: the {still.scope} budget of {still.usd:.4f} USD is still too small: "
                f"{still.spent.usd:.4f} USD spent and the next {node} step may cost up to {projected:.4f} USD")
        return {"budget": budget} if budget != (state.get("budget") or {}) else {}

    def after_step(self, state: Mapping[str, Any],
                   progress: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        """Record a ``budget_alert`` event the first time a budget's spend reaches ``alert_share``,
        and pass it to ``progress`` (the run's progress sink; a :class:`chainproof.types.BudgetAlert`)."""
        limits = [limit for limit in self.limits(state) if limit.share >= self.settings.alert_share]
        if not limits:
            return
        run_id = state["run_id"]
        alerted = {e.detail.get("scope") for e in self.audit.events_of(run_id, "budget_alert")}
        for limit in limits:
            if limit.scope in alerted:
                continue
            detail = {"scope": limit.scope, "budget_usd": limit.usd, "spent_usd": limit.spent.usd,
                      "unpriced_calls": limit.spent.unpriced, "share": round(limit.share, 4),
                      "alert_share": self.settings.alert_share}
            self.audit.append(run_id, EventRecord(kind="budget_alert", detail=detail))
            if progress is not None:
                progress({"kind": "budget_alert", **detail})


def check_resume(guard: CostGuard, state: Mapping[str, Any], stop: Mapping[str, Any], budget_usd: float | None) -> None:
    """Before resuming a run paused at a cost budget: raise ``CostBudgetExceeded`` naming the field to
    raise unless every budget now fits the paused node's projected cost (``stop`` is the
    interrupt's value; ``budget_usd`` the new run budget, if any)."""
    budget = dict(state.get("budget") or {})
    if budget_usd is not None:
        if not math.isfinite(budget_usd) or budget_usd <= 0:
            raise InputError(f"budget_usd: expected a positive amount of USD, got {budget_usd}")
        budget["max_cost_usd"] = budget_usd
    for limit in guard.limits({**state, "budget": budget}):
        need = limit.spent.usd + float(stop["projected_usd"])
        if need > limit.usd:
            hint = (f"resume with a budget above {need:.4f}, e.g. --budget-usd {need * 1.5:.4f}"
                    if limit.field == "budget_usd" else
                    f"raise {limit.field} in chainproof.toml to at least {need:.4f}, then resume")
            raise CostBudgetExceeded(f"{limit.field}: run {state['run_id']} paused at its {limit.scope} budget of "
                             f"{limit.usd:.4f} USD ({limit.spent.usd:.4f} spent, the next step may cost up to "
                             f"{float(stop['projected_usd']):.4f}); {hint}")
