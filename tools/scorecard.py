"""Quantitative deal-risk scorecard: turns the five tool results into points, a 0-100 score and a
suggested recommendation.

Points per factor (module constants; a factor whose input is ``None`` is listed in ``not_assessed``):

==============  ===================================================================  =====  ====
category        factor (evidence key)                                                points  cap
==============  ===================================================================  =====  ====
financial       each flag of :func:`chainproof.tools.financials.financial_health`               see      30
                (``financials.<ratio>``): interest cover < 3x 10, equity <= 0 8,     FLAG_
                debt/equity > 2x 6, liabilities/equity > 3x 3, current ratio < 1x    POINTS
                4, negative FCF 6, net loss 6, op. margin < 5 % 3, revenue decline
                3, negative revenue CAGR 2
legal           top matter score >= 20: 12, >= 12: 6 (``legal.matters[0].score``)            30
                >= 3 matters scoring >= 12: 6 (``legal.matters``)
                largest amount in the legal sections >= 50 % of the latest annual
                net income: 12, >= 10 %: 6 (``legal.max_amount_usd_millions``);
                without positive net income: >= 5 % / 1 % of market cap; without
                either: >= USD 1 bn: 6
market          hist. VaR95 1d >= 2.5 %: 6, >= 2.0 %: 3; ann. vol >= 30 %: 6,                25
                >= 22 %: 3; max drawdown <= -40 %: 6, <= -25 %: 3; beta >= 1.3: 4;
                Sharpe <= 0: 3 (``market_risk.<metric>``)
valuation       P/E premium to peer median >= 30 %: 5, >= 15 %: 2; EV/EBITDA premium         10
                >= 30 %: 3; P/S or P/B premium >= 50 %: 2 (``peers.<multiple>``)
sentiment       net score <= -0.2 with >= 3 headlines: 5; else bearish share >= 30 %: 3        5
                (``sentiment.net_score`` / ``sentiment.bearish_share``)
==============  ===================================================================  =====  ====

Rationale: solvency and legal exposure are the deal-breakers in due diligence (30 each); market
risk measures how much the price can move against the buyer (25); valuation premium argues for
renegotiating rather than walking away (10); headline sentiment is noisy and often undated (5).

Recommendation cut-offs on the total (0-100): < :data:`RENEGOTIATE_AT` (30) ``proceed``;
< :data:`WALK_AWAY_AT` (55) ``renegotiate``; else ``walk_away``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chainproof.tools.financials import FinancialHealth
from chainproof.tools.legal import LegalReview
from chainproof.tools.market_risk import MarketRisk
from chainproof.tools.peers import PeerComparison
from chainproof.tools.sentiment import SentimentSummary

__all__ = ["Factor", "Scorecard", "risk_scorecard", "CATEGORY_CAPS", "FLAG_POINTS", "RENEGOTIATE_AT",
           "WALK_AWAY_AT"]

Recommendation = Literal["proceed", "renegotiate", "walk_away"]

CATEGORY_CAPS: dict[str, float] = {"financial": 30, "legal": 30, "market": 25, "valuation": 10, "sentiment": 5}
FLAG_POINTS: dict[str, float] = {
    "low_interest_coverage": 10, "negative_equity": 8, "high_debt_to_equity": 6, "high_liabilities_to_equity": 3,
    "low_current_ratio": 4, "negative_free_cash_flow": 6, "net_loss": 6, "thin_operating_margin": 3,
    "revenue_decline": 3, "revenue_cagr_negative": 2,
}
LEGAL_TOP_HIGH, LEGAL_TOP_MED = 20.0, 12.0
LEGAL_SERIOUS_SCORE, LEGAL_SERIOUS_COUNT = 12.0, 3
LEGAL_AMOUNT_NI_HIGH, LEGAL_AMOUNT_NI_MED = 0.5, 0.1  # fraction of the latest annual net income
LEGAL_AMOUNT_MCAP_HIGH, LEGAL_AMOUNT_MCAP_MED = 0.05, 0.01  # fraction of market cap (no positive net income)
LEGAL_AMOUNT_ABS = 1000.0  # USD millions, when neither is known
VAR95_HIGH, VAR95_MED = 0.025, 0.020
VOL_HIGH, VOL_MED = 0.30, 0.22
DD_HIGH, DD_MED = -0.40, -0.25
BETA_HIGH = 1.3
PE_PREMIUM_HIGH, PE_PREMIUM_MED = 0.30, 0.15
EV_EBITDA_PREMIUM = 0.30
PS_PB_PREMIUM = 0.50
SENTIMENT_NET_BAD, SENTIMENT_MIN_N, BEARISH_SHARE_BAD = -0.2, 3, 0.30
RENEGOTIATE_AT, WALK_AWAY_AT = 30.0, 55.0


class Factor(BaseModel):
    """One contributing factor: ``points`` added because ``value`` crossed ``threshold``."""

    model_config = ConfigDict(frozen=True)

    code: str
    category: str
    evidence_key: str
    value: float
    threshold: float
    points: float
    note: str


class Scorecard(BaseModel):
    """Result of :func:`risk_scorecard`. ``total_score`` 0-100 (higher = riskier)."""

    model_config = ConfigDict(frozen=True)

    ticker: str
    total_score: float
    recommendation: Recommendation
    category_scores: dict[str, float]
    category_caps: dict[str, float] = Field(default_factory=lambda: dict(CATEGORY_CAPS))
    cutoffs: dict[str, float] = Field(default_factory=lambda: {"renegotiate_at": RENEGOTIATE_AT,
                                                                 "walk_away_at": WALK_AWAY_AT})
    factors: list[Factor]
    not_assessed: list[str] = Field(default_factory=list)
    summary: str


def _tiered(value: float | None, high: float, med: float | None, p_high: float, p_med: float,
            *, below: bool = False) -> tuple[float, float] | None:
    """(points, threshold crossed) for a two-tier rule; ``below`` means smaller values are worse."""
    if value is None:
        return None
    worse = (lambda v, t: v <= t) if below else (lambda v, t: v >= t)
    if worse(value, high):
        return p_high, high
    if med is not None and worse(value, med):
        return p_med, med
    return 0.0, high


def risk_scorecard(fin: FinancialHealth, legal: LegalReview, sentiment: SentimentSummary, peers: PeerComparison,
                   risk: MarketRisk) -> Scorecard:
    """Score deal risk 0-100 from the five tool results and suggest proceed / renegotiate / walk_away.

    Points, caps and cut-offs are the module constants (table in the module docstring); every
    contributing factor names its evidence key. Inputs that are ``None`` are skipped and listed in
    ``not_assessed``. Raises ValueError when the inputs are about different tickers.
    """
    tickers = {"financials": fin.ticker, "legal": legal.ticker, "sentiment": sentiment.ticker,
               "peers": peers.ticker, "risk": risk.ticker}
    if len({t.upper() for t in tickers.values() if t}) > 1:
        raise ValueError("inputs are about different companies: " + ", ".join(f"{k}={v}" for k, v in tickers.items()))
    factors: list[Factor] = []
    skipped: list[str] = []

    def add(code: str, category: str, key: str, value: float | None, rule: tuple[float, float] | None, note: str) -> None:
        if rule is None or value is None:
            skipped.append(key)
        elif rule[0] > 0:
            factors.append(Factor(code=code, category=category, evidence_key=key, value=round(value, 6),
                                  threshold=rule[1], points=rule[0], note=note))

    # financial: one factor per flag
    for f in fin.flags:
        pts = FLAG_POINTS.get(f.code, 0.0)
        if f.code == "high_debt_to_equity" and any(x.code == "negative_equity" for x in fin.flags):
            pts = 0.0  # already counted as negative equity
        if pts:
            factors.append(Factor(code=f.code, category="financial", evidence_key=f.evidence_key, value=f.value,
                                  threshold=f.threshold, points=pts, note=f.message))
    latest = fin.years[-1] if fin.years else None
    if latest is None:
        skipped.append("financials")
    else:
        for attr in ("interest_coverage", "current_ratio", "debt_to_equity", "free_cash_flow"):
            if all(getattr(y, attr) is None for y in fin.years):
                skipped.append(f"financials.{attr}")

    # legal
    top = legal.matters[0].score if legal.matters else None
    add("legal_top_matter", "legal", "legal.matters[0].score", top,
        _tiered(top, LEGAL_TOP_HIGH, LEGAL_TOP_MED, 12, 6),
        f"most material matter: {legal.matters[0].title[:70]}" if legal.matters else "")
    serious = sum(1 for m in legal.matters if m.score >= LEGAL_SERIOUS_SCORE)
    if legal.matters:
        add("legal_many_serious", "legal", "legal.matters", float(serious),
            (6.0, LEGAL_SERIOUS_COUNT) if serious >= LEGAL_SERIOUS_COUNT else (0.0, LEGAL_SERIOUS_COUNT),
            f"{serious} matters score >= {LEGAL_SERIOUS_SCORE:g}")
    amount = legal.max_amount_usd_millions
    net_income = next((y.net_income for y in reversed(fin.years) if y.net_income is not None), None)
    mcap = peers.target_market_cap_usd_m
    if amount is not None and net_income is not None and net_income > 0:
        add("legal_amount_vs_net_income", "legal", "legal.max_amount_usd_millions", amount / net_income,
            _tiered(amount / net_income, LEGAL_AMOUNT_NI_HIGH, LEGAL_AMOUNT_NI_MED, 12, 6),
            f"largest legal amount USD {amount:,.0f}m = {amount / net_income:.0%} of annual net income")
    elif amount is not None and mcap:
        add("legal_amount_vs_market_cap", "legal", "legal.max_amount_usd_millions", amount / mcap,
            _tiered(amount / mcap, LEGAL_AMOUNT_MCAP_HIGH, LEGAL_AMOUNT_MCAP_MED, 12, 6),
            f"largest legal amount USD {amount:,.0f}m = {amount / mcap:.1%} of market cap")
    elif amount is not None:
        add("legal_amount_absolute", "legal", "legal.max_amount_usd_millions", amount,
            _tiered(amount, LEGAL_AMOUNT_ABS, None, 6, 0), f"largest legal amount USD {amount:,.0f}m")

    # market
    add("high_var95", "market", "market_risk.hist_var95_1d", risk.hist_var95_1d,
        _tiered(risk.hist_var95_1d, VAR95_HIGH, VAR95_MED, 6, 3), f"1-day 95% VaR {risk.hist_var95_1d:.2%}")
    add("high_volatility", "market", "market_risk.ann_volatility", risk.ann_volatility,
        _tiered(risk.ann_volatility, VOL_HIGH, VOL_MED, 6, 3), f"annualised volatility {risk.ann_volatility:.1%}")
    add("deep_drawdown", "market", "market_risk.max_drawdown", risk.max_drawdown,
        _tiered(risk.max_drawdown, DD_HIGH, DD_MED, 6, 3, below=True), f"max drawdown {risk.max_drawdown:.1%}")
    add("high_beta", "market", "market_risk.beta_vs_benchmark", risk.beta_vs_benchmark,
        _tiered(risk.beta_vs_benchmark, BETA_HIGH, None, 4, 0),
        f"beta {risk.beta_vs_benchmark:.2f}" if risk.beta_vs_benchmark is not None else "")
    add("negative_sharpe", "market", "market_risk.sharpe_ratio", risk.sharpe_ratio,
        _tiered(risk.sharpe_ratio, 0.0, None, 3, 0, below=True), f"Sharpe {risk.sharpe_ratio:.2f}" if risk.sharpe_ratio is not None else "")

    # valuation
    pe, ev, ps, pb = (peers.get(k) for k in ("pe", "ev_ebitda", "ps", "pb"))
    pe_prem = pe.premium_vs_median if pe else None
    add("pe_premium", "valuation", "peers.pe.premium_vs_median", pe_prem,
        _tiered(pe_prem, PE_PREMIUM_HIGH, PE_PREMIUM_MED, 5, 2), f"P/E {pe_prem:+.0%} vs peer median" if pe_prem is not None else "")
    ev_prem = ev.premium_vs_median if ev else None
    add("ev_ebitda_premium", "valuation", "peers.ev_ebitda.premium_vs_median", ev_prem,
        _tiered(ev_prem, EV_EBITDA_PREMIUM, None, 3, 0), f"EV/EBITDA {ev_prem:+.0%} vs peer median" if ev_prem is not None else "")
    other = [(m.label, m.premium_vs_median) for m in (ps, pb) if m and m.premium_vs_median is not None]
    if other:
        label, prem = max(other, key=lambda x: x[1])
        add("ps_pb_premium", "valuation", f"peers.{label.lower().replace('/', '')}.premium_vs_median", prem,
            _tiered(prem, PS_PB_PREMIUM, None, 2, 0), f"{label} {prem:+.0%} vs peer median")
    else:
        skipped.append("peers.ps/pb.premium_vs_median")

    # sentiment
    if sentiment.n_scored >= SENTIMENT_MIN_N:
        if sentiment.net_score <= SENTIMENT_NET_BAD:
            add("negative_headlines", "sentiment", "sentiment.net_score", sentiment.net_score,
                (5.0, SENTIMENT_NET_BAD), f"net headline score {sentiment.net_score:+.2f} over {sentiment.n_scored}")
        else:
            add("bearish_headlines", "sentiment", "sentiment.bearish_share", sentiment.bearish_share,
                _tiered(sentiment.bearish_share, BEARISH_SHARE_BAD, None, 3, 0),
                f"{sentiment.bearish_share:.0%} of {sentiment.n_scored} headlines bearish")
    else:
        skipped.append("sentiment.net_score")

    cats = {c: 0.0 for c in CATEGORY_CAPS}
    for factor in factors:
        cats[factor.category] += factor.points
    cats = {c: min(v, CATEGORY_CAPS[c]) for c, v in cats.items()}
    total = round(min(100.0, sum(cats.values())), 2)
    rec: Recommendation = "proceed" if total < RENEGOTIATE_AT else "renegotiate" if total < WALK_AWAY_AT else "walk_away"
    drivers = sorted(factors, key=lambda f: -f.points)[:3]
    summary = (f"{fin.ticker or risk.ticker}: risk score {total:g}/100 -> {rec}"
               + ("; main drivers: " + "; ".join(f"{f.note} (+{f.points:g})" for f in drivers) if drivers else ""))
    return Scorecard(ticker=risk.ticker, total_score=total, recommendation=rec, category_scores=cats,
                     factors=factors, not_assessed=sorted(set(skipped)), summary=summary[:400])
