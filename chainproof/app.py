"""Start, pause, resume: the entry points the CLI (and any Python caller) uses to run chains.

A run is one LangGraph thread (``thread_id`` = ``run_id``) checkpointed after every super-step
(``durability="sync"``: the checkpoint is written before the next step starts, so a pause or a
crash loses nothing). Lifecycle events (started, paused, resumed, completed, failed) go to the
audit store. Resuming works from any process that opens the same checkpointer and audit store.

Approval decisions are checked here, before anything reaches LangGraph, because LangGraph itself
silently ignores a resume value whose interrupt id matches no pending interrupt and re-runs the
pending tasks (langgraph#8836), and lets the same paused checkpoint be resumed twice with
different answers (langgraph#6663). A decision is bound to:

* the run (thread) and the request id (it must be pending at the thread's current checkpoint);
* the checkpoint the run paused at: when the run pauses, the ``run_paused`` event records the
  checkpoint id and each request's interrupt id and proposal hash. A decision is refused when the
  thread's current checkpoint or the request's interrupt id differs (the thread was forked or its
  state updated with ``update_state`` since the pause — its proposal may no longer be what the
  approver saw), or when the proposal no longer matches its hash;
* the approval policy's allowed approvers;
* at most one decision per request: the decision row is written by
  :meth:`checkpoints.audit.AuditStore.append_decision`, which checks for an earlier decision inside
  the append transaction (so of two racing processes exactly one wins), *before* the run is resumed
  with ``Command(resume={interrupt_id: answer})`` — a resume map naming exactly that interrupt.

A zero-data-retention run's checkpoints (which hold model text for resuming) are deleted when it
completes.
"""

from __future__ import annotations

import fcntl
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langgraph.types import Command

from chainproof._boundaries import (  # value contract
    REFUSAL_KIND,
    refusal_error,
    restore_model,  # value contract
)
from chainproof.agents.config import EFFORTS
from chainproof.agents.models import ConfiguredModels, ModelProvider
from chainproof.checkpoints.audit import AlreadyDecided, AuditStore
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import ApprovalRecord, EventRecord, Run
from chainproof.checkpoints.reasoning_cache import ReasoningCache
from chainproof.checkpoints.saver import forget_thread, open_checkpointer
from chainproof.errors import RunBusy, RunNotFound, RunNotResumable, StorageError
from chainproof.graphs.approval import ApprovalAnswer, ApprovalRefused, ApprovalRequest, apply_changes, check_answer
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.budgets import CostGuard, check_resume
from chainproof.graphs.model_access import StoredCache
from chainproof.graphs.orchestrator import ChainState, Runtime, build_graph
from chainproof.graphs.registry import get_spec
from chainproof.graphs.review import Budget
from chainproof.graphs.routing import RoutingPolicy
from chainproof.settings import Settings
from chainproof.values import decode_value, encode_value, hook_state

Progress = Callable[[dict[str, Any]], None]
CostOfRun = Callable[[str], "float | None"]


@contextmanager
def run_lock(home: Path, run_id: str) -> Iterator[None]:
    """An exclusive, non-blocking lock on ``run_id`` for this machine (``fcntl.flock`` on
    ``$CHAINPROOF_HOME/locks/RUN_ID.lock``), held while a process advances the run, so a second
    ``resume`` or a late approver cannot run the same steps twice. The operating system releases it
    when the process dies. Processes on other hosts sharing a PostgreSQL store are not covered.
    Raises ``RunBusy``."""
    folder = Path(home) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{run_id}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunBusy(f"run {run_id} is being advanced by another process right now; wait until it pauses or "
                          f"ends (chainproof runs), then `chainproof resume {run_id}` if anything is left to apply") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _storage_errors() -> tuple[type[BaseException], ...]:
    import psycopg
    from sqlalchemy.exc import SQLAlchemyError

    return (OSError, sqlite3.Error, SQLAlchemyError, psycopg.Error)


