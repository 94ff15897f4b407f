"""The one composition root: builds the engine's per-run :class:`ChainContext`.

* :func:`context_from_settings` for live runs (``chainproof.app.Chainproof``): the configured
  models, the audit store as ledger, the routing, pricing, effort profiles, reasoning cache and
  cost guards from :class:`~chainproof.settings.Settings`;
* :func:`context_from_record` for a replay (``chainproof.graphs.replay.replay_run``): the same
  context with record-backed ports (``graphs/_engine/replay_ports.py``) and the pricing and
  routing recorded when the run started, so a port added to the engine is wired in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainproof.agents.models import ModelProvider
from chainproof.agents.pricing import Price
from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_read import Record
from chainproof.checkpoints.reasoning_cache import ReasoningCache
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.replay_ports import (
    RecordedBudgets,
    RecordedCache,
    RecordedCalls,
    RecordedTool,
    ReplayModels,
)
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.budgets import CostGuard
from chainproof.graphs.model_access import StoredCache
from chainproof.graphs.routing import RoutingPolicy, RoutingSettings
from chainproof.graphs.spec import ChainSpec
from chainproof.settings import Settings


def approval_policy(settings: Settings, graph: str, spec: ChainSpec, audit: AuditStore | None = None) -> ApprovalPolicy:
    """The policy a new run of ``graph`` binds to (:func:`policy_binding`)."""
    return policy_binding(settings, graph, spec, audit)[0]


def policy_binding(settings: Settings, graph: str, spec: ChainSpec,
                   audit: AuditStore | None = None) -> tuple[ApprovalPolicy, dict[str, Any]]:
    """``(policy, {"source", "version", "policy_hash"})`` a new run of ``graph`` binds to: the
    store's version once the store holds policies (the settings' are then ignored), else
    ``settings.approval_policies[graph]``, else the spec's own
    (:func:`chainproof.checkpoints._policy_store.policy_in_force`)."""
    from chainproof.checkpoints._policy_store import policy_in_force

    return policy_in_force(audit.engine if audit is not None else None, settings.approval_policies, graph,
                           spec.approval_policy())


def reasoning_cache(settings: Settings, audit: AuditStore) -> ReasoningCache:
    """The reasoning cache in the audit store's database (TTL ``settings.cache.ttl_s``)."""
    return ReasoningCache(audit.engine, settings.cache.ttl_s, redactor=audit.redactor)


def cost_guard(settings: Settings, audit: AuditStore) -> CostGuard:
    """The live cost guards: ``settings.budgets`` priced with ``settings.pricing``."""
    return CostGuard(audit, settings.budgets, settings.pricing)


def recorded_policy(recorded: dict[str, Any], settings: Settings, graph: str, spec: ChainSpec) -> ApprovalPolicy:
    """The approval policy a run started with (its ``run_started`` event's ``approval_policy``), so
    who may approve is not decided by the settings of whoever answers; runs recorded before the
    policy was kept use :func:`approval_policy`."""
    kept = recorded.get("approval_policy")
    return ApprovalPolicy.model_validate(kept) if kept is not None else settings.approval_policies.get(graph) or spec.approval_policy()


def trusted_policy(audit: AuditStore, run_id: str, graph: str, fallback: ApprovalPolicy) -> ApprovalPolicy:
    """The policy a decision on ``run_id`` is checked against, not taken on trust from its
    ``run_started`` row (:func:`chainproof.checkpoints._bound_policy.bound_policy`: that record's
    hash, and the countersigned stored version it names); ``fallback`` (with the store's defaults)
    for a run recorded before runs kept their policy. ``RecordTampered`` when a check fails."""
    from chainproof.checkpoints._bound_policy import bound_policy
    from chainproof.checkpoints._policy_store import store_defaults
    from chainproof.errors import RecordTampered

    policy, problem = bound_policy(audit.engine, graph, audit.last_event(run_id, "run_started"))
    if problem is not None:
        raise RecordTampered(f"run {run_id}: {problem}; nothing was decided or applied (chainproof verify {run_id})")
    return policy if policy is not None else store_defaults(audit.engine, fallback)


