"""Graphs and runs: list graphs, start, list, read (trace, one step, live events), verify,
replay, export, costs, endpoint SLA, resume, fork. Each route mirrors the CLI command of the same name."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, Field

from chainproof._live import MAX_SEQ
from chainproof._start import check_input_paths, check_person, located_dossiers, start_budget
from chainproof.checkpoints.accounts import Principal
from chainproof.errors import InputError, NotAuthenticated, NotPermitted, RunNotFound
from chainproof.web import _json, _sse
from chainproof.web._security import NAME_MAX_CHARS, principal, role, sees

router = APIRouter(prefix="/api", tags=["runs"])
READERS = ("analyst", "approver", "auditor")
Reader = Annotated[Principal, Depends(role(*READERS))]
Analyst = Annotated[Principal, Depends(role("analyst"))]


class StartRun(BaseModel):
    """A run to start (as ``chainproof run``): inputs are checked against the graph's input model."""

    graph: str = Field(max_length=NAME_MAX_CHARS)
    inputs: dict[str, Any] = Field(default_factory=dict)
    department: str | None = Field(default=None, max_length=NAME_MAX_CHARS, description="default: the analyst's department")
    effort: Literal["low", "medium", "high"] | None = None
    max_steps: int | None = Field(default=None, gt=0, description="plan steps")
    review_every: int | None = Field(default=None, gt=0)
    budget_usd: float | None = Field(default=None, gt=0, description="USD")


class ResumeRun(BaseModel):
    max_steps: int | None = Field(default=None, gt=0)
    budget_usd: float | None = Field(default=None, gt=0)


class ForkRun(BaseModel):
    at_step: int = Field(ge=0)


def visible_run(request: Request, run_id: str, who: Principal) -> Any:
    """The run header, or ``RunNotFound`` — also for a run ``who`` may not see, so its existence
    does not leak."""
    run = request.app.state.reader.get_run(run_id)
    if run is None or not sees(who, run, request.app.state.settings.auth.analysts_see_all_runs):
        raise RunNotFound(f"run_id: no run {run_id!r} you may see")
    return run


def graph_infos() -> list[dict[str, Any]]:
    """Each registered graph: name, source, load error, description and input JSON schema (None:
    free-form inputs). Shared by the API and the new-run page."""
    from chainproof.graphs.registry import list_graphs

    out = []
    for g in list_graphs():
        model = getattr(g.spec, "inputs_model", None) if g.spec is not None else None
        out.append({"name": g.name, "source": g.source, "error": g.error,
                    "description": (type(g.spec).__doc__ or "").strip() if g.spec is not None else None,
                    "input_schema": model.model_json_schema() if model is not None else None})
    return out


@router.get("/graphs", summary="Graphs and their input schemas")
def graphs(who: Annotated[Principal, Depends(principal)]) -> list[dict[str, Any]]:
    return graph_infos()


def start_run(state: Any, who: Principal, body: StartRun) -> str:
    """Check ``body`` (department allowed, graph known, the files and folders its inputs name
    inside the allowed folders (``web.input_dirs``), inputs valid: ``InputError`` naming the
    field) and start the run in the background as ``who``; returns its run id. Shared by the API
    and the new-run page."""
    from chainproof.graphs.registry import get_spec

    department = body.department or who.department
    if department != who.department and not state.settings.auth.analysts_see_all_runs:
        raise NotPermitted(f"department: {who.username} starts runs for {who.department!r} only, not {department!r}")
    spec = get_spec(body.graph)  # GraphNotFound: 404
    settings = state.settings
    roots = settings.web.input_roots(settings.home)
    check_input_paths(spec, {k: v for k, v in body.inputs.items() if not isinstance(v, str)}, roots)  # types first
    inputs = located_dossiers(spec, body.inputs, settings.home, local=False)  # a ticker or a name: its folder
    try:
        check_input_paths(spec, inputs, roots)  # before the graph opens any
    except InputError as exc:
        raise InputError(_no_server_paths(str(exc), body.inputs, inputs, roots)) from None
    try:  # checked here so bad input is a 422 now, not a failed job later
        spec.validate_inputs(dict(inputs))
    except ValueError as exc:
        raise InputError(_no_server_paths(str(exc).replace("\n", " "), body.inputs, inputs, roots)) from None
    start_budget(spec, {"max_steps": body.max_steps, "review_every": body.review_every, "max_cost_usd": body.budget_usd})
    check_person(who.username, body.effort)
    # recorded now (the run id answered with exists for every later request), advanced in the background
    run_id = state.engine.start(
        body.graph, inputs, started_by=who.username, department=department, effort=body.effort,
        max_steps=body.max_steps, review_every=body.review_every, budget_usd=body.budget_usd, wait=False).run_id
    state.runner.submit(run_id, "start", lambda: state.engine.advance(run_id))
    return run_id


