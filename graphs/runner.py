"""Start, pause, resume: the entry points the CLI (and any Python caller) uses to run chains.

A run is one LangGraph thread (``thread_id`` = ``run_id``) checkpointed after every super-step
(``durability="sync"``: the checkpoint is written before the next step starts, so a pause or a
crash loses nothing). Lifecycle events (started, paused, resumed, completed, failed) go to the
audit store. Resuming works from any process that opens the same checkpointer and audit store.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from langgraph.types import Command

from agents.models import ConfiguredModels, ModelProvider
from checkpoints.audit import AuditStore
from checkpoints.audit_schema import EventRecord
from checkpoints.saver import open_checkpointer
from graphs.approval import ApprovalAnswer, ApprovalRefused, ApprovalRequest, check_answer
from graphs.orchestrator import ChainState, Runtime, build_graph
from graphs.registry import get_spec
from graphs.settings import Settings

Progress = Callable[[dict[str, Any]], None]


class RunNotFound(LookupError):
    """No run with that id in the audit store."""


class RunNotResumable(ValueError):
    """The run cannot be resumed: it completed, or it waits for an approval answer instead."""


@dataclass
class RunResult:
    """Where a run stands after a call: ``status`` is ``paused`` (``requests`` lists the open
    approval requests) or ``completed`` (``report_path`` is set)."""

    run_id: str
    status: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    report_path: str | None = None
    state: dict[str, Any] = field(default_factory=dict)


class Chainproof:
    """Runs graphs against the configured audit store, checkpointer and models.

    Args:
        settings: configuration (``Settings()`` reads the environment and ``chainproof.toml``).
        models: the model provider; default builds models from ``settings.model``.
    """

    def __init__(self, settings: Settings | None = None, models: ModelProvider | None = None):
        self.settings = settings or Settings()
        self.audit = AuditStore(self.settings.resolved_database_url)
        self.models = models or ConfiguredModels(self.settings.model, self.settings.local, self.settings.models_dir)

    def close(self) -> None:
        self.audit.close()

    def __enter__(self) -> "Chainproof":
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
        on_progress: Progress | None = None,
    ) -> RunResult:
        """Validate ``inputs`` (``ValueError`` naming the field) and check the model is usable
        (``LocalModelUnavailable`` / ``ValueError``) before anything is recorded; then record the
        run and run it until it pauses for approval or completes."""
        spec = get_spec(graph)
        inputs = spec.validate_inputs(dict(inputs))
        preflight = getattr(self.models, "preflight", None)
        if preflight is not None:
            preflight()
        run_id = run_id or uuid.uuid4().hex[:12]
        goal = spec.goal(inputs)
        self.audit.start_run(
            run_id, graph=graph, goal=goal, inputs=inputs, company=inputs.get("company"),
            department=department, started_by=started_by,
        )
        initial: ChainState = {"run_id": run_id, "graph": graph, "goal": goal, "inputs": inputs, "step": 0}
        return self._drive(run_id, graph, initial, effort=effort, on_progress=on_progress)

    def pending_requests(self, run_id: str) -> list[dict[str, Any]]:
        """The open approval requests of ``run_id`` (empty when it is not paused)."""
        run = self._run(run_id)
        with open_checkpointer(self.settings.resolved_checkpoint_url) as saver:
            graph = build_graph(self._runtime(run.graph), saver)
            snapshot = graph.get_state(self._config(run_id))
        return [i.value for i in snapshot.interrupts]

    def decide(
        self,
        run_id: str,
        *,
        action: str,
        approver: str,
        comment: str | None = None,
        edited: dict[str, Any] | None = None,
        request_id: str | None = None,
        on_progress: Progress | None = None,
    ) -> RunResult:
        """Answer a pending approval request and resume the run.

        ``request_id`` may be omitted when exactly one request is pending. Raises
        ``ApprovalRefused`` (listing the pending requests) when the run is not paused, the id
        matches no pending request, or the answer is incomplete; nothing is executed then.
        """
        run = self._run(run_id)
        pending = self.pending_requests(run_id)
        if not pending:
            raise ApprovalRefused(f"run {run_id} has no pending approval request (status: {self.audit.run_status(run_id)})")
        listing = ", ".join(f"{p['request_id']} ({p['question']})" for p in pending)
        if request_id is None:
            if len(pending) > 1:
                raise ApprovalRefused(f"run {run_id} has {len(pending)} pending requests; name one with --request: {listing}")
            request_id = pending[0]["request_id"]
        match = [p for p in pending if p["request_id"] == request_id]
        if not match:
            raise ApprovalRefused(f"request {request_id} is not pending in run {run_id}; pending: {listing}")
        answer = ApprovalAnswer(
            request_id=request_id, action=action, approver=approver, comment=comment, edited=edited,
            decided_at=datetime.now(timezone.utc),
        )
        answer = check_answer(answer, ApprovalRequest.model_validate(match[0]), get_spec(run.graph).decision_schema)
        self.audit.append(run_id, EventRecord(kind="run_resumed", detail={"request_id": request_id, "by": approver}))
        return self._drive(run_id, run.graph, Command(resume=answer.model_dump(mode="json")), on_progress=on_progress)

    def resume(self, run_id: str, *, on_progress: Progress | None = None) -> RunResult:
        """Continue a run that stopped on an error (for example a model call that exhausted its
        retries) from its last checkpoint: LangGraph ``invoke(None)`` on the run's thread. Steps
        that completed before the failure are not run again; the failed node runs again.

        Raises ``RunNotFound``; ``RunNotResumable`` when the run completed or waits for an
        approval (answer it with :meth:`decide`).
        """
        run = self._run(run_id)
        status = self.audit.run_status(run_id)
        if status == "completed":
            raise RunNotResumable(f"run {run_id} is completed; there is nothing to resume")
        pending = self.pending_requests(run_id)
        if pending:
            ids = ", ".join(p["request_id"] for p in pending)
            raise RunNotResumable(f"run {run_id} is paused for approval (request {ids}); "
                                  f"answer it with: chainproof approve {run_id} --as NAME")
        self.audit.append(run_id, EventRecord(kind="run_resumed", detail={"after": status}))
        return self._drive(run_id, run.graph, None, on_progress=on_progress)

    # -------------------------------------------------------------- internals
    def _run(self, run_id: str):
        run = self.audit.get_run(run_id)
        if run is None:
            recent = ", ".join(r.run_id for r, _, _ in self.audit.list_runs(limit=5)) or "none"
            raise RunNotFound(f"no run {run_id!r} in {self.settings.resolved_database_url}; recent runs: {recent}")
        return run

    def _runtime(self, graph: str, effort: str | None = None) -> Runtime:
        return Runtime(get_spec(graph), self.models, self.audit, self.settings.resolved_reports_dir, effort)

    @staticmethod
    def _config(run_id: str, max_steps: int | None = None) -> dict[str, Any]:
        config: dict[str, Any] = {"configurable": {"thread_id": run_id}}
        if max_steps:
            config["recursion_limit"] = max_steps + 1  # N super-steps need a limit of N + 1
        return config

    def _drive(self, run_id: str, graph: str, payload: Any, *, effort: str | None = None,
               on_progress: Progress | None = None) -> RunResult:
        runtime = self._runtime(graph, effort)
        config = self._config(run_id, runtime.spec.max_steps)
        with open_checkpointer(self.settings.resolved_checkpoint_url) as saver:
            app = build_graph(runtime, saver)
            try:
                for mode, chunk in app.stream(payload, config, stream_mode=["custom", "updates"], durability="sync"):
                    if mode == "custom" and on_progress:
                        on_progress(chunk)
            except Exception as exc:
                self.audit.append(run_id, EventRecord(kind="run_failed", detail={"error": f"{type(exc).__name__}: {exc}"}))
                exc.add_note(f"run {run_id} failed; its checkpoint is kept: resume it with `chainproof resume {run_id}`")
                raise
            snapshot = app.get_state(config)
        state = dict(snapshot.values)
        if snapshot.interrupts:
            requests = [i.value for i in snapshot.interrupts]
            self.audit.append(run_id, EventRecord(
                kind="run_paused", detail={"requests": [r["request_id"] for r in requests]}))
            return RunResult(run_id, "paused", requests=requests, state=state)
        self.audit.append(run_id, EventRecord(kind="run_completed", detail={"report_path": state.get("report_path")}))
        return RunResult(run_id, "completed", report_path=state.get("report_path"), state=state)
