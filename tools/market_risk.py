"""Market risk of the target's stock from its daily closes, the S&P 500 and the risk-free rate.

Definitions (identical to ``reference_answers/SOURCE.md`` of the data bundle, so results match the
reference values computed with numpy):

- window: the last ``lookback_days`` closes in prices.csv dated <= as_of (default 1,259 = 5 years);
- ``r_t = close_t / close_{t-1} - 1`` (simple daily price returns, dividends excluded);
- ``total_price_return = last / first - 1``; ``ann_mean_return = mean(r) * 252``;
- ``ann_volatility = std(r, ddof=1) * sqrt(252)``;
- ``sharpe_ratio = (ann_mean_return - rf) / ann_volatility`` with ``rf`` = mean of the monthly ``RF``
  (percent) over the window's calendar months that ended before as_of, x 12 / 100;
- ``beta = cov(r, r_m, ddof=1) / var(r_m, ddof=1)`` and Pearson ``corr``, both on returns computed
  over the dates common to prices.csv and benchmark.csv inside the window;
- ``hist_var95_1d = -quantile(r, 0.05)``, ``hist_var99_1d = -quantile(r, 0.01)`` (numpy-default
  linear interpolation), ``param_var95_1d = -(mean(r) - 1.6448536 * std(r, ddof=1))``,
  ``hist_cvar95_1d = -mean(r | r <= quantile(r, 0.05))`` -- positive one-day loss fractions;
- ``max_drawdown = min_t(close_t / running_max - 1)`` (negative fraction).
"""

from __future__ import annotations

import calendar
import math
import statistics
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from chainproof.tools._stats import max_drawdown, quantile_linear, simple_returns
from chainproof.tools.dossier import Dossier, DossierError, check_as_of

__all__ = ["MarketRisk", "market_risk", "TRADING_DAYS_PER_YEAR", "Z_95"]

TRADING_DAYS_PER_YEAR = 252
Z_95 = 1.6448536  # one-sided 95 % normal quantile, as in the reference definitions
MIN_RETURNS = 20  # fewer aligned returns than this -> beta/corr are None


class MarketRisk(BaseModel):
    """Market-risk metrics for one stock over one window. Fractions (0.0142 = 1.42 %), not percents."""

    model_config = ConfigDict(frozen=True)

    ticker: str
    as_of: date
    lookback_days: int = Field(description="requested number of daily closes in the window")
    window_start: date
    window_end: date
    n_prices: int
    n_returns: int
    start_close: float
    end_close: float
    total_price_return: float
    ann_mean_return: float
    ann_volatility: float
    rf_annual: float | None = Field(description="annual risk-free rate, fraction")
    rf_months_used: int
    sharpe_ratio: float | None
    beta_vs_benchmark: float | None
    corr_vs_benchmark: float | None
    n_aligned_returns: int = Field(description="returns on dates common to prices and benchmark")
    hist_var95_1d: float
    hist_var99_1d: float
    param_var95_1d: float
    hist_cvar95_1d: float
    max_drawdown: float
    max_drawdown_peak: date
    max_drawdown_trough: date
    rebased: list[tuple[date, float, float | None]] = Field(
        default_factory=list, description="(date, close, benchmark) rebased to 100 at the window's first date (the "
                                          "benchmark at its first date in the window), every 5th trading day plus the "
                                          "last day and the drawdown's peak and trough: what the price chart draws")
    notes: list[str] = Field(default_factory=list)
    method: str = "simple daily price returns; ann. x252; VaR/CVaR historical (linear quantile); beta vs S&P 500"


def _rf_annual(d: Dossier, start: date, end: date, as_of: date) -> tuple[float | None, int, list[str]]:
    """Mean monthly RF (percent) over calendar months start..end whose last day is before as_of, x12/100."""
    notes: list[str] = []
    wanted = []
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        last_day = date(y, m, calendar.monthrange(y, m)[1])
        if last_day < as_of:
            wanted.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    have = {(r.year, r.month): r.rf_pct for r in d.rates}
    used = [have[k] for k in wanted if k in have]
    missing = [f"{k[0]:04d}-{k[1]:02d}" for k in wanted if k not in have]
    if missing:
        notes.append(f"rates.csv lacks {len(missing)} of {len(wanted)} window months (e.g. {missing[0]}); "
                     "rf averaged over the months present")
    if not used:
        notes.append("no risk-free rate for the window months: Sharpe ratio not computed")
        return None, 0, notes
    return statistics.fmean(used) * 12 / 100, len(used), notes