def _no_server_paths(message: str, given: dict[str, Any], located: dict[str, Any], roots: list[Any]) -> str:
    """``message`` (a graph's refusal) without the server's paths: a dossier folder found for a
    name a client gave (and its real path) is shown as that name, and each input folder (as
    configured and as resolved) as ``<input folder>``."""
    from pathlib import Path

    for key, value in located.items():
        if isinstance(value, str) and value != given.get(key):
            for form in sorted({value, str(Path(value).resolve())}, key=len, reverse=True):
                message = message.replace(form, str(given.get(key)))
    for root in roots:
        for form in sorted({str(root), str(Path(root).resolve())}, key=len, reverse=True):
            message = message.replace(form, "<input folder>")
    return message


@router.post("/runs", status_code=202, summary="Start a run (advanced in the background)")
def start(body: StartRun, request: Request, who: Analyst) -> dict[str, Any]:
    run_id = start_run(request.app.state, who, body)
    return {"run_id": run_id, "events": f"/api/runs/{run_id}/events"}


def list_visible(state: Any, who: Principal, *, graph: str | None = None, status: str | None = None,
                 department: str | None = None, started_by: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Run summaries ``who`` may see, newest first, matching every filter given (None: any);
    at most ``limit``. Shared by the API and the runs page."""
    out = []
    for run, st, _ in state.reader.list_runs(limit=max(limit * 4, 200)):
        if not sees(who, run, state.settings.auth.analysts_see_all_runs):
            continue
        if (graph and run.graph != graph) or (status and st != status) or (department and run.department != department) \
                or (started_by and run.started_by != started_by):
            continue
        out.append(_json.run_summary(run, st))
    return out[:limit]


@router.get("/runs", summary="Runs, newest first, with filters")
def runs(request: Request, who: Reader, graph: str | None = None, status: str | None = None,
         department: str | None = None, started_by: str | None = None,
         limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict[str, Any]]:
    return list_visible(request.app.state, who, graph=graph, status=status, department=department,
                        started_by=started_by, limit=limit)


@router.get("/runs/{run_id}", summary="One run: header, status, totals, background job")
def run(run_id: str, request: Request, who: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
    state = request.app.state
    job = state.runner.jobs.get(run_id)
    header = state.reader.get_run(run_id)
    if header is None and job is not None and job.what == "start":  # not recorded yet, or refused before
        return {"run_id": run_id, "status": "failed" if job.error else "starting", "error": job.error}
    from chainproof.checkpoints.export import totals

    header = visible_run(request, run_id, who)
    out = _json.run_summary(header, state.reader.run_status(run_id))
    out["totals"] = _json.jsonable(totals(state.reader.records(run_id)))
    out["job_error"] = job.error if job is not None else None
    return out


@router.get("/runs/{run_id}/trace", summary="Every audit record of a run, in seq order")
def trace(run_id: str, request: Request, who: Reader) -> dict[str, Any]:
    header = visible_run(request, run_id, who)
    reader = request.app.state.reader
    return {"run": _json.run_summary(header, reader.run_status(run_id)),
            "records": [_json.record(r) for r in reader.records(run_id)]}


@router.get("/runs/{run_id}/steps/{step_no}", summary="One step in full: its model and tool calls")
def step(run_id: str, step_no: int, request: Request, who: Reader) -> dict[str, Any]:
    visible_run(request, run_id, who)
    found = [r for r in request.app.state.reader.records(run_id) if getattr(r, "step_no", None) == step_no]
    if not any(r.__tablename__ == "steps" for r in found):
        raise RunNotFound(f"step_no: run {run_id} has no step {step_no}")
    return {"run_id": run_id, "step_no": step_no, "records": [_json.record(r) for r in found]}


def _visible(run_id: str, request: Request, who: Reader) -> Any:
    """``visible_run`` as a dependency: checked before a stream's response starts (a refusal
    raised inside the stream would come after its 200), and before a write's body is validated
    (a run one may not see is 404 whatever the body)."""
    return visible_run(request, run_id, who)


@router.get("/runs/{run_id}/events", response_class=EventSourceResponse, summary="Live events (SSE; id = audit seq)")
async def events(run_id: str, request: Request, _run: Annotated[Any, Depends(_visible)],
                 last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, le=MAX_SEQ)] = None,
                 after: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description="resume after this seq when no Last-Event-ID "
                                                                     "is sent (a page reopening its stream)")] = None):
    start_seq = last_event_id if last_event_id is not None else (after or 0)
    async for event in _sse.stream(request.app.state.reader, run_id, start_seq, _connected(request),
                                   _still_allowed(request, run_id)):
        yield event


def _still_allowed(request: Request, run_id: str) -> Any:
    """Whether the stream's credentials still hold and still see the run (checked again while it
    streams: a revoked token or session, a disabled account or a lost role ends it)."""
    def check() -> bool:
        try:
            visible_run(request, run_id, role(*READERS)(principal(request)))
        except (NotAuthenticated, NotPermitted, RunNotFound):
            return False
        return True

    return check


def _connected(request: Request) -> Any:
    async def check() -> bool:
        return not await request.is_disconnected()

    return check


@router.get("/runs/{run_id}/verify", summary="Recompute the run's hash chain")
def verify(run_id: str, request: Request, who: Reader) -> dict[str, Any]:
    from chainproof.checkpoints.verify import verify_run

    visible_run(request, run_id, who)
    return _json.jsonable(verify_run(request.app.state.reader, run_id).as_dict())


@router.get("/runs/{run_id}/replay", summary="Replay from the record (no model call, nothing written)")
def replay(run_id: str, request: Request, who: Reader) -> dict[str, Any]:
    visible_run(request, run_id, who)
    report = request.app.state.engine.replay(run_id)
    first = report.first_divergence
    return _json.jsonable({"run_id": run_id, "outcome": report.outcome, "duration_s": report.duration_s,
                           "model_calls_served": report.model_calls_served, "tool_calls_served": report.tool_calls_served,
                           "first_divergence": {"step_no": first.step_no, "differences": first.differences} if first else None,
                           "steps": [{"step_no": s.step_no, "node": s.node, "status": s.status} for s in report.steps]})


@router.get("/runs/{run_id}/export", summary="The run for auditors: JSON, or one self-contained HTML page")
def export(run_id: str, request: Request, who: Reader, format: Literal["json", "html"] = "json") -> Any:
    from chainproof.checkpoints.export import export_data

    visible_run(request, run_id, who)
    data = export_data(request.app.state.reader, run_id)
    if format == "html":
        from chainproof.cli._html import export_html

        return HTMLResponse(export_html(data))
    return JSONResponse(data)


@router.get("/costs", summary="Tokens and USD by node and effort, for a run or a department's month")
def costs(request: Request, who: Reader, run_id: str | None = None, department: str | None = None,
          month: str | None = None) -> dict[str, Any]:
    from chainproof.graphs.costs import cost_report

    state = request.app.state
    if (run_id is None) == (department is None or month is None):
        raise InputError("costs: give run_id, or department and month (YYYY-MM), not both")
    if run_id is not None:
        visible_run(request, run_id, who)
    elif not (who.has("auditor", "approver") or state.settings.auth.analysts_see_all_runs or department == who.department):
        raise NotPermitted(f"department: {who.username} may see the costs of {who.department!r} only")
    rows, total = cost_report(state.reader, run_id=run_id, department=department, month=month)

    def row(r: Any) -> dict[str, Any]:
        return {k: getattr(r, k) for k in ("node", "effort", "calls", "cache_hits", "input_tokens", "cached_input_tokens",
                                            "output_tokens", "reasoning_tokens", "saved_tokens")} | {"usd": r.usd}

    return {"rows": [row(r) for r in rows], "total": row(total),
            "budget_usd": state.settings.budgets.departments.get(department) if department else None}


@router.get("/sla", summary="Model endpoints' availability, p50/p95 response time and 429 share")
def sla(who: Reader, request: Request,
        since: Annotated[str, Query(description="the window ending now: 24h, 90m, 7d, 2w")] = "24h") -> dict[str, Any]:
    """As ``chainproof sla --json``: per endpoint over the window and per endpoint and UTC day
    (definitions: ``chainproof.graphs.sla``). Endpoint figures hold no run content, so every
    reading role sees all endpoints."""
    from chainproof.graphs.sla import sla_report

    return sla_report(request.app.state.reader, since).as_dict()


@router.post("/runs/{run_id}/resume", status_code=202, summary="Continue a run (step or cost budget, failed)")
def resume(run_id: str, body: ResumeRun, request: Request, who: Analyst,
           _run: Annotated[Any, Depends(_visible)]) -> dict[str, Any]:
    state = request.app.state
    state.engine.check_resumable(run_id, max_steps=body.max_steps, budget_usd=body.budget_usd)  # 409 / 422 now
    state.runner.submit(run_id, "resume", lambda: state.engine.resume(
        run_id, max_steps=body.max_steps, budget_usd=body.budget_usd, by=who.username))
    return {"run_id": run_id, "events": f"/api/runs/{run_id}/events"}


@router.post("/runs/{run_id}/fork", status_code=202,
             summary="A new run from the checkpoint at or before a step (run in the background)")
def fork(run_id: str, body: ForkRun, request: Request, who: Analyst,
         _run: Annotated[Any, Depends(_visible)]) -> dict[str, Any]:
    """The fork is recorded now (a bad ``at_step`` is refused before anything is recorded) and
    answered at once; a background worker runs it while its events stream."""
    state = request.app.state
    try:
        new = state.engine.fork(run_id, body.at_step, started_by=who.username, wait=False)
    except InputError as exc:  # the engine names the CLI's --at
        raise InputError(str(exc).replace("--at:", "at_step:").replace("--at", "at_step")) from None
    state.runner.submit(new.run_id, "fork", lambda: state.engine.advance(new.run_id))
    return {"run_id": new.run_id, "parent_run_id": run_id, "status": new.status,
            "events": f"/api/runs/{new.run_id}/events"}


__all__ = ["StartRun", "graph_infos", "list_visible", "router", "start_run", "visible_run"]
