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
  :meth:`chainproof.checkpoints.audit.AuditStore.append_decision`, which checks for an earlier decision inside
  the append transaction (so of two racing processes exactly one wins), *before* the run is resumed
  with ``Command(resume={interrupt_id: answer})`` — a resume map naming exactly that interrupt.

A zero-data-retention run's checkpoints (which hold model text for resuming) are deleted when it completes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from langgraph.types import Command

from chainproof import _wiring
from chainproof._decisions import record_decision
from chainproof._outcome import stream_run
from chainproof._resume import continuation, initial_state_of, mark_orphan
from chainproof._start import record_start
from chainproof._storage import Checkpointers, cause, run_lock, storage_errors
from chainproof.agents.models import ConfiguredModels, ModelProvider
from chainproof.checkpoints import corrections as _corrections
from chainproof.checkpoints._approver_keys import ClientSignature, KeySigner
from chainproof.checkpoints.accounts import Principal
from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_schema import EventRecord
from chainproof.checkpoints.reasoning_cache import ReasoningCache
from chainproof.errors import InputError, RunBusy, RunNotFound, RunNotResumable, StorageError
from chainproof.graphs._engine import approvals
from chainproof.graphs._engine.compile import compile_for
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.fork import start_fork
from chainproof.graphs.approval import ApprovalAction
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.registry import add_paths, get_spec
from chainproof.graphs.review import Budget
from chainproof.settings import Settings
from chainproof.tools import input_files
from chainproof.types import ProgressEvent, RunResult

__all__ = ["Chainproof", "Progress", "RunBusy", "RunNotFound", "RunNotResumable", "RunResult", "run_lock"]

