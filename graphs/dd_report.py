"""The due-diligence Markdown report, rendered from the final graph state (a :class:`ChainView`).

Every number in the report is read from a tool result recorded in the run (the model's text
appears only as labelled interpretation), so the report can be checked against the audit trail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chainproof.graphs.view import ChainView


def _plain(text: Any) -> str:
    """A person's text (name, comment) as literal Markdown: Markdown's emphasis and table
    characters are backslash-escaped (HTML is already escaped in every string of the view the
    engine renders the report from, :func:`chainproof._terminal.for_markdown`)."""
    return "".join("\\" + c if c in "*_`[]|" else c for c in str(text))


#: what every table and sentence of the report prints for a value the run does not hold
_MISSING = "not available"


def _pct(v: Any, digits: int = 1) -> str:
    return _MISSING if v is None else f"{v * 100:.{digits}f} %"


def _num(v: Any, digits: int = 2) -> str:
    if v is None:
        return _MISSING
    if isinstance(v, (int, float)) and abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _data(state: ChainView, key: str) -> dict[str, Any]:
    return state.data(key)


def _interpretation(state: ChainView, key: str) -> str:
    found = state.finding(key)
    summary = found.summary if found is not None else None
    return f"\n*Model's interpretation:* {summary}\n" if summary else ""


def _when(decision: dict[str, Any]) -> str:
    return str(decision.get("decided_at") or "")[:19].replace("T", " ")


def _approval_line(state: ChainView) -> str:
    approval = state.approval or {}
    action = approval.get("action")
    comment = f" — “{_plain(approval['comment'])}”" if approval.get("comment") else ""
    if action == "approve":
        return f"**Approved** by **{_plain(approval['approver'])}** on {_when(approval)} UTC{comment}"
    if action == "reject":
        return f"**Rejected** by **{_plain(approval['approver'])}** on {_when(approval)} UTC{comment}. This recommendation is not endorsed."
    if action == "edit":
        return f"**Edited and approved** by **{_plain(approval['approver'])}** on {_when(approval)} UTC{comment}"
    return "**Not approved**: no human decision is recorded."


def _decisions(state: ChainView) -> str:
    """Every human decision of the run (all rounds), oldest first."""
    rows = [[str(d.get("round", 0) + 1), d.get("subject", "decision"), d["action"], _plain(d["approver"]), _when(d) + " UTC",
             _plain(d.get("comment") or "no comment").replace("\n", " "), d["request_id"][:12]]
            for d in state.approvals]
    if not rows:
        return ""
    return "\n".join(["## Approval decisions", "",
                      _table(["round", "subject", "decision", "approver", "time", "comment", "request"], rows), ""])


def _financials(state: ChainView) -> str:
    fin = _data(state, "financials")
    rows = [
        [str(y.get("fiscal_year")), _num(y.get("revenue")), _pct(y.get("revenue_growth")), _pct(y.get("operating_margin")),
         _pct(y.get("net_margin")),
         "not applicable" if "current_ratio" in y.get("not_applicable", []) else _num(y.get("current_ratio")),
         _num(y.get("debt_to_equity")), _num(y.get("interest_coverage"), 1), _num(y.get("free_cash_flow"))]
        for y in fin.get("years", [])
    ] or [["none"] + ["not available: no annual report before as_of in the dossier"] + ["not available"] * 7]
    out = ["## Financial health", "",
           _table(["FY", "revenue (USD m)", "growth", "op. margin", "net margin", "current ratio", "debt/equity",
                   "interest cover (x)", "FCF (USD m)"], rows)]
    if fin.get("revenue_cagr") is not None:
        out.append(f"\nRevenue CAGR FY{fin.get('cagr_from_year')}–FY{fin.get('cagr_to_year')}: {_pct(fin['revenue_cagr'])}.")
    for flag in fin.get("flags", []):
        out.append(f"- ⚠ {flag.get('message')}")
    out.append(_interpretation(state, "financials"))
    return "\n".join(out)


def _legal(state: ChainView) -> str:
    legal = _data(state, "legal")
    rows = []
    for i, m in enumerate(legal.get("matters", []), 1):
        amounts = ", ".join(_num(a) for a in (m.get("amounts_usd_millions") or [])[:3]) or "none stated"
        rows.append([str(i), _plain(str(m.get("title", ""))[:90]), _num(m.get("score"), 1), amounts,
                     str(m.get("cite") or m.get("section", ""))])
    rows = rows or [["none", "no legal or regulatory matter found in the filing texts", "not applicable",
                     "not applicable", "not applicable"]]
    out = ["## Legal and risk factors", "", _table(["#", "matter", "materiality score", "amounts (USD m)", "source"], rows)]
    readings = legal.get("readings") or []
    held = [r for r in readings if r.get("holds")]
    if readings:
        out += ["", f"The model read the {sum(1 for f in state.findings if f.step_id.startswith('legal_read_'))} "
                f"chunks of paragraphs retrieved for legal exposure; {len(held)} of its {len(readings)} citations hold "
                "(the cited paragraph exists and contains the quoted words):", ""]
        out += [f"- [{r['cite']}] {_plain(r['note'])}: “{_plain(r['quote'])}”" for r in held[:8]]
        out += [f"- not used: [{r['cite']}] {r['problem']}" for r in readings if not r.get("holds")][:4]
    out.append(_interpretation(state, "legal"))
    return "\n".join(out)


def _sentiment(state: ChainView) -> str:
    s = _data(state, "sentiment")
    line = (f"{s.get('n_scored', _MISSING)} headlines scored: {s.get('n_bullish')} bullish, {s.get('n_bearish')} bearish, "
            f"{s.get('n_neutral')} neutral; net score {_num(s.get('net_score'))} (−1 all bearish … +1 all bullish).")
    notes = "".join(f"\n- {n}" for n in s.get("notes", []))
    return "\n".join(["## News sentiment", "", line + notes, _interpretation(state, "sentiment")])


def _peers(state: ChainView) -> str:
    p = _data(state, "peers")
    rows = [[m.get("label") or m.get("multiple"), _num(m.get("target")), _num(m.get("peer_median")), str(m.get("peer_count")),
             _num(m.get("target_percentile"), 0), _pct(m.get("premium_vs_median"))] for m in p.get("multiples", [])]
    head = f"Peers: {', '.join(p.get('peers', []))} (snapshot {p.get('snapshot_date', _MISSING)})."
    return "\n".join(["## Industry comparison", "", head, "",
                      _table(["multiple", "target", "peer median", "peers", "percentile", "vs median"], rows),
                      _interpretation(state, "peers")])


def _risk(state: ChainView) -> str:
    r = _data(state, "market_risk")
    rows = [
        ["1-day historical VaR 95 %", _pct(r.get("hist_var95_1d"), 2)],
        ["1-day historical CVaR 95 %", _pct(r.get("hist_cvar95_1d"), 2)],
        ["annualised volatility", _pct(r.get("ann_volatility"))],
        ["Sharpe ratio", _num(r.get("sharpe_ratio"))],
        ["beta vs S&P 500", _num(r.get("beta_vs_benchmark"))],
        ["maximum drawdown", _pct(r.get("max_drawdown"))],
        ["total price return", _pct(r.get("total_price_return"))],
    ]
    window = f"Window {r.get('window_start')} → {r.get('window_end')}, {r.get('n_returns')} daily returns; risk-free rate {_pct(r.get('rf_annual'), 2)} a year."
    return "\n".join(["## Market risk", "", window, "", _table(["metric", "value"], rows), _interpretation(state, "market_risk")])


def _scorecard(state: ChainView) -> str:
    c = _data(state, "scorecard")
    rows = [[str(f.get("note") or f.get("code")), _num(f.get("points"), 1), str(f.get("evidence_key", ""))]
            for f in c.get("factors", [])]
    head = f"Score {_num(c.get('total_score'), 1)} / 100 → scorecard suggests **{c.get('recommendation', _MISSING)}**."
    return "\n".join(["## Quantitative risk scorecard", "", head, "", _table(["factor", "points", "evidence"], rows),
                      _interpretation(state, "scorecard")])


def _charts(state: ChainView) -> str:
    """Links to the charts written beside the report (``RUN_ID/NAME.svg``)."""
    from chainproof.graphs.dd_charts import CHART_TITLES, chart_names, charts_available

    if not charts_available():
        return "## Charts\n\nNot drawn: matplotlib is not installed (`pip install \"chainproof[charts]\"`).\n"
    links = [f"![{CHART_TITLES[n]}]({state.run_id}/{n}.svg)" for n in chart_names(state)]
    return "\n\n".join(["## Charts", *links]) + "\n" if links else ""


def _cross_examination(state: ChainView) -> str:
    """The debate before the recommendation (``--debate``): each argument by id, then the verdict."""
    d = _data(state, "cross_examination")
    if not d:
        return ""
    verdict = d.get("verdict") or {}
    out = ["## Cross-examination", "", f"Question: {d.get('question')}", "",
           _table(["argument", "position", "text"], [[aid, str(a.get("position")), _plain(a.get("text"))]
                                                      for aid, a in (d.get("arguments") or {}).items()]), "",
           f"**Judge's verdict: {verdict.get('winner')}.** {verdict.get('summary', '')}", ""]
    out += [f"- {r['text']} _(cites: {', '.join(r['cites'])})_" for r in verdict.get("reasons", [])]
    return "\n".join(out) + "\n"


def _decided_at(state: ChainView) -> str:
    # the approval's time, not the rendering time: the report is a function of the recorded run,
    # so a replay renders the same bytes
    decided = (state.approval or {}).get("decided_at")
    if not decided:
        return ""
    at = datetime.fromisoformat(str(decided).replace("Z", "+00:00")).astimezone(UTC)
    return f" · decided {at:%Y-%m-%d %H:%M} UTC"


def render_report(state: ChainView) -> str:
    """Markdown report of a finished due-diligence state (findings, decision, approval)."""
    inputs = state.inputs
    decision = state.decision or {}
    lines = [
        f"# Due diligence: {inputs['company_name']} ({inputs['company']}) as of {inputs['as_of']}",
        "",
        f"**Recommendation: {str(decision.get('decision', _MISSING)).upper().replace('_', ' ')}** "
        f"(confidence {_num(decision.get('confidence'))})",
        "",
        _approval_line(state),
        "",
        f"Run `{state.run_id}`{_decided_at(state)} · trace: `chainproof show {state.run_id}` · "
        f"check it: `chainproof verify {state.run_id}`",
        "",
    ]
    if state.decision_fallback:
        lines += ["> The model gave no valid recommendation after its attempts; this is the quantitative scorecard's "
                  "recommendation (recorded as a fallback in the audit trail).", ""]
    if state.edited_by:
        lines += [f"> The recommendation was edited by {state.edited_by} at approval.", ""]
    lines += ["## Summary", "", str(decision.get("summary", "")), "", "## Reasons", ""]
    for reason in decision.get("reasons", []):
        lines.append(f"- {reason['text']} _(evidence: {', '.join(reason['evidence'])})_")
    lines += ["", _decisions(state), _charts(state), _financials(state), _legal(state), _sentiment(state), _peers(state), _risk(state), _scorecard(state),
              _cross_examination(state), "## Provenance", "",
              f"Dossier: `{inputs['dossier']}`. Every figure in the tables was computed by Chainproof's tools from the "
              "dossier. The paragraphs marked *Model's interpretation* and the recommendation's text are written by the "
              "model and may misread a figure: the tables are authoritative. The full trace (prompts, outputs, tool "
              "calls, tokens) is in the audit store (`chainproof show`, `chainproof verify`)."]
    return "\n".join(lines) + "\n"
