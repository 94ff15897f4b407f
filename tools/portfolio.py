"""Portfolio risk from the positions' dossiers: per-position market risk and news sentiment, a
rating against thresholds, and the portfolio's historical VaR and CVaR.

A portfolio file is a CSV with the columns ``ticker`` and ``weight`` (the position's fraction of
the portfolio's value, > 0; together at most 1, the rest being cash) and optionally ``dossier``
(a dossier folder, relative to the CSV's folder; default: the bundled dossier of the ticker).

Definitions (the position figures are :func:`chainproof.tools.market_risk.market_risk`'s):

- portfolio daily return ``r_p,t = sum_i w_i * r_i,t`` over the dates every position has a close
  for, in the last ``lookback_days`` closes to ``as_of`` (historical simulation with constant
  weights, Jorion, *Value at Risk*, 3rd ed., ch. 10);
- ``hist_var95_1d = -quantile(r_p, 0.05)`` (linear interpolation, as numpy's default) and
  ``hist_cvar95_1d = -mean(r_p | r_p <= quantile(r_p, 0.05))``: positive one-day loss fractions;
- a position's *breaches*: ``hist_var95_1d`` above ``var95_high``, ``max_drawdown`` at or below
  ``drawdown_high`` (a negative fraction), headline ``net_score`` at or below ``sentiment_high``;
  rating ``high`` with two or more breaches, ``medium`` with one, else ``low``.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from pydantic import BaseModel, Field

from chainproof.tools._stats import quantile_linear
from chainproof.tools.dossier import DossierError, load_dossier, resolve_dossier
from chainproof.tools.market_risk import market_risk
from chainproof.tools.sentiment import headline_sentiment

__all__ = ["Position", "RiskThresholds", "portfolio_dossiers", "read_portfolio", "position_risk", "portfolio_risk", "rating_of"]

MAX_POSITIONS = 10_000


class Position(BaseModel):
    """One row of a portfolio file. ``weight``: fraction of the portfolio's value."""

    ticker: str = Field(min_length=1)
    weight: float = Field(gt=0, le=1)
    dossier: str


class RiskThresholds(BaseModel):
    """When a position breaches (see the module docstring). Defaults: a one-day 95 % VaR over
    3 % of the position, a drawdown of 35 % or worse, more bearish than bullish headlines by a
    quarter of those scored; the portfolio alerts when its one-day 95 % VaR exceeds 2 %."""

    var95_high: float = Field(default=0.03, gt=0)
    drawdown_high: float = Field(default=-0.35, lt=0)
    sentiment_high: float = Field(default=-0.25, ge=-1, le=1)
    portfolio_var95_high: float = Field(default=0.02, gt=0)


def portfolio_dossiers(path: str | Path) -> list[tuple[int, str]]:
    """``(line, dossier as written)`` of each row of the portfolio CSV at ``path`` that names a
    dossier folder (relative to the CSV's folder), without resolving or opening any: what a caller
    checks before :func:`read_portfolio` looks at those folders. Size-limited
    (``tools/input_files.py``); ``InputFileError`` naming the file."""
    from chainproof.tools.input_files import open_text

    rows = csv.DictReader(open_text(path, "portfolio"))
    return [(n, (row.get("dossier") or "").strip()) for n, row in enumerate(rows, start=2)
            if isinstance(row.get("dossier"), str) and row["dossier"].strip()]