def _cause(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    return f"{type(orig or exc).__name__}: {str(orig or exc).splitlines()[0]}"


@dataclass(frozen=True)
class Pending:
    """One open approval request of a paused thread: LangGraph's interrupt id and the request."""

    interrupt_id: str
    request: dict[str, Any]


@dataclass
class RunResult:
    """Where a run stands after a call: ``status`` is ``paused`` (``requests`` lists the open
    approval requests; ``budget_stop`` is set instead when the run stopped at its step budget,
    ``cost_stop`` when it paused before a call that would exceed a cost budget) or ``completed``
    (``report_path`` is set)."""

    run_id: str
    status: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    report_path: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    budget_stop: dict[str, Any] | None = None
    cost_stop: dict[str, Any] | None = None


class Chainproof:
    """Runs graphs against the configured audit store, checkpointer and models.

    Args:
        settings: configuration (``Settings()`` reads the environment and ``chainproof.toml``).
        models: the model provider; default builds models from ``settings.model``.
        cost_of_run: run id -> cost so far in USD, for ``cost_above`` approval conditions; default:
            the audit store's sum of model-call costs (None while prices are not configured).
    """

    def __init__(self, settings: Settings | None = None, models: ModelProvider | None = None,
                 cost_of_run: CostOfRun | None = None):
        self.settings = settings or Settings()
        url = self.settings.resolved_database_url
        try:
            self.audit = AuditStore(url, redactor=self.settings.redactor)
        except _storage_errors() as exc:
            raise StorageError(f"database_url {url!r} (CHAINPROOF_DATABASE_URL): cannot open the audit store: "
                               f"{_cause(exc)}") from exc
        self.models = models or ConfiguredModels(self.settings.model, self.settings.local, self.settings.models_dir)
        self.cost_of_run = cost_of_run

    def close(self) -> None:
        self.audit.close()

    def __enter__(self) -> Chainproof:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    def start(
        self,
        graph: str,
        inputs: dict[str, Any],
        *,
        started_by: str | None = None,
        department: str | None = None,
        effort: str | None = None,
        run_id: str | None = None,
        max_steps: int | None = None,
        review_every: int | None = None,
        on_budget: str | None = None,
        zdr: bool | None = None,
        budget_usd: float | None = None,
        cache: bool | None = None,
        on_progress: Progress | None = None,
    ) -> RunResult:
        """Validate ``inputs`` and the budget overrides (``ValueError`` naming the field) and check
        the model is usable (``LocalModelUnavailable`` / ``ValueError``) before anything is
        recorded; then record the run and run it until it pauses (approval, step or cost budget)
        or completes. ``max_steps`` counts plan steps; ``review_every`` is N of the goal review;
        ``zdr``: zero data retention for this run (None: ``settings.zdr``); ``budget_usd``: the
        run's cost budget in USD (None: ``settings.budgets.run_usd``); ``cache``: use the
        reasoning cache (None: ``settings.cache.enabled``; always off for a ZDR run)."""
        spec = get_spec(graph)
        zdr = self.settings.zdr if zdr is None else zdr
        cost = budget_usd if budget_usd is not None else self.settings.budgets.run_usd
        cache = (self.settings.cache.enabled if cache is None else cache) and not zdr
        overrides = {"max_steps": max_steps, "review_every": review_every, "on_budget": on_budget,
                     "max_cost_usd": cost}
        budget = Budget.model_validate({"max_steps": spec.max_steps, "review_every": spec.review_every,
                                        **{k: v for k, v in overrides.items() if v is not None}})
        inputs = encode_value(spec.validate_inputs(dict(inputs)), where="inputs", root="inputs")  # value contract
        if started_by is not None and not started_by.strip():
            raise ValueError("started_by (--as): a name is required when given; leave it out to start anonymously")
        if effort is not None and effort not in EFFORTS:
            raise ValueError(f"effort: expected one of {', '.join(EFFORTS)}, got {effort!r}")
        preflight = getattr(self.models, "preflight", None)
        if preflight is not None:
            preflight()
        self._check_checkpointer()
        run_id = run_id or uuid.uuid4().hex[:12]
        goal = spec.goal(decode_value(inputs, where="inputs"))  # value contract: hooks read decoded inputs
        self.audit.start_run(
            run_id, graph=graph, goal=goal, inputs=inputs, company=inputs.get("company"),
            department=department, started_by=started_by, zdr=zdr,
            effort_override=effort, budget=budget.model_dump(), settings={
                "pricing": {m: p.model_dump() for m, p in self.settings.pricing.items()},
                "routing": self.settings.routing.model_dump(mode="json"), "cache": cache},
        )
        initial: ChainState = self.audit.redactor({"run_id": run_id, "graph": graph, "goal": goal, "inputs": inputs,
                                                   "step": 0, "budget": budget.model_dump(), "cache": cache})
        return self._drive(run_id, graph, initial, effort=effort, on_progress=on_progress)

    def policy(self, graph: str) -> ApprovalPolicy:
        """The approval policy of ``graph``: ``settings.approval_policies[graph]`` if set, else the
        graph spec's own."""
        return self.settings.approval_policies.get(graph) or get_spec(graph).approval_policy()

    def pending_requests(self, run_id: str) -> list[dict[str, Any]]:
        """The open approval requests of ``run_id`` (empty when it is not paused)."""
        run = self._run(run_id)
        with self._thread(run_id, run.graph) as (app, config):
            return [p.request for p in self._pending(app.get_state(config))]

    def pending_all(self, limit: int = 200) -> list[tuple[Run, list[dict[str, Any]]]]:
        """Open approval requests across the ``limit`` newest runs that are paused (or were resumed
        and may still hold requests, e.g. when the deciding process stopped): ``(run, requests)``."""
        rows = [(run, self.pending_requests(run.run_id))
                for run, status, _ in self.audit.list_runs(limit=limit) if status in ("paused", "resumed")]
        return [(run, requests) for run, requests in rows if requests]

    def decide(
        self,
        run_id: str,
        *,
        action: str,
        approver: str,
        comment: str | None = None,
        edited: dict[str, Any] | None = None,
        changes: list[str] | None = None,
        request_id: str | None = None,
        on_progress: Progress | None = None,
    ) -> RunResult:
        """Answer a pending approval request and resume the run.

        ``action``: approve | reject (needs ``comment``) | edit (``edited``: the replacement
        proposal, or ``changes``: ``FIELD=VALUE`` assignments applied to the pending proposal;
        validated by the spec's ``approval_schema``). ``request_id`` may be omitted when exactly
        one request is pending.

        Raises ``ApprovalRefused`` (listing the pending requests) and executes and records nothing
        when: the run is not paused; the id matches no pending request (stale, unknown, or of
        another run); the request was already decided; the thread moved away from the checkpoint
        the request was raised at (a fork or a state update); the approver is not allowed by the
        policy; or the answer is incomplete or does not fit the schema. ``ValueError`` for a
        blank approver name; ``RunNotFound`` for an unknown run.
        """
        run = self._run(run_id)
        spec = get_spec(run.graph)
        with self._thread(run_id, run.graph) as (app, config):
            snapshot = app.get_state(config)
            pending = self._pending(snapshot)
            target = self._target(run_id, pending, request_id)
            request = ApprovalRequest.model_validate(target.request)
            checkpoint_id = snapshot.config["configurable"]["checkpoint_id"]
            self._check_binding(run_id, target, request, checkpoint_id, pending)
            if changes:
                edited = apply_changes(edited or request.proposed, changes)
            answer = ApprovalAnswer(
                request_id=request.request_id, action=action, approver=approver, comment=comment, edited=edited,
                decided_at=datetime.now(UTC),
            )
            policy = self.policy(run.graph)
            if not policy.allows(answer.approver, self.settings.approver_roles):
                raise ApprovalRefused(
                    f"approver: {answer.approver!r} may not decide for graph {run.graph}; allowed: "
                    f"{', '.join(policy.approvers)}; pending: {self._listing(pending)}")
            answer = check_answer(answer, request, spec.approval_schema(request.subject))
            if answer.action == "edit" and request.subject == "decision":
                try:  # a person's edit passes the same checks as the model's answer (e.g. evidence keys)
                    spec.check_decision(restore_model(spec.decision_schema, answer.edited), hook_state(snapshot.values))
                except ValueError as exc:
                    raise ApprovalRefused(f"edited: {exc}; nothing was decided; pending: {self._listing(pending)}") from None
            content = answer.edited if answer.action == "edit" else request.proposed
            decision = ApprovalRecord(
                step_no=request.step_no, request_id=request.request_id, action=answer.action,
                approver=answer.approver, comment=answer.comment, proposed_hash=request.proposed_hash,
                payload={**answer.model_dump(mode="json"), "subject": request.subject,
                         "interrupt_id": target.interrupt_id, "checkpoint_id": checkpoint_id,
                         "decided_hash": sha256_hex(content)},
            )
            try:
                self.audit.append_decision(run_id, decision, EventRecord(
                    kind="run_resumed", detail={"request_id": request.request_id, "by": answer.approver}))
            except AlreadyDecided as exc:
                raise ApprovalRefused(f"{exc}; pending: {self._listing(pending)}") from None
            resume = {target.interrupt_id: self.audit.redactor(answer.model_dump(mode="json"))}
            return self._stream(app, config, run_id, Command(resume=resume), on_progress)

    def replay(self, run_id: str):
        """Replay ``run_id`` from its record (:func:`graphs.replay.replay_run`): no model is
        called, no tool runs, nothing is written to the original run. Raises ``RunNotFound``."""
        from chainproof.graphs.replay import replay_run

        self._run(run_id)
        return replay_run(self.audit, run_id)

    def resume(self, run_id: str, *, max_steps: int | None = None, budget_usd: float | None = None,
               by: str | None = None, on_progress: Progress | None = None) -> RunResult:
        """Continue a run that is not waiting for a person:

        * stopped at its step budget: ``max_steps`` is the new budget in plan steps and must exceed
          the steps done (``ValueError`` otherwise);
        * paused at a cost budget: ``budget_usd`` is the run's new budget in USD; for a department's
          monthly budget raise ``budgets.departments`` in the settings first. ``ValueError`` naming
          the field when a budget still does not fit the paused step's projected cost (nothing is
          run);
        * a decision was recorded but never reached the run (the deciding process stopped between
          recording and resuming): it is applied now;
        * failed (e.g. a model call that exhausted its retries): from its last checkpoint; finished
          steps do not run again.

        Raises ``RunNotResumable`` (a ``ValueError``) when the run waits for an approval nobody gave
        yet or has completed."""
        run = self._run(run_id)
        with self._thread(run_id, run.graph, max_steps=max_steps) as (app, config):
            snapshot = app.get_state(config)
            stops = [i for i in snapshot.interrupts if i.value.get("kind") == "budget"]
            cost_stops = [i for i in snapshot.interrupts if i.value.get("kind") == "cost_budget"]
            refusals = [i for i in snapshot.interrupts if i.value.get("kind") == REFUSAL_KIND]  # value contract
            pending = self._pending(snapshot)
            if budget_usd is not None and not cost_stops:
                raise ValueError(f"budget_usd: run {run_id} is not paused at a cost budget "
                                 f"(status: {self.audit.run_status(run_id)})")
            if cost_stops:
                check_resume(self._guard(), snapshot.values, cost_stops[0].value, budget_usd)
                payload = Command(resume={cost_stops[0].id: {"budget_usd": budget_usd, "by": by}})
                detail = {"budget_usd": budget_usd, "by": by, "scope": cost_stops[0].value["scope"]}
            elif refusals:  # value contract: continue with the refused tool result as the step's finding
                payload = Command(resume={refusals[0].id: {"by": by}})
                detail = {"refused": refusals[0].value["error"], "step_no": refusals[0].value["step_no"], "by": by}
            elif stops:
                stop = stops[0].value
                if max_steps is None or max_steps <= stop["done_count"]:
                    raise ValueError(
                        f"max_steps: run {run_id} stopped at its budget after {stop['done_count']} plan steps; "
                        f"resume with a larger budget, e.g. --max-steps {stop['done_count'] + stop['remaining']}")
                payload: Any = Command(resume={stops[0].id: {"max_steps": max_steps, "by": by}})
                detail: dict[str, Any] = {"max_steps": max_steps, "by": by}
            elif pending:
                checkpoint_id = snapshot.config["configurable"]["checkpoint_id"]
                resume = {}
                for p in pending:
                    record = self.audit.decision_for(p.request["request_id"])
                    if record is not None and record.payload.get("checkpoint_id") == checkpoint_id:
                        resume[p.interrupt_id] = ApprovalAnswer.model_validate(record.payload).model_dump(mode="json")
                if not resume:
                    raise RunNotResumable(f"run {run_id} is paused for approval and has no recorded decision to apply; "
                                          f"answer it with: chainproof approve {run_id} --as NAME (or reject / edit); "
                                          f"pending: {self._listing(pending)}")
                payload, detail = Command(resume=resume), {"reapplied": len(resume)}
            elif self.audit.run_status(run_id) == "completed":
                raise RunNotResumable(f"run {run_id} is completed; there is nothing to resume")
            elif not snapshot.next and not snapshot.values:
                raise RunNotResumable(f"run {run_id} has no checkpoint in {self.settings.resolved_checkpoint_url} "
                                      "(it failed before its first super-step, or CHAINPROOF_CHECKPOINT_URL points elsewhere)")
            else:
                payload, detail = None, {"after": self.audit.run_status(run_id)}  # continue from the last checkpoint
            self.audit.append(run_id, EventRecord(kind="run_resumed", detail=detail))
            return self._stream(app, config, run_id, payload, on_progress)

    # ------------------------------------------------------------ approvals
    @staticmethod
    def _pending(snapshot: Any) -> list[Pending]:
        """The thread's open approval requests (budget stops are interrupts too, but not requests)."""
        return [Pending(i.id, i.value) for i in snapshot.interrupts if i.value.get("kind", "approval") == "approval"]

    @staticmethod
    def _listing(pending: list[Pending]) -> str:
        return ", ".join(f"{p.request['request_id']} ({p.request['question']})" for p in pending) or "none"

    def _target(self, run_id: str, pending: list[Pending], request_id: str | None) -> Pending:
        """The pending request a decision names, or ``ApprovalRefused`` saying why not."""
        listing = self._listing(pending)
        if request_id is not None:
            request_id = self._resolve_request_id(pending, request_id)
        if request_id is None:
            if not pending:
                raise ApprovalRefused(
                    f"run {run_id} has no pending approval request (status: {self.audit.run_status(run_id)})")
            if len(pending) > 1:
                raise ApprovalRefused(
                    f"run {run_id} has {len(pending)} pending requests; name one with --request: {listing}")
            request_id = pending[0].request["request_id"]
        decided = self.audit.decision_for(request_id)
        match = [p for p in pending if p.request["request_id"] == request_id]
        if decided is not None:
            hint = (f"; it is not yet applied to the run: `chainproof resume {run_id}`" if match else "")
            raise ApprovalRefused(
                f"request {request_id} was already decided: {decided.action} by {decided.approver} at "
                f"{decided.created_at:%Y-%m-%d %H:%M:%S} UTC{hint}; pending: {listing}")
        if match:
            return match[0]
        origin = self.audit.request_record(request_id)
        if origin is not None and origin.run_id != run_id:
            raise ApprovalRefused(f"request {request_id} belongs to run {origin.run_id}, not {run_id}; pending: {listing}")
        raise ApprovalRefused(f"request {request_id} is not pending in run {run_id}; pending: {listing}")

    def _check_binding(self, run_id: str, target: Pending, request: ApprovalRequest, checkpoint_id: str,
                       pending: list[Pending]) -> None:
        """Refuse unless the run paused on this request at ``checkpoint_id`` (the thread's current
        checkpoint) with this interrupt id and proposal hash, and the proposal still matches it."""
        paused = self.audit.last_event(run_id, "run_paused")
        bound = next((r for r in (paused.detail.get("requests", []) if paused else [])
                      if r.get("request_id") == request.request_id), None)
        where = f"request {request.request_id} of run {run_id}"
        if bound is None or paused.detail.get("checkpoint_id") != checkpoint_id or bound.get("interrupt_id") != target.interrupt_id:
            at = paused.detail.get("checkpoint_id") if bound else "no recorded pause"
            raise ApprovalRefused(
                f"{where} was raised at checkpoint {at}, but the run is now at checkpoint {checkpoint_id} "
                "(the thread was forked or its state updated since the pause); nothing was decided; "
                f"pending: {self._listing(pending)}")
        if sha256_hex(request.proposed) != request.proposed_hash or bound.get("proposed_hash") != request.proposed_hash:
            raise ApprovalRefused(f"{where}: the proposal no longer matches the hash it was requested with; "
                                  f"nothing was decided; pending: {self._listing(pending)}")

    def _check_checkpointer(self) -> None:
        """Open the checkpointer once before a run is recorded, so a bad ``checkpoint_url`` fails
        cleanly instead of leaving a run that started and can never checkpoint."""
        url = self.settings.resolved_checkpoint_url
        try:
            with open_checkpointer(url):
                pass
        except _storage_errors() as exc:
            raise StorageError(f"checkpoint_url {url!r} (CHAINPROOF_CHECKPOINT_URL): cannot open the checkpointer: "
                               f"{_cause(exc)}") from exc

    def _resolve_request_id(self, pending: list[Pending], request_id: str) -> str:
        """A unique prefix (>= 6 characters, as ``show`` and the pause panel print) names the full id."""
        if len(request_id) >= 6:
            full = [p.request["request_id"] for p in pending if p.request["request_id"].startswith(request_id)]
            if len(full) == 1:
                return full[0]
        return request_id

    def _run(self, run_id: str):
        run = self.audit.get_run(run_id)
        if run is None:
            recent = ", ".join(r.run_id for r, _, _ in self.audit.list_runs(limit=5)) or "none"
            raise RunNotFound(f"no run {run_id!r} in {self.settings.resolved_database_url}; recent runs: {recent}")
        return run

    @property
    def reasoning_cache(self) -> ReasoningCache:
        """The reasoning cache in the audit store's database (``chainproof cache clear``)."""
        return ReasoningCache(self.audit.engine, self.settings.cache.ttl_s, redactor=self.audit.redactor)

    def _guard(self) -> CostGuard:
        return CostGuard(self.audit, self.settings.budgets, self.settings.pricing)

    def _runtime(self, graph: str, effort: str | None = None) -> Runtime:
        s = self.settings
        return Runtime(get_spec(graph), self.models, self.audit, s.resolved_reports_dir, effort,
                       policy=self.policy(graph), run_cost=self.cost_of_run, routing=RoutingPolicy(s.routing),
                       pricing=dict(s.pricing), profiles=s.model.profiles, stream=s.model.stream,
                       cache=StoredCache(self.reasoning_cache) if s.cache.enabled else None, budgets=self._guard())

    @contextmanager
    def _thread(self, run_id: str, graph: str, effort: str | None = None, *, initial: ChainState | None = None,
                max_steps: int | None = None) -> Iterator[tuple[Any, dict[str, Any]]]:
        """The compiled graph on an open checkpointer, and the run's thread config with the
        ``recursion_limit`` derived from the run's budget (saved in its state, or ``initial``'s;
        ``max_steps`` raises it for a resume with a larger budget)."""
        runtime = self._runtime(graph, effort)
        with open_checkpointer(self.settings.resolved_checkpoint_url) as saver:
            app = build_graph(runtime, saver)
            config: dict[str, Any] = {"configurable": {"thread_id": run_id}}
            saved = app.get_state(config).values.get("budget") or (initial or {}).get("budget")
            budget = Budget.model_validate(saved or {"max_steps": runtime.spec.max_steps})
            if max_steps and max_steps > budget.max_steps:
                budget = budget.model_copy(update={"max_steps": max_steps})
            config["recursion_limit"] = budget.recursion_limit()
            yield app, config

    def _drive(self, run_id: str, graph: str, payload: Any, *, effort: str | None = None,
               on_progress: Progress | None = None) -> RunResult:
        with self._thread(run_id, graph, effort, initial=payload if isinstance(payload, dict) else None) as (app, config):
            return self._stream(app, config, run_id, payload, on_progress)

    def _stream(self, app: Any, config: dict[str, Any], run_id: str, payload: Any,
                on_progress: Progress | None) -> RunResult:
        """Run the thread until it pauses or ends; record ``run_paused`` (with the checkpoint and
        the requests it binds), ``run_completed`` or ``run_failed``. One process at a time advances
        a run (:func:`run_lock`); another gets ``RunBusy`` and nothing runs."""
        with run_lock(self.settings.home, run_id):
            return self._stream_locked(app, config, run_id, payload, on_progress)

    def _stream_locked(self, app: Any, config: dict[str, Any], run_id: str, payload: Any,
                       on_progress: Progress | None) -> RunResult:
        try:
            for mode, chunk in app.stream(payload, config, stream_mode=["custom", "updates"], durability="sync"):
                if mode == "custom" and on_progress:
                    on_progress(chunk)
        except KeyboardInterrupt as exc:
            self.audit.append(run_id, EventRecord(kind="run_failed", detail={"error": "interrupted by the user"}))
            exc.add_note(f"run {run_id} was interrupted; its last checkpoint is kept: resume it with "
                         f"`chainproof resume {run_id}`")
            raise
        except Exception as exc:
            self.audit.append(run_id, EventRecord(kind="run_failed", detail={"error": f"{type(exc).__name__}: {exc}"}))
            exc.add_note(f"run {run_id} failed; its checkpoint is kept: resume it with `chainproof resume {run_id}`")
            raise
        snapshot = app.get_state(config)
        state = dict(snapshot.values)
        pending = self._pending(snapshot)
        stops = [i.value for i in snapshot.interrupts if i.value.get("kind") == "budget"]
        cost_stops = [i.value for i in snapshot.interrupts if i.value.get("kind") == "cost_budget"]
        refusals = [i.value for i in snapshot.interrupts if i.value.get("kind") == REFUSAL_KIND]  # value contract
        if refusals:  # a refused tool result: recorded as failed, resumable without running the tool again
            self.audit.append(run_id, EventRecord(kind="run_failed", detail={"error": refusals[0]["error"], "refused": refusals[0]}))
            raise refusal_error(run_id, refusals[0])
        if cost_stops:
            self.audit.append(run_id, EventRecord(kind="run_paused", detail={"cost_budget_stop": cost_stops[0]}))
            return RunResult(run_id, "paused", state=state, cost_stop=cost_stops[0])
        if stops:
            self.audit.append(run_id, EventRecord(kind="run_paused", detail={"budget_stop": stops[0]}))
            return RunResult(run_id, "paused", state=state, budget_stop=stops[0])
        if pending:
            where = snapshot.config["configurable"]
            self.audit.append(run_id, EventRecord(kind="run_paused", detail={
                "checkpoint_id": where["checkpoint_id"], "checkpoint_ns": where.get("checkpoint_ns", ""),
                "requests": [{"request_id": p.request["request_id"], "interrupt_id": p.interrupt_id,
                              "proposed_hash": p.request["proposed_hash"]} for p in pending],
            }))
            return RunResult(run_id, "paused", requests=[p.request for p in pending], state=state)
        if self.audit.get_run(run_id).zdr:
            forget_thread(app.checkpointer, run_id)  # zero data retention: the state holds model text
        self.audit.append(run_id, EventRecord(kind="run_completed", detail={"report_path": state.get("report_path")}))
        return RunResult(run_id, "completed", report_path=state.get("report_path"), state=state)
