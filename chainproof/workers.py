"""Runs on many workers: DBOS workflows on a queue in PostgreSQL.

``Chainproof.submit`` (``chainproof submit GRAPH``) records a run, checkpoints its initial state
(LangGraph runs nothing yet) and enqueues the workflow ``chainproof.advance_run`` on a DBOS queue
in PostgreSQL; ``chainproof worker`` processes (:func:`serve`) take workflows from their queues
and advance the runs with LangGraph's PostgreSQL checkpointer and the audit store in PostgreSQL.

* **Deterministic workflow bodies.** ``advance_run`` only loops over the DBOS step
  ``chainproof.advance``, which runs LangGraph until the run pauses or ends and returns its
  status and checkpoint id, never its state.
* **JSON, never pickle.** Every process configures DBOS with ``DBOSPortableJSONSerializer``
  (DBOS's default serializer is pickle); workflow inputs are a run id.
* **One advancer.** The step takes the run's lock (:func:`chainproof._locks.run_lock`, an
  advisory lock in the shared database) before reading the thread's state; a worker that finds
  it held skips (``busy``). The holder looks again after releasing it, so a decision recorded
  while it was busy is applied then: no wake-up is lost.
* **Approvals hold no worker slot.** A run that pauses for a person ends its workflow. A
  decision on a submitted run (``Chainproof.decide``, from any process) is recorded under the
  run's lock, then enqueues ``chainproof.advance_run`` with the workflow id
  ``RUN:decision:REQUEST`` (enqueueing it twice finds the first), and any free worker applies it.
  Not ``DBOS.recv`` in a queued workflow: a workflow waiting there still counts against its
  queue's worker concurrency (DBOS ``_sys_db.start_queued_workflows`` counts this worker's
  running workflows), so runs waiting days for people would fill every slot.

* **Giving up.** When the advance step fails for good (DBOS's retries exhausted, or an error
  that retrying cannot mend, such as ``RecordTampered``), the step ``chainproof.gave_up`` records
  the run as failed (``run_failed``, naming the error and ``chainproof resume RUN``), as a run
  that fails in one process is; the run is never left ``queued`` with only the worker log to say why.

* **Recovery.** Each worker records a heartbeat and recovers the workflows of a worker silent for
  ``workers.recovery_after_s`` through DBOS's recovery of that executor id
  (:mod:`chainproof._heartbeats`); the run continues from its last checkpoint on any worker.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from chainproof._heartbeats import Heartbeat
from chainproof._locks import postgres_dsn
from chainproof._resume import continuation, initial_state_of
from chainproof.checkpoints.audit_schema import EventRecord
from chainproof.errors import ChainproofError, InputError, RunBusy, RunNotResumable, StorageError, WorkersUnavailable
from chainproof.types import RunResult

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chainproof.app import Chainproof
    from chainproof.settings import Settings

try:
    from dbos import DBOS, DBOSClient, DBOSConfig, DBOSPortableJSONSerializer, EnqueueOptions
except ImportError:  # the `workers` extra is not installed: submit and worker say so
    DBOS = None  # type: ignore[assignment,misc]

APP_NAME = "chainproof"
"""The DBOS application name: queues and workflows are owned by it, so every process shares them."""
WORKFLOW = "chainproof.advance_run"
MAX_ROUNDS = 50
"""Advances one workflow makes at most (each applies the decisions recorded while the last ran)."""

_worker: dict[str, Any] = {}  # this process's engine, executor id and reporter while it serves


def require_postgres(settings: Settings, what: str) -> str:
    """The URL of DBOS's system database (``workers.system_database_url``, else
    ``database_url``), after checking that the audit store and the checkpointer are on
    PostgreSQL and that DBOS is installed. Raises :class:`WorkersUnavailable` naming the setting."""
    if DBOS is None:
        raise WorkersUnavailable(f"{what}: needs the workers extra (PyPI dbos); install it with "
                                 "pip install -c constraints.txt -e '.[workers]'")
    for name, url in (("database_url", settings.resolved_database_url), ("checkpoint_url", settings.resolved_checkpoint_url),
                      ("workers.system_database_url", settings.workers.system_database_url or settings.resolved_database_url)):
        if postgres_dsn(url) is None:
            env = "CHAINPROOF_" + name.upper().replace(".", "__")
            raise WorkersUnavailable(f"{what}: runs on workers need PostgreSQL; {name} ({env}) is {url!r}; set "
                                     "CHAINPROOF_DATABASE_URL and CHAINPROOF_CHECKPOINT_URL to a postgresql:// URL "
                                     "that every worker reaches (without them, `chainproof run` runs in this process)")
    return postgres_dsn(settings.workers.system_database_url or settings.resolved_database_url) or ""


def _version() -> str:
    try:
        return f"chainproof-{metadata.version('chainproof')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "chainproof-dev"


def dbos_config(settings: Settings, *, executor_id: str | None = None) -> DBOSConfig:
    """DBOS's configuration for a worker of ``settings``: the system database (see
    :func:`require_postgres`), the JSON serializer, one application version for every process
    of this Chainproof version (DBOS would otherwise hash the registered workflows' source), and
    this worker's executor id (``workers.executor_id``, else ``HOST-PID``), and a system database
    pool of ``workers.resolved_pool_size`` connections (DBOS's own default is 20)."""
    url = require_postgres(settings, "worker")
    return {"name": APP_NAME, "system_database_url": url, "serializer": DBOSPortableJSONSerializer(),
            "sys_db_pool_size": settings.workers.resolved_pool_size,
            "application_version": _version(), "log_level": "WARNING",
            "scheduler_polling_interval_sec": settings.workers.scheduler_polling_interval_s,
            "executor_id": executor_id or settings.workers.executor_id or f"{socket.gethostname()}-{os.getpid()}"}


CLIENT_POOL_SIZE = 2
"""Connections a process's DBOS client (``submit``, decisions, a scan's fan-out) opens at most."""
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def client(settings: Settings, what: str) -> DBOSClient:
    """A DBOS client on the system database (one per process and URL), which only enqueues: no
    workflow runs in this process; its pool holds at most ``CLIENT_POOL_SIZE`` connections (enqueues
    are single statements). Creates DBOS's schema when no worker has yet."""
    url = require_postgres(settings, what)
    with _clients_lock:
        if url not in _clients:
            try:
                DBOS.migrate(url)  # the client never migrates; DBOS.migrate is idempotent
                _clients[url] = DBOSClient(system_database_url=url, serializer=DBOSPortableJSONSerializer(),
                                           application_name=APP_NAME, system_database_pool_size=CLIENT_POOL_SIZE)
            except Exception as exc:
                raise StorageError(f"workers.system_database_url {url!r}: cannot open DBOS's system database: "
                                   f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        return _clients[url]


def check_queue(settings: Settings, queue: str, option: str) -> str:
    """``queue`` when its name is valid (:data:`chainproof.settings.QUEUE_NAME`) and the settings
    declare it (``workers.queue`` or a ``workers.queue_limits`` name: no worker listens to any
    other). ``InputError`` (exit 2) naming ``option`` and the known queues otherwise."""
    from chainproof.settings import check_queue_name

    try:
        check_queue_name(queue)
    except ValueError as exc:
        raise InputError(f"{option}: {exc}") from None
    known = settings.workers.known_queues
    if queue not in known:
        raise InputError(f"{option}: no queue {queue!r} is declared; known queues: {', '.join(known)} (declare one "
                         "with a [workers.queue_limits.NAME] table, or set workers.queue)")
    return queue


def enqueue(settings: Settings, run_id: str, queue: str, workflow_id: str) -> str:
    """Enqueue ``chainproof.advance_run(run_id)`` on ``queue`` as ``workflow_id`` (an id already
    used returns that workflow: DBOS's ``return-existing`` policy); its id."""
    options: EnqueueOptions = {"workflow_name": WORKFLOW, "queue_name": queue, "workflow_id": workflow_id}
    return client(settings, "enqueue").enqueue(options, run_id).workflow_id


def submit(app: Chainproof, graph: str, inputs: dict[str, Any], *, queue: str | None = None, **options: Any) -> RunResult:
    """See :meth:`chainproof.app.Chainproof.submit`. The run's initial state is checkpointed here
    (``interrupt_before="*"``: LangGraph saves the input and runs no node), so a worker starts it
    from the checkpointer like any other continuation; then a ``run_queued`` event, then the
    enqueue (workflow id ``RUN:start``).

    Idempotent for a caller's own ``run_id`` (a fan-out whose step is retried): a run already
    recorded under it records nothing new (what a first attempt left undone, the initial
    checkpoint or ``run_queued``, is completed) and is enqueued under the same workflow id, which
    DBOS resolves to the first workflow. ``InputError`` when that id is a run of another graph."""
    require_postgres(app.settings, "submit")
    queue = check_queue(app.settings, app.settings.workers.queue if queue is None else queue, "queue (--queue)")
    client(app.settings, "submit")  # the system database is reachable before anything is recorded
    run = app.audit.get_run(options["run_id"]) if options.get("run_id") else None
    if run is not None and run.graph != graph:
        raise InputError(f"run_id: {run.run_id!r} is already a run of graph {run.graph!r}, not {graph!r}")
    run_id, initial = (run.run_id, None) if run is not None else app._record_start(graph, inputs, queue=queue, **options)
    workflow_id = f"{run_id}:start"
    if run is None or app.audit.last_event(run_id, "run_queued") is None:
        with app._lock(run_id), app._thread(run_id, graph, options.get("effort"), initial=initial) as (compiled, config, ctx):
            if initial is not None or not compiled.get_state(config).values:  # not checkpointed yet
                compiled.invoke(initial or initial_state_of(app.audit, run_id), config, context=ctx, durability="sync",
                                interrupt_before="*")
        app.audit.append(run_id, EventRecord(kind="run_queued", detail={"queue": queue, "workflow_id": workflow_id}))
    return wake(app, run_id, queue, workflow_id)


def wake(app: Chainproof, run_id: str, queue: str, workflow_id: str) -> RunResult:
    """Enqueue the workflow that continues ``run_id`` (after its decision or submission was
    recorded); status ``queued``. A failure to enqueue names ``chainproof resume``, which
    applies what was recorded in this process instead."""
    try:
        enqueue(app.settings, run_id, queue, workflow_id)
    except Exception as exc:
        exc.add_note(f"run {run_id}: what was recorded is kept; continue it with `chainproof resume {run_id}`")
        raise
    return RunResult(run_id, "queued")


def advance(app: Chainproof, run_id: str, worker: str) -> dict[str, Any]:
    """Advance ``run_id`` until it pauses or ends, holding its lock (what the DBOS step
    ``chainproof.advance`` runs). Returns ``{"run_id", "status", "checkpoint_id", "worker",
    "advanced", "more"}`` (``advanced``: LangGraph ran; false when there was nothing to do or the
    run was busy); ``status``: ``paused`` / ``completed`` / ``failed`` (with ``error``: the run is
    recorded as failed; ``chainproof resume`` continues it), or ``busy`` (another process holds
    the lock: nothing ran). ``more``: a decision was recorded while it ran; advance again."""
    out: dict[str, Any] = {"run_id": run_id, "worker": worker, "checkpoint_id": None, "advanced": False}
    graph = app._run(run_id).graph
    try:
        with app._lock(run_id), app._thread(run_id, graph) as (compiled, config, ctx):
            snapshot = compiled.get_state(config)
            try:
                payload, detail = continuation(app.settings, app.audit, run_id, snapshot)
            except (RunNotResumable, InputError):  # waits for a person (or a larger budget), or completed
                out.update(status=app.audit.run_status(run_id), checkpoint_id=_checkpoint(snapshot))
                return {**out, "more": False}
            out["advanced"] = True
            try:
                result = app._stream(compiled, config, ctx, run_id, payload, None, resumed={**(detail or {}), "worker": worker})
                out["status"] = result.status
            except ChainproofError as exc:  # recorded as run_failed by the stream
                out.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            out["checkpoint_id"] = _checkpoint(compiled.get_state(config))
    except RunBusy:
        return {**out, "status": "busy", "more": False}
    return {**out, "more": decided_while_running(app, run_id)}


def _checkpoint(snapshot: Any) -> str | None:
    return (snapshot.config or {}).get("configurable", {}).get("checkpoint_id")


def decided_while_running(app: Chainproof, run_id: str) -> bool:
    """Whether ``run_id`` is paused (or queued after a decision) with a decision recorded against
    the checkpoint it paused at: one that a busy worker skipped and nobody has applied yet."""
    if app.audit.run_status(run_id) not in ("paused", "queued"):
        return False
    paused = app.audit.last_event(run_id, "run_paused")
    binding = (paused.detail or {}) if paused is not None else {}
    for request in binding.get("requests", []):
        record = app.audit.decision_for(request["request_id"])
        if record is not None and record.payload.get("checkpoint_id") == binding.get("checkpoint_id"):
            return True
    return False


def serving_app() -> Chainproof | None:
    """The engine this process advances runs with while it serves as a worker (:func:`serve`),
    else None: a tool that submits runs from a worker submits them with the worker's settings and
    models (``graphs/portfolio_scan.py``)."""
    return _worker.get("app")


def _advance_step(run_id: str) -> dict[str, Any]:
    app, worker = _worker["app"], _worker["executor_id"]
    out = advance(app, run_id, worker)
    if _worker.get("report") is not None:
        _worker["report"](out)
    return out


def _advance_run(run_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _ in range(MAX_ROUNDS):
        try:
            out = advance_step(run_id)
        except Exception as exc:  # the step gave up: retries exhausted, or an error retrying cannot mend
            return record_gave_up(run_id, gave_up_reason(exc))
        if not out.get("more"):
            break
    return out


def gave_up_reason(exc: Exception) -> str:
    """What made the step ``chainproof.advance`` give up: the last error of its attempts when DBOS
    exhausted its retries (``DBOSMaxStepRetriesExceeded.errors``), else ``exc``; ``Type: message``."""
    errors = getattr(exc, "errors", None)
    last = errors[-1] if errors else exc
    attempts = f" (after {len(errors)} attempts)" if errors else ""
    return f"{type(last).__name__}: {last}{attempts}"


def gave_up(app: Chainproof, run_id: str, worker: str, reason: str) -> dict[str, Any]:
    """Record ``run_id`` as failed (``run_failed`` with ``error``: ``reason`` and how to continue
    it, ``chainproof resume RUN``; as a failed run in one process) after its workflow gave up on
    it, unless it is no longer waiting for a worker (paused, ended or already recorded as failed)
    or another process advances it now (its lock is held: ``busy``). Returns the outcome as
    :func:`advance` does (``status``, ``error``)."""
    out: dict[str, Any] = {"run_id": run_id, "worker": worker, "checkpoint_id": None, "advanced": False, "more": False}
    error = f"{reason}; worker {worker} gave up on it: continue it with `chainproof resume {run_id}`"
    try:
        with app._lock(run_id):
            status = app.audit.run_status(run_id)
            if status in ("started", "queued", "resumed"):
                app.audit.append(run_id, EventRecord(kind="run_failed", detail={"error": error, "worker": worker}))
                status = "failed"
    except RunBusy:
        return {**out, "status": "busy"}
    return {**out, "status": status, "error": error}


def _record_gave_up(run_id: str, reason: str) -> dict[str, Any]:
    out = gave_up(_worker["app"], run_id, _worker["executor_id"], reason)
    if _worker.get("report") is not None:
        _worker["report"](out)
    return out


def _may_mend(exc: BaseException) -> bool:
    """Whether retrying the step may help: not for Chainproof's own errors (a tampered record, an
    unknown run or graph) other than ``StorageError`` (the database unreachable)."""
    return not isinstance(exc, ChainproofError) or isinstance(exc, StorageError)


if DBOS is not None:
    # A step that raises (the database refused a connection: "too many clients", a restart) is
    # retried by DBOS with back-off (1, 2, 4, 8 s) instead of ending the workflow with the run left
    # queued; advancing again is safe: it takes the run's lock and goes on from the last checkpoint.
    advance_step = DBOS.step(name="chainproof.advance", retries_allowed=True, interval_seconds=1.0,
                             max_attempts=5, backoff_rate=2.0, should_retry=_may_mend)(_advance_step)
    # When the advance gives up, a step of its own records the run as failed: DBOS keeps its result,
    # so a recovered workflow does not record it twice.
    record_gave_up = DBOS.step(name="chainproof.gave_up", retries_allowed=True, interval_seconds=1.0,
                               max_attempts=5, backoff_rate=2.0)(_record_gave_up)
    advance_run = DBOS.workflow(name=WORKFLOW)(_advance_run)


def queue_options(settings: Settings, queue: str, concurrency: int) -> dict[str, Any]:
    """DBOS ``register_queue`` limits of ``queue``: ``worker_concurrency`` (this worker) and, from
    ``workers.queue_limits[queue]``, ``limiter`` ``{"limit": runs_per_period, "period": period_s}``
    and ``global_concurrency``. Raises ``InputError`` when a worker's concurrency exceeds the
    queue's global concurrency (DBOS refuses that)."""
    limits = settings.workers.queue_limits.get(queue)
    options: dict[str, Any] = {"worker_concurrency": concurrency}
    if limits is None:
        return options
    if limits.runs_per_period is not None:
        options["limiter"] = {"limit": limits.runs_per_period, "period": limits.period_s}
    if limits.global_concurrency is not None:
        if concurrency > limits.global_concurrency:
            raise InputError(f"concurrency (--concurrency): expected at most workers.queue_limits.{queue}."
                             f"global_concurrency ({limits.global_concurrency}), got {concurrency}")
        options["global_concurrency"] = limits.global_concurrency
    return options


def serve(app: Chainproof, *, queues: list[str] | None = None, concurrency: int | None = None,
          stop: threading.Event | None = None, executor_id: str | None = None,
          report: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Run this process as a worker until ``stop`` is set: launch DBOS (:func:`dbos_config`),
    listen to ``queues`` (default ``[settings.workers.queue]``), register each with
    ``worker_concurrency`` = ``concurrency`` (default ``settings.workers.concurrency``) and advance
    the runs taken from them with ``app``. ``report`` gets each step's outcome (see
    :func:`advance`). On stop, running advances get ``workers.shutdown_grace_s`` seconds to
    finish (``DBOS.destroy``). Raises :class:`WorkersUnavailable` without PostgreSQL or DBOS,
    ``InputError`` for a bad or undeclared queue name (:func:`check_queue`) or concurrency."""
    w = app.settings.workers
    config = dbos_config(app.settings, executor_id=executor_id)
    queues = [w.queue] if queues is None else queues
    concurrency = w.concurrency if concurrency is None else concurrency
    if concurrency < 1:
        raise InputError(f"concurrency (--concurrency): expected 1 or more runs at once, got {concurrency}")
    if not queues:
        raise InputError(f"queues (--queues): expected at least one queue name; known queues: {', '.join(w.known_queues)}")
    for q in queues:
        check_queue(app.settings, q, "queues (--queues)")
    options = {q: queue_options(app.settings, q, concurrency) for q in queues}
    import chainproof._schedules  # noqa: F401 - registers the scheduled workflow before launch
    _worker.update(app=app, executor_id=config["executor_id"], report=report)
    DBOS(config=config)
    try:
        DBOS.listen_queues(queues)
        DBOS.launch()
        for q in queues:
            DBOS.register_queue(q, polling_interval_sec=w.polling_interval_s, on_conflict="always_update",
                                **options[q])
        heartbeat = Heartbeat(app.audit.engine, str(config["executor_id"]), every_s=w.heartbeat_s, after_s=w.recovery_after_s,
                              recover=DBOS._recover_pending_workflows, report=report)
        heartbeat.start()
        try:
            (stop or threading.Event()).wait()
        finally:
            heartbeat.stop()
    finally:
        DBOS.destroy(workflow_completion_timeout_sec=int(w.shutdown_grace_s))
        _worker.clear()