def approver_roles(settings: Settings, audit: AuditStore) -> dict[str, list[str]]:
    """The policy roles per approver name a new run records: once the store holds policies, the
    roles registered with the approvers' keys (``chainproof approvers add --role``), so a caller's
    ``approver_roles`` setting cannot make anyone a committee member; before that, the setting's."""
    from chainproof.checkpoints._approver_keys import ApproverKeys
    from chainproof.checkpoints._policy_store import PolicyStore

    if not PolicyStore(audit.engine).holds_any():
        return dict(settings.approver_roles)
    roles: dict[str, list[str]] = {}
    for key in ApproverKeys(audit.engine).keys(trusted_only=True):
        if key.active:
            roles.setdefault(key.approver, [])
            roles[key.approver] = sorted({*roles[key.approver], *key.roles})
    return roles


def recorded_roles(audit: AuditStore, run_id: str, settings: Settings) -> dict[str, list[str]]:
    """The approver roles a run started with (``run_started`` ``approver_roles``), else the settings'."""
    started = audit.last_event(run_id, "run_started")
    kept = (started.detail or {}).get("approver_roles") if started is not None else None
    return dict(kept) if kept is not None else dict(settings.approver_roles)


def context_from_settings(settings: Settings, *, graph: str, spec: ChainSpec, audit: AuditStore,
                          models: ModelProvider, effort: str | None = None,
                          cost_of_run: Callable[[str], float | None] | None = None,
                          recorded: dict[str, Any] | None = None) -> ChainContext:
    """The context of a live run of ``graph`` (``spec``: the instance the run plans with;
    ``recorded``: the run's ``run_started`` detail, whose approval policy, when kept, wins over the
    settings')."""
    return ChainContext(
        spec, models, audit, settings.resolved_reports_dir, effort,  # type: ignore[arg-type]
        policy=recorded_policy(recorded or {}, settings, graph, spec), run_cost=cost_of_run, routing=RoutingPolicy(settings.routing),
        pricing=dict(settings.pricing), profiles={str(k): v for k, v in settings.model.profiles.items()}, stream=settings.model.stream,
        cache=StoredCache(reasoning_cache(settings, audit)) if settings.cache.enabled else None,
        budgets=cost_guard(settings, audit))


@dataclass
class RecordWiring:
    """What a replay runs with: the ``context``, the ``source`` serving the record (it counts what
    it served) and the ``run_started`` event's detail (effort override, budget, settings)."""

    context: ChainContext
    source: RecordedCalls
    started: dict[str, Any]


def context_from_record(spec: ChainSpec, recorded: list[Record], scratch: AuditStore) -> RecordWiring:
    """The context of a replay of ``recorded`` (a run's records, in chain order): recorded model
    answers, tool results and cache hits; the recorded budget shares; the pricing table and routing
    settings of its ``run_started`` event; ``scratch`` as the ledger; reports rendered, not written."""
    source = RecordedCalls([r for r in recorded if r.__tablename__ == "model_calls"],
                           [r for r in recorded if r.__tablename__ == "tool_calls"], scratch.redactor)
    first = next((r for r in recorded if r.__tablename__ == "events" and r.kind == "run_started"), None)
    started = (first.detail or {}) if first else {}
    pricing = started.get("pricing")
    steps = [r for r in recorded if r.__tablename__ == "steps"]
    context = ChainContext(
        spec, ReplayModels(source), scratch, _report_dir(steps), started.get("effort_override"),
        tools={t.name: RecordedTool(t.name, source) for t in spec.tools()}, write_reports=False,
        routing=RoutingPolicy(RoutingSettings.model_validate(_recorded_routing(started.get("routing")))),
        pricing={m: Price.model_validate(p) for m, p in pricing.items()} if pricing is not None else None,
        cache=RecordedCache(source), budgets=RecordedBudgets.from_record(recorded),
        policy=ApprovalPolicy.model_validate(started["approval_policy"]) if "approval_policy" in started else None,
    )
    return RecordWiring(context, source, started)


def _report_dir(steps: list[Record]) -> Path:
    for s in steps:
        if s.node == "report" and isinstance(s.output, dict) and s.output.get("path"):
            return Path(s.output["path"]).parent
    return Path(".")


def _recorded_routing(recorded: dict[str, Any] | None) -> dict[str, Any]:
    """The routing settings a run was recorded with; a run recorded before the reading floor
    existed had none (so it replays as it ran)."""
    if not recorded:
        return {"reading_floor": None}
    return recorded if "reading_floor" in recorded else {**recorded, "reading_floor": None}
