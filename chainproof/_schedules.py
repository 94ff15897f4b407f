"""Runs on a schedule: DBOS schedules in PostgreSQL that submit a graph's run on a cron.

``chainproof schedule add NAME --cron EXPR --graph GRAPH --input ...`` stores a DBOS schedule
(``DBOSClient.create_schedule``: a row in DBOS's system database, so every worker sees it, and
each worker's scheduler thread polls for new ones every ``workers.scheduler_polling_interval_s``).
At each cron time one worker's scheduler enqueues the workflow ``chainproof.scheduled_run`` with
the workflow id ``sched-NAME-TIME`` (DBOS: the others find it exists, so a time fires once), and
that workflow's one step submits the graph's run like ``chainproof submit`` does.

Cron: five fields (minute hour day-of-month month day-of-week) or six with seconds first, as
DBOS's scheduler reads them (``croniter``, ``second_at_beginning=True``); times are UTC unless
a time zone is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chainproof._start import absolute_inputs, located_dossiers, start_inputs
from chainproof.errors import InputError
from chainproof.workers import DBOS, check_queue, client

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chainproof.app import Chainproof
    from chainproof.settings import Settings

SCHEDULED_WORKFLOW = "chainproof.scheduled_run"
_FIELDS5 = ("minute", "hour", "day of month", "month", "day of week")


def check_cron(expr: str) -> str:
    """``expr`` normalised to single spaces. Raises ``InputError`` (exit 2) naming the field that
    is wrong: the number of fields, which one ``croniter`` cannot read, or the day-of-month and
    month fields when together they name no date (``0 6 31 2 *``: croniter finds no next time)."""
    from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]  # a dependency of dbos

    fields = expr.split()
    if len(fields) not in (5, 6):
        raise InputError(f"cron (--cron): expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
                         f"with seconds first, got {len(fields)} in {expr!r}")
    names = _FIELDS5 if len(fields) == 5 else ("second", *_FIELDS5)
    for i, (name, value) in enumerate(zip(names, fields)):
        probe = ["*"] * len(fields)
        probe[i] = value
        if not croniter.is_valid(" ".join(probe), second_at_beginning=len(fields) == 6):
            raise InputError(f"cron (--cron): the {name} field {value!r} is not valid in {expr!r}")
    normal = " ".join(fields)
    if not croniter.is_valid(normal, second_at_beginning=len(fields) == 6):
        raise InputError(f"cron (--cron): {expr!r} is not a valid schedule")
    try:  # as DBOS's scheduler asks for the next time (dbos/_scheduler.py): a date that never occurs fails there
        croniter(normal, datetime.now(UTC), second_at_beginning=True).get_next(datetime)
    except CroniterBadDateError:
        dom, month = fields[-3], fields[-2]
        raise InputError(f"cron (--cron): the day-of-month field {dom!r} and the month field {month!r} never "
                         f"meet (e.g. 31 February) in {expr!r}: the schedule would never fire") from None
    return normal


def add(app: Chainproof, name: str, cron: str, graph: str, inputs: dict[str, Any], *, queue: str | None = None,
        timezone: str | None = None) -> dict[str, Any]:
    """Store schedule ``name``: submit a run of ``graph`` with ``inputs`` at every ``cron`` time
    (UTC, or the IANA ``timezone``). The inputs are checked now (``spec.validate_inputs``), so a
    bad one fails here, not at 6 a.m. Path inputs are stored as absolute paths
    (:func:`chainproof._start.absolute_inputs`): each worker reads them from its own folder. Returns the stored schedule. Raises ``InputError`` for a
    bad name, cron, time zone or input, or a name already used; ``WorkersUnavailable`` without
    PostgreSQL."""
    from chainproof.graphs.registry import get_spec

    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise InputError(f"name: expected letters, digits, '-', '_' or '.', got {name!r}")
    cron = check_cron(cron)
    if timezone is not None:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(timezone)
        except Exception:
            raise InputError(f"timezone (--timezone): expected an IANA name such as Europe/London, got {timezone!r}") from None
    spec = get_spec(graph)
    inputs = absolute_inputs(spec, inputs)
    start_inputs(spec, located_dossiers(spec, inputs, app.settings.home))  # as submit checks them: exit 2 naming the field
    dbos = client(app.settings, "schedule add")
    if dbos.get_schedule(name) is not None:
        raise InputError(f"name: a schedule {name!r} exists; remove it first (chainproof schedule remove {name})")
    queue = check_queue(app.settings, app.settings.workers.queue if queue is None else queue, "queue (--queue)")
    context = {"schedule": name, "graph": graph, "inputs": inputs, "queue": queue}
    dbos.create_schedule(schedule_name=name, workflow_name=SCHEDULED_WORKFLOW, schedule=cron, context=context,
                         cron_timezone=timezone, queue_name=queue)
    return dict(dbos.get_schedule(name) or {})


def listing(settings: Settings) -> list[dict[str, Any]]:
    """Every stored schedule of Chainproof: ``name``, ``cron``, ``timezone``, ``graph``, ``inputs``,
    ``queue``, ``status`` (DBOS: ``ACTIVE`` / ``PAUSED``), ``last_fired_at`` (ISO time or None)."""
    out = []
    for s in client(settings, "schedule list").list_schedules(workflow_name=SCHEDULED_WORKFLOW):
        ctx = s.get("context") or {}
        out.append({"name": s["schedule_name"], "cron": s["schedule"], "timezone": s.get("cron_timezone"),
                    "graph": ctx.get("graph"), "inputs": ctx.get("inputs"), "queue": ctx.get("queue"),
                    "status": s.get("status"), "last_fired_at": s.get("last_fired_at")})
    return sorted(out, key=lambda s: s["name"])


def remove(settings: Settings, name: str) -> None:
    """Delete schedule ``name`` (runs it already submitted go on). Raises ``InputError`` naming the
    schedules that exist when there is none called ``name``."""
    dbos = client(settings, "schedule remove")
    if dbos.get_schedule(name) is None:
        known = ", ".join(s["name"] for s in listing(settings)) or "none"
        raise InputError(f"name: no schedule {name!r}; schedules: {known}")
    dbos.delete_schedule(name)


def _submit_scheduled(scheduled_at: str, context: dict[str, Any]) -> str:
    from chainproof import workers

    app = workers._worker["app"]
    result = app.submit(context["graph"], dict(context["inputs"]), queue=context.get("queue"),
                        started_by=f"schedule:{context.get('schedule')}")
    return result.run_id


def _scheduled_run(scheduled_at: datetime, context: dict[str, Any]) -> str:
    """The scheduled workflow: one step that submits the run (its id is the workflow's result;
    ``started_by`` is ``schedule:NAME``)."""
    return submit_scheduled(scheduled_at.isoformat(), context)


if DBOS is not None:
    submit_scheduled = DBOS.step(name="chainproof.submit_scheduled")(_submit_scheduled)
    scheduled_run = DBOS.workflow(name=SCHEDULED_WORKFLOW)(_scheduled_run)
