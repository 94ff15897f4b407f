"""Market risk: matches the bundle's reference answers for all 12 tickers; no look-ahead."""

from __future__ import annotations

import csv
import math
from datetime import date

import pytest

from chainproof.tools._stats import max_drawdown, quantile_linear
from chainproof.tools.dossier import DossierError, load_dossier
from chainproof.tools.market_risk import market_risk
from testkit.dossier_data import DEMO_AS_OF, SYNTH_AS_OF, TARGETS, business_days

COLUMNS = {  # reference column -> MarketRisk field
    "n_returns": "n_returns", "start_close": "start_close", "end_close": "end_close",
    "total_price_return": "total_price_return", "ann_mean_return": "ann_mean_return",
    "ann_volatility": "ann_volatility", "sharpe_ratio": "sharpe_ratio", "beta_vs_sp500": "beta_vs_benchmark",
    "corr_vs_sp500": "corr_vs_benchmark", "hist_var95_1d": "hist_var95_1d", "hist_var99_1d": "hist_var99_1d",
    "param_var95_1d": "param_var95_1d", "hist_cvar95_1d": "hist_cvar95_1d", "max_drawdown": "max_drawdown",
}


@pytest.fixture(scope="module")
def reference(bundle_root):
    path = bundle_root / "reference_answers" / "risk_metrics_2013-02-08_2018-02-07.csv"
    return {r["ticker"]: r for r in csv.DictReader(path.open())}


@pytest.mark.parametrize("ticker", TARGETS)
def test_matches_reference_answers(built_dossiers, reference, ticker):
    m = market_risk(load_dossier(built_dossiers[ticker]), DEMO_AS_OF)
    assert (m.window_start, m.window_end, m.n_prices) == (date(2013, 2, 8), date(2018, 2, 7), 1259)
    assert m.rf_months_used == 60 and m.rf_annual == pytest.approx(0.00224, abs=1e-12)
    for col, field in COLUMNS.items():
        want = float(reference[ticker][col])
        got = getattr(m, field)
        # 1e-6 relative, plus half a unit of the 6th decimal the reference file is rounded to
        assert abs(got - want) <= 1e-6 * abs(want) + 5e-7, f"{ticker} {col}: {got} vs {want}"
    assert m.notes == []


def test_quantile_is_numpy_linear():
    assert quantile_linear([1, 2, 3, 4], 0.05) == pytest.approx(1.15)  # numpy.quantile(..., 0.05)
    assert quantile_linear([4, 1, 3, 2], 0.5) == 2.5
    assert quantile_linear([-0.02, 0.01, 0.0], 0.01) == pytest.approx(-0.0196)  # h = 0.02
    assert quantile_linear([7], 0.99) == 7
    with pytest.raises(ValueError):
        quantile_linear([], 0.5)
    assert max_drawdown([100, 120, 90, 130, 65]) == (-0.5, 3, 4)


def test_hand_computed_small_window(make_dossier):
    closes = [100 + (i % 3) for i in range(70)] + [102, 99, 101, 103, 97]
    days = business_days(date(2021, 1, 4), len(closes))
    d = load_dossier(make_dossier(prices=list(zip(days, closes))))
    as_of = days[-1]
    m = market_risk(d, as_of, lookback_days=5)
    # window = last 5 closes dated <= as_of: 102, 99, 101, 103, 97
    r = [99 / 102 - 1, 101 / 99 - 1, 103 / 101 - 1, 97 / 103 - 1]
    assert m.n_returns == 4 and m.start_close == 102 and m.end_close == 97
    assert m.ann_mean_return == pytest.approx(sum(r) / 4 * 252)
    mean = sum(r) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 3)
    assert m.ann_volatility == pytest.approx(sd * math.sqrt(252))
    assert m.hist_var95_1d == pytest.approx(-quantile_linear(r, 0.05))
    assert m.hist_cvar95_1d == pytest.approx(-min(r))  # only the worst return is <= the 5 % quantile
    assert m.max_drawdown == pytest.approx(97 / 103 - 1)
    assert m.max_drawdown_peak == days[-2] and m.max_drawdown_trough == days[-1]
    assert "window shortened" not in " ".join(m.notes)
    with pytest.raises(DossierError, match="only 59 trading days of prices before it"):
        market_risk(d, days[59])


def test_ignores_prices_after_as_of(make_dossier):
    base = make_dossier("A")
    d = load_dossier(base)
    wild = [(p.date, p.close * (5 if p.date > SYNTH_AS_OF else 1)) for p in d.prices]
    d2 = load_dossier(make_dossier("B", prices=wild))
    a, b = market_risk(d, SYNTH_AS_OF), market_risk(d2, SYNTH_AS_OF)
    assert a.model_dump() == b.model_dump()
    assert a.window_end <= SYNTH_AS_OF and a.n_prices < 1259
    assert any("window shortened" in n for n in a.notes)
    # rf: months Jan-May 2021 ended before 2021-06-01 -> mean(0.01..0.05) x 12 / 100
    assert a.rf_months_used == 5 and a.rf_annual == pytest.approx(0.03 * 12 / 100)


def test_missing_benchmark_dates_degrade_gracefully(make_dossier):
    d = load_dossier(make_dossier())
    sparse = [(p.date, p.close) for p in d.benchmark[:10]]
    m = market_risk(load_dossier(make_dossier("S", benchmark=sparse)), SYNTH_AS_OF)
    assert m.beta_vs_benchmark is None and m.corr_vs_benchmark is None
    assert any("beta not computed" in n for n in m.notes)
    m2 = market_risk(load_dossier(make_dossier("R", rates=[["2019-01", 0.1]])), SYNTH_AS_OF)
    assert m2.sharpe_ratio is None and any("Sharpe ratio not computed" in n for n in m2.notes)
