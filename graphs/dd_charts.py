"""The due-diligence report's charts: SVG drawn with matplotlib from the tool results recorded in the
run (a :class:`ChainView`), so a chart is a function of the audit record like the report's tables.

=================  ==========================================================================
chart (file name)  what it draws, from which finding's data
=================  ==========================================================================
``price``          the close and the S&P 500, both rebased to 100 at the window's start, with
                   the maximum drawdown's peak and trough marked (``market_risk.rebased``,
                   ``max_drawdown_peak`` / ``_trough``)
``financials``     revenue (bars, USD millions) and free cash flow by fiscal year, operating
                   and net margin on a second axis (``financials.years``); a value not
                   available has no bar, a series with none no legend entry
``peers``          each multiple (P/E, P/S, P/B, EV/EBITDA) of every peer and the target, the
                   target highlighted, the peer median marked (``peers.multiples``)
``legal``          the legal matters ranked by materiality score, with their citations
                   (``legal.matters``)
=================  ==========================================================================

A chart whose data the run does not hold (no fiscal year before as_of, no peer values) is left out.
matplotlib is imported only when rendering (``pip install "chainproof[charts]"``); without it
:func:`render_charts` returns nothing and the report says how to get the charts. The SVG is
deterministic (fixed ``svg.hashsalt``, no date): a replay renders the same bytes.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from chainproof.graphs.view import ChainView

__all__ = ["CHART_TITLES", "chart_names", "charts_available", "financial_bars", "render_charts"]

CHART_TITLES = {"price": "Price against the S&P 500, rebased to 100, with the maximum drawdown",
                "financials": "Revenue, margins and free cash flow by fiscal year",
                "peers": "Peer multiples, the target highlighted",
                "legal": "Legal matters ranked by materiality score"}
_TARGET, _PEER, _BENCH, _MARK = "#c0392b", "#95a5a6", "#2c3e50", "#e67e22"


def charts_available() -> bool:
    """Whether matplotlib is installed (the ``charts`` extra)."""
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def chart_names(view: ChainView) -> list[str]:
    """The charts the run's data can draw, in the report's order."""
    fin, peers, legal = view.data("financials"), view.data("peers"), view.data("legal")
    have = {"price": bool(view.data("market_risk").get("rebased")),
            "financials": any(y.get("revenue") is not None for y in fin.get("years", [])),
            "peers": any(m.get("peer_values") for m in peers.get("multiples", [])),
            "legal": bool(legal.get("matters"))}
    return [name for name in CHART_TITLES if have[name]]


def render_charts(view: ChainView) -> dict[str, str]:
    """``{name: SVG text}`` of :func:`chart_names` (empty without matplotlib)."""
    if not charts_available():
        return {}
    import matplotlib

    matplotlib.use("svg", force=False)
    import matplotlib.pyplot as plt

    draw = {"price": _price, "financials": _financials, "peers": _peers, "legal": _legal}
    out = {}
    with matplotlib.rc_context({"svg.hashsalt": "chainproof", "svg.fonttype": "none", "font.size": 9,
                                "axes.spines.top": False, "axes.spines.right": False}):
        for name in chart_names(view):
            fig = plt.figure(figsize=(7.5, 3.6))
            try:
                draw[name](fig, view)
                fig.suptitle(CHART_TITLES[name], fontsize=10, x=0.01, ha="left")
                fig.tight_layout()
                buf = io.StringIO()
                fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "Chainproof (matplotlib)"})
                out[name] = buf.getvalue()
            finally:
                plt.close(fig)
    return out


def _price(fig: Any, view: ChainView) -> None:
    risk = view.data("market_risk")
    rows = [(date.fromisoformat(str(d)), p, b) for d, p, b in risk["rebased"]]
    ax = fig.add_subplot()
    ax.plot([r[0] for r in rows], [r[1] for r in rows], color=_TARGET, lw=1.4, label=view.inputs["company"])
    bench = [(r[0], r[2]) for r in rows if r[2] is not None]
    if bench:
        ax.plot([d for d, _ in bench], [b for _, b in bench], color=_BENCH, lw=1.0, label="S&P 500")
    by_date = {r[0]: r[1] for r in rows}
    peak, trough = (date.fromisoformat(str(risk[k])) for k in ("max_drawdown_peak", "max_drawdown_trough"))
    if peak in by_date and trough in by_date:
        ax.axvspan(peak, trough, color=_MARK, alpha=0.15, lw=0)
        ax.plot([peak, trough], [by_date[peak], by_date[trough]], "o", color=_MARK)
        ax.annotate(f"max drawdown {risk['max_drawdown'] * 100:.1f} %", (trough, by_date[trough]),
                    textcoords="offset points", xytext=(6, -12), color=_MARK)
    ax.set_ylabel("rebased (window start = 100)")
    ax.legend(loc="upper left", frameon=False)


def financial_bars(years: list[dict[str, Any]]) -> list[tuple[str, float, list[tuple[int, float]]]]:
    """``[(label, x offset, [(year index, USD millions)])]`` of the financials chart's bar series
    (revenue, free cash flow) over ``years`` (``financials.years`` rows with a revenue): a value the
    run does not hold is left out (no zero bar), and a series with no value at all is not listed
    (so not in the legend)."""
    out = []
    for key, label, offset in (("revenue", "revenue", -0.2), ("free_cash_flow", "free cash flow", 0.2)):
        pts = [(i, float(y[key])) for i, y in enumerate(years) if y.get(key) is not None]
        if pts:
            out.append((label, offset, pts))
    return out


def _financials(fig: Any, view: ChainView) -> None:
    years = [y for y in view.data("financials")["years"] if y.get("revenue") is not None]
    labels = [f"FY{y['fiscal_year']}" for y in years]
    x = list(range(len(years)))
    ax = fig.add_subplot()
    bars = financial_bars(years)
    for label, offset, pts in bars:
        ax.bar([i + offset for i, _ in pts], [v for _, v in pts], width=0.4, color=_BENCH if label == "revenue" else _PEER,
               label=label)
    ax.set_xticks(x, labels)
    ax.set_ylabel("USD millions")
    values = [v for _, _, pts in bars for _, v in pts]
    ax.set_ylim(min(0.0, *values), 1.35 * max(0.0, *values))
    ax2 = ax.twinx()
    for key, style, label in (("operating_margin", "-o", "operating margin"), ("net_margin", "--s", "net margin")):
        pts = [(i, y[key] * 100) for i, y in zip(x, years, strict=True) if y.get(key) is not None]
        if pts:
            ax2.plot([p[0] for p in pts], [p[1] for p in pts], style, color=_TARGET, label=label)
    ax2.set_ylabel("margin, %")
    low, high = ax2.get_ylim()
    ax2.set_ylim(low, high + 0.35 * (high - low))  # headroom for the legend
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [str(h.get_label()) for h in handles], loc="upper left", frameon=False, ncol=2)


def _peers(fig: Any, view: ChainView) -> None:
    multiples = [m for m in view.data("peers")["multiples"] if m.get("peer_values")]
    axes = fig.subplots(1, len(multiples), squeeze=False)[0]
    target = view.inputs["company"]
    for ax, m in zip(axes, multiples, strict=True):
        bars = sorted(m["peer_values"].items(), key=lambda kv: kv[1])
        if m.get("target") is not None:
            bars = sorted([*bars, (target, m["target"])], key=lambda kv: kv[1])
        ax.barh([k for k, _ in bars], [v for _, v in bars], color=[_TARGET if k == target else _PEER for k, _ in bars])
        if m.get("peer_median") is not None:
            ax.axvline(m["peer_median"], color=_BENCH, lw=0.8, ls="--")
        ax.set_title(m["label"], fontsize=9)
    fig.text(0.99, 0.01, "dashed line: peer median", ha="right", fontsize=7, color=_BENCH)


def _legal(fig: Any, view: ChainView) -> None:
    matters = view.data("legal")["matters"][::-1]
    ax = fig.add_subplot()
    labels = [f"{m.get('cite') or m['section']}: {m['title'][:48]}" for m in matters]
    ax.barh(range(len(matters)), [m["score"] for m in matters],
            color=[_TARGET if m["section"] != "risk_factors" else _PEER for m in matters])
    ax.set_yticks(range(len(matters)), labels, fontsize=7)
    ax.set_xlabel("materiality score (red: legal note or proceedings; grey: risk factors)", fontsize=8)
