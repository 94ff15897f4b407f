"""The analysts' pages: the runs list with filters, a new run (a form generated from the graph's
input schema), the live run (a timeline fed by the run's SSE stream, ``static/live.js``) and
costs (by node, effort, department and month, with bar charts drawn as SVG on the server). The
live page also shows the report's charts, each served by ``/runs/ID/charts/NAME.svg``."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from chainproof.checkpoints.accounts import Principal
from chainproof.errors import InputError, NotPermitted
from chainproof.web._forms import form_fields, read_form
from chainproof.web._pages import Form, need, poster, render, viewer
from chainproof.web._routes_runs import StartRun, graph_infos, list_visible, start_run, visible_run
from chainproof.web._security import _line as one_line

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(viewer)]
READERS = ("analyst", "approver", "auditor")
STATUSES = ("started", "paused", "resumed", "completed", "failed")
EFFORTS = ("low", "medium", "high")
START_WAIT_S = 5.0
"""How long the live page waits for a run started moments ago to be recorded, in seconds."""


@router.get("/runs")
def runs_page(request: Request, who: Viewer, graph: str = "", status: str = "", department: str = "",
              started_by: str = "") -> HTMLResponse:
    need(who, *READERS)
    filters = {"graph": graph, "status": status, "department": department, "started_by": started_by}
    rows = list_visible(request.app.state, who, limit=200, **{k: v or None for k, v in filters.items()})
    return render(request, "runs.html", who=who, runs=rows, filters=filters, statuses=STATUSES,
                  graphs=[g["name"] for g in graph_infos() if g["error"] is None])


def _new_run_form(request: Request, who: Principal, graph: str, values: dict[str, str], error: str | None,
                  status: int = 200) -> HTMLResponse:
    infos = {g["name"]: g for g in graph_infos() if g["error"] is None}
    info = infos.get(graph)
    schema = info["input_schema"] if info else None
    fields = form_fields(schema, values) if schema else []
    return render(request, "new_run.html", status, who, graphs=list(infos.values()), graph=info, fields=fields,
                  values=values, error=error, efforts=EFFORTS,
                  departments_open=request.app.state.settings.auth.analysts_see_all_runs)


@router.get("/runs/new")
def new_run_page(request: Request, who: Viewer, graph: str = "") -> HTMLResponse:
    need(who, "analyst")
    return _new_run_form(request, who, graph, {}, None)


def _number(form: dict[str, str], name: str, kind: type) -> Any:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"{name}: expected a number, got {text!r}") from None


@router.post("/runs/new")
def new_run(request: Request, form: Form) -> Response:
    """Start a run from the form: inputs read by the graph's schema (or a JSON object for a graph
    without one), checked by the graph before anything runs; then to the live page."""
    who = need(poster(request, form), "analyst")
    graph = form.get("graph", "")
    info = next((g for g in graph_infos() if g["name"] == graph and g["error"] is None), None)
    try:
        if info is None:
            raise InputError(f"graph: no graph {graph!r}")
        if info["input_schema"] is not None:
            inputs = read_form(info["input_schema"], {k[3:]: v for k, v in form.items() if k.startswith("in_")})
        else:
            inputs = json.loads(form.get("inputs_json") or "{}")
            if not isinstance(inputs, dict):
                raise InputError("inputs: expected a JSON object")
        body = StartRun.model_validate({"graph": graph, "inputs": inputs, "department": form.get("department") or None,
                                        "effort": form.get("effort") or None, "max_steps": _number(form, "max_steps", int),
                                        "budget_usd": _number(form, "budget_usd", float)})
        run_id = start_run(request.app.state, who, body)
    except (InputError, NotPermitted, ValidationError, json.JSONDecodeError) as exc:
        detail = one_line(exc)
        shown = {k[3:]: v for k, v in form.items() if k.startswith("in_")}
        return _new_run_form(request, who, graph, shown, detail, 403 if isinstance(exc, NotPermitted) else 422)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.get("/runs/{run_id}")
def live_page(run_id: str, request: Request, who: Viewer) -> HTMLResponse:
    """The run's header and a timeline that ``live.js`` fills from ``/api/runs/ID/events``."""
    need(who, *READERS)
    state = request.app.state
    job = state.runner.jobs.get(run_id)
    header = state.reader.get_run(run_id)
    deadline = time.monotonic() + START_WAIT_S
    while header is None and job is not None and job.what == "start" and not job.done and time.monotonic() < deadline:
        time.sleep(0.05)  # a run just started: its header is written within moments
        header = state.reader.get_run(run_id)
    if header is None and job is not None and job.what == "start" and job.error is None:
        run = {"run_id": run_id, "graph": "", "goal": "starting…", "department": who.department, "started_by": who.username}
        return render(request, "live.html", who=who, run=run, run_status="starting", job_error=None)
    header = visible_run(request, run_id, who)
    return render(request, "live.html", who=who, run=header.as_dict(), run_status=state.reader.run_status(run_id),
                  job_error=job.error if job is not None else None, charts=_charts(state, run_id))


CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
"""A chart's own CSP: the SVG's inline styles only, no script, no fetch, a sandbox, even when the
image is opened on its own (an ``<img>`` never runs an SVG's scripts; a direct visit could)."""


def _charts(state: Any, run_id: str) -> list[dict[str, Any]]:
    """The report's charts of the run (the same files the HTML export embeds, checked against
    their recorded SHA-256): name, title, and the problem when one cannot be shown."""
    from chainproof.checkpoints.export import recorded_charts
    from chainproof.graphs.dd_charts import CHART_TITLES

    return [{"name": c.name, "title": CHART_TITLES.get(c.name, c.name), "problem": c.problem}
            for c in recorded_charts(state.reader.records_of(run_id, "steps"))]


@router.get("/runs/{run_id}/charts/{name}.svg")
def chart(run_id: str, name: str, request: Request, who: Viewer) -> Response:
    """One chart of the run's report as ``image/svg+xml`` (:data:`CHART_CSP`); 404 for a chart the
    run did not record or whose file is missing or changed since."""
    from chainproof.checkpoints.export import recorded_charts
    from chainproof.errors import RunNotFound

    need(who, *READERS)
    visible_run(request, run_id, who)
    found = next((c for c in recorded_charts(request.app.state.reader.records_of(run_id, "steps")) if c.name == name), None)
    if found is None or found.svg is None:
        raise RunNotFound(f"name: run {run_id} has no chart {name!r} that matches its record")
    return Response(found.svg, media_type="image/svg+xml",
                    headers={"Content-Security-Policy": CHART_CSP, "Cache-Control": "private, no-store"})


def bars(rows: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """Bar-chart rows: label, value and the bar's width in percent of the largest value."""
    top = max((v for _, v in rows), default=0) or 1
    return [{"label": label, "value": value, "pct": round(100 * value / top, 1)} for label, value in rows]


def _group(calls: list[Any], key: Any) -> list[dict[str, Any]]:
    from chainproof.graphs.costs import CostRow

    groups: dict[str, CostRow] = {}
    for call in calls:
        name = key(call) or "–"
        groups.setdefault(name, CostRow(name, "")).add(call)
    return [{"name": n, **r.as_dict()} for n, r in sorted(groups.items())]


@router.get("/costs")
def costs_page(request: Request, who: Viewer, month: str = "", department: str = "") -> HTMLResponse:
    """Tokens and USD of the model calls ``who`` may see (analysts: their department unless
    ``auth.analysts_see_all_runs``), optionally of one month (YYYY-MM) and department."""
    need(who, *READERS)
    state = request.app.state
    everything = who.has("auditor", "approver") or state.settings.auth.analysts_see_all_runs
    if department and not everything and department != who.department:
        raise NotPermitted(f"department: {who.username} may see the costs of {who.department!r} only")
    scope = department or (None if everything else who.department)
    try:
        calls = state.reader.model_calls_of(department=scope, month=month or None)
    except ValueError as exc:
        raise InputError(f"month: {exc}") from None
    if scope is None and not everything:
        calls = []
    departments = {r.run_id: r.department for r, _, _ in state.reader.list_runs(limit=100_000)}
    views = {"node": _group(calls, lambda c: c.node), "effort": _group(calls, lambda c: c.effort),
             "department": _group(calls, lambda c: departments.get(c.run_id)),
             "month": _group(calls, lambda c: c.created_at.strftime("%Y-%m"))}
    charts = {k: bars([(r["name"], r["total_tokens"]) for r in rows]) for k, rows in views.items()}
    return render(request, "costs.html", who=who, views=views, charts=charts, month=month, department=department)


__all__ = ["CHART_CSP", "bars", "router"]