def read_portfolio(path: str | Path) -> list[Position]:
    """The positions of the CSV at ``path`` (see the module docstring), each ``dossier`` resolved to
    an absolute folder. Raises :class:`DossierError` naming the file, the row and the field."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DossierError(f"portfolio: file not found: {file} (expected a CSV with columns ticker,weight[,dossier])")
    with file.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"ticker", "weight"} - set(reader.fieldnames or [])
        if missing:
            raise DossierError(f"portfolio {file}: missing column(s) {sorted(missing)}; expected ticker,weight[,dossier]")
        positions: list[Position] = []
        for n, row in enumerate(reader, start=2):
            if len(positions) >= MAX_POSITIONS:
                raise DossierError(f"portfolio {file}: more than {MAX_POSITIONS} positions")
            ticker = (row.get("ticker") or "").strip().upper()
            try:
                weight = float(row.get("weight") or "")
            except ValueError:
                raise DossierError(f"portfolio {file} line {n}: weight: expected a fraction such as 0.05, "
                                   f"got {row.get('weight')!r}") from None
            if not ticker or not 0 < weight <= 1:
                field = "ticker" if not ticker else "weight"
                raise DossierError(f"portfolio {file} line {n}: {field}: expected a ticker and a weight in (0, 1], "
                                   f"got {ticker!r}, {weight}")
            if any(p.ticker == ticker for p in positions):
                raise DossierError(f"portfolio {file} line {n}: ticker: {ticker} is listed twice; expected one row "
                                   "per position")
            given = (row.get("dossier") or "").strip()
            try:
                folder = resolve_dossier(ticker, (file.parent / given) if given else None)
            except DossierError as exc:
                raise DossierError(f"portfolio {file} line {n}: dossier: {exc}") from None
            positions.append(Position(ticker=ticker, weight=weight, dossier=str(folder)))
    if not positions:
        raise DossierError(f"portfolio {file}: no positions")
    total = sum(p.weight for p in positions)
    if total > 1 + 1e-9:
        raise DossierError(f"portfolio {file}: weight: the weights add up to {total:.6g}; expected at most 1")
    return positions


def rating_of(breaches: list[str]) -> str:
    """``high`` (two or more breaches), ``medium`` (one) or ``low`` (none)."""
    return "high" if len(breaches) >= 2 else "medium" if breaches else "low"


def position_risk(dossier: str, as_of: date, thresholds: RiskThresholds) -> dict:
    """One position's risk as of ``as_of``: ``ticker``, ``hist_var95_1d``, ``hist_cvar95_1d``,
    ``ann_volatility``, ``max_drawdown`` (fractions), ``net_score`` (headlines, in [-1, 1]),
    ``breaches`` (names of the thresholds crossed) and ``rating``. Raises :class:`DossierError`."""
    d = load_dossier(dossier)
    risk = market_risk(d, as_of)
    sentiment = headline_sentiment(d, as_of)
    breaches = []
    if risk.hist_var95_1d > thresholds.var95_high:
        breaches.append("var95_high")
    if risk.max_drawdown <= thresholds.drawdown_high:
        breaches.append("drawdown_high")
    if sentiment.n_scored and sentiment.net_score <= thresholds.sentiment_high:
        breaches.append("sentiment_high")
    return {"ticker": d.meta.ticker, "hist_var95_1d": risk.hist_var95_1d, "hist_cvar95_1d": risk.hist_cvar95_1d,
            "ann_volatility": risk.ann_volatility, "max_drawdown": risk.max_drawdown,
            "net_score": sentiment.net_score, "n_headlines": sentiment.n_scored,
            "breaches": breaches, "rating": rating_of(breaches)}


def portfolio_risk(portfolio: str, as_of: date, thresholds: RiskThresholds, lookback_days: int = 1259) -> dict:
    """The portfolio's risk: ``positions`` (each :func:`position_risk` with ``weight`` and
    ``dossier``) and ``portfolio`` (``hist_var95_1d``, ``hist_cvar95_1d``, ``n_days`` of aligned
    returns, ``alert``: VaR above ``thresholds.portfolio_var95_high``). Raises :class:`DossierError`."""
    positions = read_portfolio(portfolio)
    rows = []
    series: list[dict[date, float]] = []
    for p in positions:
        rows.append({**position_risk(p.dossier, as_of, thresholds), "weight": p.weight, "dossier": p.dossier})
        closes = [pt for pt in load_dossier(p.dossier).prices if pt.date <= as_of][-lookback_days:]
        series.append({pt.date: pt.close for pt in closes})
    common = sorted(set.intersection(*(set(s) for s in series)))
    if len(common) < 21:
        raise DossierError(f"portfolio {portfolio}: only {len(common)} dates with a close for every position "
                           "up to as_of; expected at least 21 for a VaR")
    returns = [sum(p.weight * (s[b] / s[a] - 1) for p, s in zip(positions, series))
               for a, b in zip(common, common[1:])]
    q = quantile_linear(returns, 0.05)
    tail = [r for r in returns if r <= q]
    var95, cvar95 = -q, -sum(tail) / len(tail)
    return {"positions": rows,
            "portfolio": {"hist_var95_1d": var95, "hist_cvar95_1d": cvar95, "n_days": len(returns),
                          "window_start": common[0].isoformat(), "window_end": common[-1].isoformat(),
                          "alert": var95 > thresholds.portfolio_var95_high}}
