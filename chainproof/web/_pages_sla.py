"""The endpoint SLA page: availability, p50/p95 response time, 429 share and failovers per model
endpoint over a window, and per endpoint and UTC day, with bar charts drawn as SVG on the server
(figures and definitions: :mod:`chainproof.graphs.sla`; the same as ``chainproof sla``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from chainproof.checkpoints.accounts import Principal
from chainproof.web._pages import need, render, viewer
from chainproof.web._pages_runs import READERS, bars

router = APIRouter(include_in_schema=False)
WINDOWS = ("1h", "24h", "7d", "30d")


@router.get("/sla")
def sla_page(request: Request, who: Annotated[Principal, Depends(viewer)], since: str = "24h") -> HTMLResponse:
    from chainproof.graphs.sla import sla_report

    need(who, *READERS)
    report = sla_report(request.app.state.reader, since)  # InputError naming `since`: the error page
    rows = [e.as_dict() for e in report.endpoints]
    charts = {
        "availability": bars([(r["endpoint"], round(100 * r["availability"], 1) if r["availability"] is not None else 0)
                              for r in rows]),
        "p95": bars([(r["endpoint"], r["p95_s"] or 0) for r in rows]),
        "429": bars([(r["endpoint"], round(100 * r["rate_limited_share"], 1) if r["rate_limited_share"] is not None else 0)
                     for r in rows]),
    }
    return render(request, "sla.html", who=who, since=since, windows=WINDOWS, rows=rows, charts=charts,
                  days=[d.as_dict() for d in report.days], short_circuited=report.short_circuited)


__all__ = ["router"]
