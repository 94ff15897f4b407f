"""Risk scorecard: documented points, caps and cut-offs; evidence keys; real demos."""

from __future__ import annotations

from datetime import date

import pytest

from chainproof.tools import scorecard as sc_mod
from chainproof.tools.dossier import bundled_dossier, load_dossier
from chainproof.tools.financials import FinancialFlag, FinancialHealth, YearFigures, financial_health
from chainproof.tools.legal import LegalMatter, LegalReview, legal_matters
from chainproof.tools.market_risk import MarketRisk, market_risk
from chainproof.tools.peers import MultipleComparison, PeerComparison, peer_comparison
from chainproof.tools.scorecard import risk_scorecard
from chainproof.tools.sentiment import headline_sentiment, score_headline, summarise
from testkit.dossier_data import DEMO_AS_OF

D = date(2018, 2, 8)


def _inputs(*, flags=(), top_score=5.0, amount=None, var=0.01, vol=0.15, dd=-0.1, beta=1.0, sharpe=1.0,
            pe_prem=0.0, headlines=("Acme to present at a conference",) * 4, ticker="ACME", net_income=1000.0):
    fin = FinancialHealth(ticker=ticker, as_of=D, fiscal_years=[2017], latest_fiscal_year=2017,
                          years=[YearFigures(fiscal_year=2017, fiscal_year_end=date(2017, 12, 31),
                                             net_income=net_income, interest_coverage=10, current_ratio=2,
                                             debt_to_equity=0.5, free_cash_flow=100)],
                          flags=[FinancialFlag(code=c, evidence_key=f"financials.{c}", fiscal_year=2017, value=1,
                                               threshold=1, message=c) for c in flags])
    legal = LegalReview(ticker=ticker, n_candidates=1, sections=["legal_note"],
                        matters=[LegalMatter(id="legal_note#001", title="A case", score=top_score,
                                             section="legal_note", excerpt="x")],
                        max_amount_usd_millions=amount)
    sent = summarise(ticker, D, [score_headline(h) for h in headlines])
    peers = PeerComparison(ticker=ticker, snapshot_date=D, peers=["X"], target_market_cap_usd_m=50_000,
                           multiples=[MultipleComparison(multiple="pe", label="P/E", target=1.0 + pe_prem,
                                                         peer_median=1.0, peer_count=3, premium_vs_median=pe_prem)])
    risk = MarketRisk(ticker=ticker, as_of=D, lookback_days=1259, window_start=date(2013, 2, 8), window_end=D,
                      n_prices=1259, n_returns=1258, start_close=1, end_close=2, total_price_return=1,
                      ann_mean_return=0.1, ann_volatility=vol, rf_annual=0.002, rf_months_used=60,
                      sharpe_ratio=sharpe, beta_vs_benchmark=beta, corr_vs_benchmark=0.5, n_aligned_returns=1258,
                      hist_var95_1d=var, hist_var99_1d=var * 1.5, param_var95_1d=var, hist_cvar95_1d=var * 1.4,
                      max_drawdown=dd, max_drawdown_peak=D, max_drawdown_trough=D)
    return fin, legal, sent, peers, risk


def test_clean_company_proceeds():
    s = risk_scorecard(*_inputs())
    assert s.total_score == 0 and s.recommendation == "proceed" and s.factors == []


def test_points_caps_and_cutoffs():
    s = risk_scorecard(*_inputs(flags=["low_interest_coverage", "net_loss"], top_score=25, amount=800,
                                var=0.03, vol=0.35, dd=-0.45, beta=1.5, sharpe=-0.1, pe_prem=0.4))
    by_key = {f.evidence_key: f.points for f in s.factors}
    assert by_key["financials.low_interest_coverage"] == 10 and by_key["financials.net_loss"] == 6
    assert by_key["legal.matters[0].score"] == 12
    assert by_key["legal.max_amount_usd_millions"] == 12          # 800 / 1000 net income >= 50 %
    assert by_key["market_risk.hist_var95_1d"] == 6 and by_key["market_risk.ann_volatility"] == 6
    assert by_key["market_risk.max_drawdown"] == 6 and by_key["market_risk.beta_vs_benchmark"] == 4
    assert by_key["market_risk.sharpe_ratio"] == 3                # market: 6+6+6+4+3 = 25 = its cap
    assert by_key["peers.pe.premium_vs_median"] == 5
    assert s.category_scores == {"financial": 16, "legal": 24, "market": 25, "valuation": 5, "sentiment": 0}
    assert s.total_score == 70 and s.recommendation == "walk_away"
    mid = risk_scorecard(*_inputs(top_score=25, amount=200, var=0.021))
    # legal 12 + 6 (200 / 1000 >= 10 %) + market 3 = 21 -> proceed; one more tier -> renegotiate
    assert mid.total_score == 21 and mid.recommendation == "proceed"
    edge = risk_scorecard(*_inputs(top_score=25, amount=200, var=0.021, vol=0.35, dd=-0.3))
    assert edge.total_score == 30 and edge.recommendation == "renegotiate"  # 21 + 6 + 3: the cut-off itself
    assert sc_mod.RENEGOTIATE_AT == 30 and sc_mod.WALK_AWAY_AT == 55


def test_negative_sentiment_and_missing_inputs():
    bad = ("Acme shares plunge after it misses estimates",) * 3 + ("Acme to present",)
    s = risk_scorecard(*_inputs(headlines=bad, net_income=None, amount=2000, beta=None))
    keys = {f.evidence_key: f for f in s.factors}
    assert keys["sentiment.net_score"].points == 5
    assert keys["legal.max_amount_usd_millions"].code == "legal_amount_vs_market_cap"  # no net income: 4 % of cap
    assert keys["legal.max_amount_usd_millions"].points == 6
    assert "market_risk.beta_vs_benchmark" in s.not_assessed


def test_ticker_mismatch_rejected():
    fin, legal, sent, peers, risk = _inputs()
    with pytest.raises(ValueError, match="different companies: .*financials=OTHER"):
        risk_scorecard(fin.model_copy(update={"ticker": "OTHER"}), legal, sent, peers, risk)


def test_bundled_3m_demo():
    d = load_dossier(bundled_dossier("MMM"))
    s = risk_scorecard(financial_health(d, DEMO_AS_OF), legal_matters(d), headline_sentiment(d, DEMO_AS_OF),
                       peer_comparison(d, DEMO_AS_OF), market_risk(d, DEMO_AS_OF))
    keys = {f.evidence_key for f in s.factors}
    # the $5 bn Minnesota claim is about one year of 3M's net income: legal drives the score
    assert "legal.max_amount_usd_millions" in keys and s.category_scores["legal"] == 30
    assert s.category_scores["market"] == 0 and s.category_scores["financial"] == 0
    assert s.recommendation == "renegotiate"
    assert len(s.model_dump_json()) < 4096


def test_mgm_market_risk_factors(built_dossiers):
    d = load_dossier(built_dossiers["MGM"])
    s = risk_scorecard(financial_health(d, DEMO_AS_OF), legal_matters(d), headline_sentiment(d, DEMO_AS_OF),
                       peer_comparison(d, DEMO_AS_OF), market_risk(d, DEMO_AS_OF))
    keys = {f.evidence_key for f in s.factors}
    assert {"market_risk.hist_var95_1d", "market_risk.max_drawdown", "market_risk.beta_vs_benchmark",
            "financials.interest_coverage"} <= keys
    assert s.recommendation in ("renegotiate", "walk_away")
