"""``report``: renders the spec's report (or its terminated report), redacted, and writes it."""

from __future__ import annotations

import re
from typing import Any

from langgraph.runtime import Runtime

from chainproof._private_files import private_dir
from chainproof._terminal import for_markdown
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.state import ChainState
from chainproof.graphs.view import ChainView


def report(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Write ``reports_dir/RUN_ID.md`` and the spec's charts as ``reports_dir/RUN_ID/NAME.svg``
    (unless ``write_reports`` is off); the step row records each file's path, SHA-256 and length.
    The spec renders the report from a view of the state whose every string is HTML-escaped and
    stripped of control characters (:func:`chainproof._terminal.for_markdown`)."""
    ctx = runtime.context
    with ctx.recorder(state, "report", "report", "Write the report") as rec:
        view = ChainView(for_markdown(state))  # what models, tools and people wrote reads as text
        terminated = bool(state.get("termination"))
        text = ctx.spec.render_terminated(view) if terminated else ctx.spec.render_report(view)
        text = ctx.audit.redactor(text)
        path = ctx.reports_dir / f"{state['run_id']}.md"
        # charts from the raw state: the plotting library escapes the text it writes into SVG
        raw = ChainView(state)
        charts = {} if terminated else {name: ctx.audit.redactor(svg) for name, svg in ctx.spec.report_charts(raw).items()}
        bad = [name for name in charts if not re.fullmatch(r"[a-z0-9_\-]{1,40}", name)]
        if bad:
            raise ValueError(f"report_charts: chart name {bad[0]!r} is not lower-case letters, digits, '_' or '-'")
        alerts = [] if terminated else ctx.spec.alerts(raw)
        for alert in alerts:
            if not (isinstance(alert, dict) and {"level", "subject", "message"} <= set(alert)):
                raise ValueError(f"alerts: expected objects with level, subject and message, got {alert!r}")
        if ctx.write_reports:
            private_dir(ctx.reports_dir)  # 0700 when created here (chainproof/_private_files.py)
            path.write_text(text, encoding="utf-8")
            if charts:
                (ctx.reports_dir / state["run_id"]).mkdir(exist_ok=True)
            for name, svg in charts.items():
                (ctx.reports_dir / state["run_id"] / f"{name}.svg").write_text(svg, encoding="utf-8")
        rec.output = {"path": str(path), "sha256": sha256_hex(text), "chars": len(text),
                      **({"charts": {name: {"path": str(ctx.reports_dir / state["run_id"] / f"{name}.svg"),
                                            "sha256": sha256_hex(svg), "chars": len(svg)}
                                     for name, svg in charts.items()}} if charts else {}),
                      **({"alerts": alerts} if alerts else {})}
    return {"report_path": str(path), "step": rec.step_no}