def market_risk(d: Dossier, as_of: date, lookback_days: int = 1259) -> MarketRisk:
    """Market-risk metrics for ``d``'s stock using only closes dated <= ``as_of``.

    ``lookback_days``: number of daily closes in the window (>= 2). Units: fractions; ann. figures use
    252 trading days. Raises :class:`DossierError` when ``as_of`` is outside the price data
    (:func:`chainproof.tools.dossier.check_as_of`) or ``lookback_days`` < 2. Formulas: module docstring (same as
    the data bundle's ``reference_answers/SOURCE.md``). Missing benchmark/rates degrade to ``None``
    with a note instead of failing.
    """
    check_as_of(d, as_of)
    if lookback_days < 2:
        raise DossierError(f"lookback_days={lookback_days} is too small; expected >= 2")
    notes: list[str] = []
    history = [p for p in d.prices if p.date <= as_of]
    window = history[-lookback_days:]
    if len(window) < lookback_days:
        notes.append(f"only {len(window)} closes available on or before {as_of.isoformat()} "
                     f"(asked for {lookback_days}); window shortened")
    closes = [p.close for p in window]
    r = simple_returns(closes)
    n = len(r)
    mean_r = statistics.fmean(r)
    sd = statistics.stdev(r) if n >= 2 else 0.0
    ann_mean = mean_r * TRADING_DAYS_PER_YEAR
    ann_vol = sd * math.sqrt(TRADING_DAYS_PER_YEAR)

    rf, rf_n, rf_notes = _rf_annual(d, window[0].date, window[-1].date, as_of)
    notes += rf_notes
    sharpe = None if rf is None or ann_vol == 0 else (ann_mean - rf) / ann_vol

    bench = {p.date: p.close for p in d.benchmark}
    common = [p for p in window if p.date in bench]
    if len(common) < len(window):
        notes.append(f"benchmark.csv lacks {len(window) - len(common)} of the window's {len(window)} dates; "
                     "beta uses the common dates")
    beta = corr = None
    n_aligned = max(len(common) - 1, 0)
    if n_aligned >= MIN_RETURNS:
        ra = simple_returns([p.close for p in common])
        rm = simple_returns([bench[p.date] for p in common])
        var_m = statistics.variance(rm)
        if var_m > 0:
            beta = statistics.covariance(ra, rm) / var_m
            if statistics.variance(ra) > 0:
                corr = statistics.correlation(ra, rm)
    else:
        notes.append(f"only {n_aligned} returns aligned with the benchmark (need >= {MIN_RETURNS}): beta not computed")

    q05 = quantile_linear(r, 0.05)
    tail = [x for x in r if x <= q05]
    dd, peak_i, trough_i = max_drawdown(closes)
    return MarketRisk(
        ticker=d.ticker, as_of=as_of, lookback_days=lookback_days,
        window_start=window[0].date, window_end=window[-1].date, n_prices=len(window), n_returns=n,
        start_close=closes[0], end_close=closes[-1], total_price_return=closes[-1] / closes[0] - 1.0,
        ann_mean_return=ann_mean, ann_volatility=ann_vol, rf_annual=rf, rf_months_used=rf_n,
        sharpe_ratio=sharpe, beta_vs_benchmark=beta, corr_vs_benchmark=corr, n_aligned_returns=n_aligned,
        hist_var95_1d=-q05, hist_var99_1d=-quantile_linear(r, 0.01),
        param_var95_1d=-(mean_r - Z_95 * sd), hist_cvar95_1d=-statistics.fmean(tail),
        max_drawdown=dd, max_drawdown_peak=window[peak_i].date, max_drawdown_trough=window[trough_i].date,
        rebased=_rebased(window, bench, {0, peak_i, trough_i, len(window) - 1}), notes=notes)


def _rebased(window: list, bench: dict[date, float], keep: set[int]) -> list[tuple[date, float, float | None]]:
    """``(date, close, benchmark)`` rebased to 100 (see :class:`MarketRisk.rebased`), rounded to 0.01."""
    base = window[0].close
    b0 = next((bench[p.date] for p in window if p.date in bench), None)
    return [(p.date, round(100 * p.close / base, 2),
             round(100 * bench[p.date] / b0, 2) if b0 and p.date in bench else None)
            for i, p in enumerate(window) if i % 5 == 0 or i in keep]
