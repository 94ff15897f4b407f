"""``report``: renders the spec's report (or its terminated report), redacted, and writes it."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from chainproof._terminal import for_markdown
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.graphs._engine.context import ChainContext
from chainproof.graphs._engine.state import ChainState
from chainproof.graphs.view import ChainView


def report(state: ChainState, runtime: Runtime[ChainContext]) -> dict[str, Any]:
    """Write ``reports_dir/RUN_ID.md`` (unless ``write_reports`` is off); the step row records its
    path, SHA-256 and length. The spec renders it from a view of the state whose every string is
    HTML-escaped and stripped of control characters (:func:`chainproof._terminal.for_markdown`)."""
    ctx = runtime.context
    with ctx.recorder(state, "report", "report", "Write the report") as rec:
        view = ChainView(for_markdown(state))  # what models, tools and people wrote reads as text
        text = ctx.spec.render_terminated(view) if state.get("termination") else ctx.spec.render_report(view)
        text = ctx.audit.redactor(text)
        path = ctx.reports_dir / f"{state['run_id']}.md"
        if ctx.write_reports:
            ctx.reports_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        rec.output = {"path": str(path), "sha256": sha256_hex(text), "chars": len(text)}
    return {"report_path": str(path), "step": rec.step_no}