Progress = Callable[[ProgressEvent], None]
"""Called with each typed progress event while a run advances (``on_progress``)."""
CostOfRun = Callable[[str], "float | None"]


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
        input_files.configure(self.settings.input_file_max_mb)  # the dossier tools read files with it
        add_paths(self.settings.graphs)
        url = self.settings.resolved_database_url
        try:
            self.audit = AuditStore(url, redactor=self.settings.redactor, pool_size=self.settings.workers.resolved_pool_size,
                                    require_signature=self.settings.approvals.require_signature,
                                    trust=self.settings.operator_trust())
        except storage_errors() as exc:
            raise StorageError(f"database_url {url!r} (CHAINPROOF_DATABASE_URL): cannot open the audit store: "
                               f"{cause(exc)}") from exc
        self.audit.head_publisher = self.settings.head_publisher()  # signs a tree head at pauses and ends
        self.models = models or ConfiguredModels(self.settings.model, self.settings.local, self.settings.models_dir,
                                                 database_url=url)
        self.cost_of_run = cost_of_run
        self._checkpoints = Checkpointers(self.settings.resolved_checkpoint_url, self.settings.workers.resolved_pool_size)

    def close(self) -> None:
        self._checkpoints.close()
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
        wait: bool = True,
    ) -> RunResult:
        """Validate ``inputs`` and the budget overrides (``ValueError`` naming the field) and check
        the model is usable (``LocalModelUnavailable`` / ``ValueError``) before anything is
        recorded; then record the run and run it until it pauses (approval, step or cost budget)
        or completes. ``max_steps`` counts plan steps; ``review_every`` is N of the goal review;
        ``zdr``: zero data retention for this run (None: ``settings.zdr``); ``budget_usd``: the
        run's cost budget in USD (None: ``settings.budgets.run_usd``); ``cache``: use the
        reasoning cache (None: ``settings.cache.enabled``; always off for a ZDR run). ``wait=False``
        records the run (its header and ``run_started``: it is listed, shown and streamed from now
        on) and returns status ``started`` without running it; :meth:`advance` runs it (what the web
        app does, so the run id it answers with exists)."""
        run_id, initial = self._record_start(
            graph, inputs, started_by=started_by, department=department, effort=effort, run_id=run_id,
            max_steps=max_steps, review_every=review_every, on_budget=on_budget, zdr=zdr, budget_usd=budget_usd,
            cache=cache)
        if not wait:
            return RunResult(run_id, "started")
        return self._drive(run_id, graph, initial, effort=effort, on_progress=on_progress)

    def submit(self, graph: str, inputs: dict[str, Any], *, queue: str | None = None, **options: Any) -> RunResult:
        """Record a run like :meth:`start` (same checks and keyword ``options``, except
        ``on_progress``) and enqueue it on the DBOS queue ``queue`` (default
        ``settings.workers.queue``) for ``chainproof worker`` processes to advance; returns at once
        with status ``queued``. Needs the audit store and the checkpointer on PostgreSQL and the
        ``workers`` extra: ``WorkersUnavailable`` (exit 2) naming the setting otherwise, with
        nothing recorded. With a ``run_id`` of the caller's, submitting it again is a no-op that
        returns the same run (see :func:`chainproof.workers.submit`)."""
        from chainproof import workers

        return workers.submit(self, graph, inputs, queue=queue, **options)

    def _record_start(self, graph: str, inputs: dict[str, Any], **options: Any) -> tuple[str, dict[str, Any]]:
        """Check and record a new run (see :meth:`start`; :func:`chainproof._start.record_start`)."""
        return record_start(self, graph, inputs, **options)

    def fork(self, run_id: str, at_step: int, *, started_by: str | None = None,
             on_progress: Progress | None = None, wait: bool = True) -> RunResult:
        """Time travel: start a new run from ``run_id``'s checkpoint at or before step ``at_step``
        (the latest one not inside an approval round) and run it until it pauses or completes.
        The fork gets a new run id, is linked to its parent in its header, re-asks every approval
        after the fork point with new request ids, and leaves the parent's record untouched
        (``graphs/_engine/fork.py``). ``wait=False`` records the fork (header, ``run_started``
        with the copied checkpoint) and returns status ``started`` without running it;
        :meth:`advance` runs it (the web app does so in the background). Raises ``RunNotFound``,
        ``InputError`` (``at_step``) or ``UserError`` (a zero-data-retention parent, no
        checkpoints), before anything is recorded."""
        parent = self._run(run_id)
        if started_by is not None and not started_by.strip():
            raise InputError("started_by (--as): a name is required when given; leave it out to fork anonymously")
        with self._thread(run_id, parent.graph) as (app, _, _ctx):
            new_id = start_fork(self.audit, app, parent, at_step, started_by=started_by)
        if not wait:
            return RunResult(new_id, "started")
        return self._drive(new_id, parent.graph, None, on_progress=on_progress)

    def advance(self, run_id: str, *, on_progress: Progress | None = None) -> RunResult:
        """Run a run that was recorded but never advanced (a start or a fork made with
        ``wait=False``) from its first checkpoint, or from its header when it has none, until it
        pauses or completes. Raises ``RunNotFound``, and
        ``RunNotResumable`` for a run that has advanced already (its status is not ``started``,
        or it has a step): ``resume`` continues those."""
        run = self._run(run_id)
        if self.audit.run_status(run_id) != "started" or self.audit.last_step_no(run_id) > 0:
            raise RunNotResumable(f"run {run_id} has advanced already (status: {self.audit.run_status(run_id)}); "
                                  f"continue it with: chainproof resume {run_id}")
        with self._thread(run_id, run.graph) as (app, config, _):
            checkpointed = bool(app.get_state(config).values)
        payload = None if checkpointed else initial_state_of(self.audit, run_id)
        return self._drive(run_id, run.graph, payload, on_progress=on_progress)

    def policy(self, graph: str) -> ApprovalPolicy:
        """The approval policy a new run of ``graph`` binds to: the store's newest version once the
        store holds policies, else ``settings.approval_policies[graph]`` if set, else the graph
        spec's own (``checkpoints/_policy_store.py``)."""
        return _wiring.approval_policy(self.settings, graph, get_spec(graph), self.audit)

    def pending_requests(self, run_id: str) -> list[dict[str, Any]]:
        """The open approval requests of ``run_id`` (empty when it is not paused)."""
        run = self._run(run_id)
        with self._thread(run_id, run.graph) as (app, config, _):
            snapshot = app.get_state(config)
            if approvals.pause_unrecorded(self.audit, run_id, snapshot):  # a kill in the pause window:
                try:  # record the pause now, unless a process advances the run (the lock only on this path)
                    with self._lock(run_id):
                        approvals.repair_pause(self.audit, run_id, app.get_state(config))
                except RunBusy:
                    pass
            return [p.value for p in approvals.approvals_of(approvals.pauses_of(snapshot))]

    def decide(
        self,
        run_id: str,
        *,
        action: ApprovalAction,
        approver: str | None = None,
        principal: Principal | None = None,
        comment: str | None = None,
        edited: dict[str, Any] | None = None,
        changes: list[str] | None = None,
        request_id: str | None = None,
        proposed_hash: str | None = None,
        on_progress: Progress | None = None,
        wait: bool = True,
        signer: KeySigner | ClientSignature | None = None,
    ) -> RunResult:
        """Answer a pending approval request and resume the run.

        ``action``: approve | reject (needs ``comment``) | edit (``edited``: the replacement
        proposal, or ``changes``: ``FIELD=VALUE`` assignments applied to the pending proposal;
        validated by the spec's ``approval_schema``). ``request_id`` may be omitted when exactly
        one request is pending. Who decides: ``principal`` (a signed-in account, recorded with the
        decision and checked against the policy by username and account roles) or ``approver`` (a
        typed name; refused when ``auth.require_authenticated_approvers`` is set).
        ``proposed_hash``: the proposal hash the approver saw (optional; refused when it differs).
        ``wait=False`` records the decision and returns status ``resumed`` without advancing the
        run (``resume`` then applies it: the web app does so in the background). ``signer``: signs
        the decision with a registered approver key (``KeySigner``: a private key held here;
        ``ClientSignature``: a signature the client made); required when the run's policy has
        ``require_signature`` (chainproof/_decisions.py).

        Raises ``ApprovalRefused`` (listing the pending requests) and executes and records nothing
        when: the run is not paused; the id matches no pending request (stale, unknown, or of
        another run); the request was already decided; the thread moved away from the checkpoint
        the request was raised at (a fork or a state update); the approver is not allowed by the
        policy (``ApproverNotAllowed``); or the answer is incomplete or does not fit the schema.
        ``ValueError`` for a blank approver name; ``RunNotFound`` for an unknown run
        (chainproof/_decisions.py).
        """
        run = self._run(run_id)
        queue = self._queue_of(run_id)
        with self._lock(run_id), self._thread(run_id, run.graph) as (app, config, ctx):
            approvals.repair_pause(self.audit, run_id, app.get_state(config))  # a kill in the pause window
            resume, woken = record_decision(self.audit, self.settings, run, app.get_state(config), ctx, action=action,
                                            approver=approver, principal=principal, comment=comment, edited=edited,
                                            changes=changes, request_id=request_id, proposed_hash=proposed_hash,
                                            queue=queue, signer=signer)
            if queue is None:
                if not wait:
                    return RunResult(run_id, "resumed")
                return self._stream(app, config, ctx, run_id, Command(resume=resume), on_progress)
        from chainproof import workers  # after the lock is released, so the worker that takes it can advance

        return workers.wake(self, run_id, queue, woken["workflow_id"])

    def correct(self, run_id: str, *, step: int, field: str, value: Any, reason: str, principal: Principal | None):
        """Append a correction of ``field`` of step ``step`` and return its record: who may (an
        admin or approver ``principal``), what is checked and raised: ``checkpoints/corrections.py``."""
        return _corrections.correct(self.audit, run_id, step=step, field=field, value=value, reason=reason, principal=principal)

    def replay(self, run_id: str):
        """Replay ``run_id`` from its record (:func:`chainproof.graphs.replay.replay_run`): no model is
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
        yet or has completed, or when the run is an orphan (a header without ``run_started``, left by
        a version that wrote them apart): it is then marked, not run: ``run_started`` (covering the
        header, so ``verify`` passes) and ``run_failed`` are recorded, and the message says to start
        it again."""
        run = self._run(run_id)
        if self.audit.last_event(run_id, "run_started") is None:
            with self._lock(run_id):
                mark_orphan(self.audit, run)
        with self._lock(run_id), self._thread(run_id, run.graph, max_steps=max_steps) as (app, config, ctx):
            payload, detail = continuation(self.settings, self.audit, run_id, app.get_state(config),
                                           max_steps=max_steps, budget_usd=budget_usd, by=by)
            return self._stream(app, config, ctx, run_id, payload, on_progress, resumed=detail)

    def check_resumable(self, run_id: str, *, max_steps: int | None = None, budget_usd: float | None = None) -> None:
        """What :meth:`resume` would refuse, checked without running anything (``RunNotResumable``
        for a completed run or one waiting for a decision; ``InputError`` naming ``max_steps`` /
        ``budget_usd``; ``RunBusy`` while another process holds the run), so the web app answers
        409 / 422 before accepting a resume. Under the run's lock, as :meth:`resume` reads it. An
        orphan run passes: :meth:`resume` marks it."""
        run = self._run(run_id)
        if self.audit.last_event(run_id, "run_started") is None:
            return
        with self._lock(run_id), self._thread(run_id, run.graph, max_steps=max_steps) as (app, config, _ctx):
            continuation(self.settings, self.audit, run_id, app.get_state(config), max_steps=max_steps,
                         budget_usd=budget_usd)

    # ------------------------------------------------------------ helpers
    def _check_checkpointer(self) -> None:
        self._checkpoints.check()

    def _run(self, run_id: str):
        run = self.audit.get_run(run_id)
        if run is None:
            recent = ", ".join(r.run_id for r, _, _ in self.audit.list_runs(limit=5)) or "none"
            raise RunNotFound(f"no run {run_id!r} in {self.settings.resolved_database_url}; recent runs: {recent}")
        return run

    @property
    def reasoning_cache(self) -> ReasoningCache:
        """The reasoning cache in the audit store's database (``chainproof cache clear``)."""
        return _wiring.reasoning_cache(self.settings, self.audit)

    @contextmanager
    def _thread(self, run_id: str, graph: str, effort: str | None = None, *, initial: Mapping[str, Any] | None = None,
                max_steps: int | None = None) -> Iterator[tuple[Any, dict[str, Any], ChainContext]]:
        """The compiled graph on an open checkpointer, the run's thread config with the
        ``recursion_limit`` derived from the run's budget (saved in its state, or ``initial``'s;
        ``max_steps`` raises it for a resume with a larger budget), and the run's context (every
        ``stream`` passes it: LangGraph does not checkpoint the context)."""
        started = self.audit.last_event(run_id, "run_started")
        recorded = (started.detail or {}) if started is not None else {}
        if effort is None:  # the run's --effort override holds for every later resume, decision and fork too
            effort = recorded.get("effort_override")
        ctx = _wiring.context_from_settings(self.settings, graph=graph, spec=get_spec(graph), audit=self.audit,
                                            models=self.models, effort=effort, cost_of_run=self.cost_of_run,
                                            recorded=recorded)
        with self._checkpoints.open() as saver:
            app = compile_for(ctx.spec, saver)
            config: dict[str, Any] = {"configurable": {"thread_id": run_id}}
            if getattr(app, "state_is_the_developers", False):  # an instrumented graph: the budget it started with
                saved = recorded.get("budget")
            else:
                saved = app.get_state(config).values.get("budget") or (initial or {}).get("budget")
            budget = Budget.model_validate(saved or {"max_steps": ctx.spec.max_steps})
            if max_steps and max_steps > budget.max_steps:
                budget = Budget.model_validate({**budget.model_dump(), "max_steps": max_steps})  # within MAX_STEPS
            config["recursion_limit"] = budget.recursion_limit()
            yield app, config, ctx

    def _drive(self, run_id: str, graph: str, payload: Any, *, effort: str | None = None,
               on_progress: Progress | None = None) -> RunResult:
        initial = payload if isinstance(payload, dict) else None
        with self._lock(run_id), self._thread(run_id, graph, effort, initial=initial) as (app, config, ctx):
            return self._stream(app, config, ctx, run_id, payload, on_progress)

    def _lock(self, run_id: str) -> Any:
        """The run's lock (:func:`run_lock`): an advisory lock in the audit database when it is
        PostgreSQL (every host sharing it), else a file lock under ``settings.home``. Taken before
        the thread's state is read, so what is resumed is what was checked. Raises ``RunBusy``."""
        return run_lock(self.settings.home, run_id, self.settings.resolved_database_url)

    def _queue_of(self, run_id: str) -> str | None:
        """The DBOS queue of a run submitted to workers (its ``run_started`` event), else None."""
        started = self.audit.last_event(run_id, "run_started")
        return ((started.detail or {}) if started is not None else {}).get("queue")

    def _stream(self, app: Any, config: dict[str, Any], ctx: ChainContext, run_id: str, payload: Any,
                on_progress: Progress | None, *, resumed: dict[str, Any] | None = None) -> RunResult:
        """Run the thread until it pauses or ends; record ``run_paused`` (with the checkpoint and
        the requests it binds), ``run_completed`` or ``run_failed``. The caller holds the run's lock
        (:meth:`_lock`), so another process gets ``RunBusy`` before anything runs or is recorded
        (the ``run_resumed`` event, ``resumed``, is written only once the lock is held)."""
        if resumed is not None:
            self.audit.append(run_id, EventRecord(kind="run_resumed", detail=resumed))
        return stream_run(self.audit, app, config, ctx, run_id, payload, on_progress)
