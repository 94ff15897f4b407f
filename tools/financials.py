"""Financial health of the target from its statement figures (``financials.csv``).

Per fiscal year ending before ``as_of`` (amounts in USD millions, ratios as fractions or multiples):

- ``revenue_growth``     = revenue_t / revenue_{t-1} - 1 (needs the prior year in the dossier)
- ``operating_margin``   = operating_income / revenue
- ``net_margin``         = net_income / revenue   (net income attributable to the parent)
- ``current_ratio``      = current_assets / current_liabilities
- ``debt_to_equity``     = total_debt / total_equity          (None when equity <= 0)
- ``liabilities_to_equity`` = total_liabilities / total_equity (None when equity <= 0)
- ``interest_coverage``  = operating_income / interest_expense (EBIT coverage; interest expense > 0)
- ``free_cash_flow``     = operating_cash_flow + capital_expenditures (capex is negative, as printed)
- ``fcf_margin``         = free_cash_flow / revenue
- ``revenue_cagr``       = (revenue_last / revenue_first) ** (1 / (last_fy - first_fy)) - 1 over the years used

A ratio whose inputs are absent is ``None`` and a note says it is not available, naming the
missing metric; nothing crashes. A ratio that does not apply is named in ``not_applicable``
instead: ``current_ratio`` when the company is a financial one (the dossier's sector is GICS
"Financials", as American Express's is in the data bundle and the peers file) and its balance
sheet is unclassified (neither current assets nor current liabilities; ASC 942-210 / Regulation S-X
Article 9 balance sheets of banks have no current/non-current split). Missing current assets of
any other company are "not available", never "not applicable".
Flags use the latest fiscal year that has the ratio; thresholds are the module constants below.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from chainproof.tools.dossier import Dossier, check_as_of

__all__ = ["YearFigures", "FinancialFlag", "FinancialHealth", "financial_health", "THRESHOLDS"]

# Thresholds (rule-of-thumb credit-analysis levels; each flag says which one fired).
#: EBIT / interest below 3x is where rating-agency ratio guides move from investment-grade to
#: speculative-grade coverage levels.
MIN_INTEREST_COVERAGE = 3.0
#: Current assets not covering current liabilities (classic liquidity test).
MIN_CURRENT_RATIO = 1.0
#: Debt above twice book equity: highly leveraged for an industrial/consumer company.
MAX_DEBT_TO_EQUITY = 2.0
#: Liabilities above three times book equity.
MAX_LIABILITIES_TO_EQUITY = 3.0
#: Operating margin under 5 % leaves little room for shocks.
MIN_OPERATING_MARGIN = 0.05
#: Sectors (lower case) whose companies report unclassified balance sheets: banks, insurers, card issuers.
UNCLASSIFIED_SECTORS = frozenset({"financials"})

THRESHOLDS = {
    "min_interest_coverage": MIN_INTEREST_COVERAGE,
    "min_current_ratio": MIN_CURRENT_RATIO,
    "max_debt_to_equity": MAX_DEBT_TO_EQUITY,
    "max_liabilities_to_equity": MAX_LIABILITIES_TO_EQUITY,
    "min_operating_margin": MIN_OPERATING_MARGIN,
}


class YearFigures(BaseModel):
    """Figures and ratios of one fiscal year (USD millions; ratios as fractions / multiples)."""

    model_config = ConfigDict(frozen=True)

    fiscal_year: int
    fiscal_year_end: date
    revenue: float | None = None
    operating_income: float | None = None
    net_income: float | None = None
    free_cash_flow: float | None = None
    total_debt: float | None = None
    total_equity: float | None = None
    revenue_growth: float | None = None
    operating_margin: float | None = None
    net_margin: float | None = None
    current_ratio: float | None = None
    debt_to_equity: float | None = None
    liabilities_to_equity: float | None = None
    interest_coverage: float | None = None
    fcf_margin: float | None = None
    not_applicable: list[str] = Field(default_factory=list)  # ratios that do not apply to this company


class FinancialFlag(BaseModel):
    """A threshold breach, e.g. code ``low_interest_coverage``, evidence ``financials.interest_coverage``."""

    model_config = ConfigDict(frozen=True)

    code: str
    evidence_key: str
    fiscal_year: int
    value: float
    threshold: float
    message: str


class FinancialHealth(BaseModel):
    """Result of :func:`financial_health`."""

    model_config = ConfigDict(frozen=True)

    ticker: str
    as_of: date
    fiscal_years: list[int]
    latest_fiscal_year: int | None
    years: list[YearFigures]
    revenue_cagr: float | None = None
    cagr_from_year: int | None = None
    cagr_to_year: int | None = None
    flags: list[FinancialFlag] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=lambda: dict(THRESHOLDS))

    def year(self, fiscal_year: int) -> YearFigures | None:
        """Figures of ``fiscal_year`` or ``None`` when it was not analysed."""
        return next((y for y in self.years if y.fiscal_year == fiscal_year), None)


def _ratio(num: float | None, den: float | None, *, positive_den: bool = False) -> float | None:
    if num is None or den is None or den == 0 or (positive_den and den < 0):
        return None
    return round(num / den, 6)


def financial_health(d: Dossier, as_of: date) -> FinancialHealth:
    """Statement ratios and red flags of ``d`` for the fiscal years that ended before ``as_of``.

    Returns :class:`FinancialHealth` (amounts in USD millions, ratios as fractions/multiples; formulas in
    the module docstring). Raises :class:`chainproof.tools.dossier.DossierError` when ``as_of`` is outside the
    dossier's price data (same check as every tool). Missing inputs give ``None`` plus a note.
    """
    check_as_of(d, as_of)
    years = [fy for fy in d.fiscal_years() if d.fiscal_year_end(fy) < as_of]
    later = [fy for fy in d.fiscal_years() if fy not in years]
    notes: list[str] = []
    if later:
        notes.append(f"fiscal years ending on/after as_of ignored: {', '.join(map(str, later))}")
    if not years:
        notes.append(f"no fiscal year ending before {as_of.isoformat()} in financials.csv: nothing to analyse")
        return FinancialHealth(ticker=d.ticker, as_of=as_of, fiscal_years=[], latest_fiscal_year=None, years=[],
                               notes=notes)

    missing: dict[str, list[str]] = {}
    not_applicable: dict[str, list[str]] = {}

    def need(ratio: str, fy: int, *metrics: str) -> None:
        absent = [m for m in metrics if d.financial(m, fy) is None]
        if absent:
            missing.setdefault(f"{ratio} (missing {', '.join(absent)})", []).append(str(fy))

    out: list[YearFigures] = []
    for fy in years:
        def g(metric: str, fy: int = fy) -> float | None:
            return d.financial(metric, fy)

        rev, op, ni = g("revenue"), g("operating_income"), g("net_income")
        ocf, capex = g("operating_cash_flow"), g("capital_expenditures")
        fcf = None if ocf is None or capex is None else round(ocf + capex, 6)
        equity = g("total_equity")
        prev_rev = d.financial("revenue", fy - 1)
        interest = g("interest_expense")
        growth = _ratio(rev, prev_rev, positive_den=True)
        if growth is not None:
            growth = round(growth - 1.0, 6)
        elif rev is not None:
            missing.setdefault("revenue_growth (missing prior-year revenue)", []).append(str(fy))
        need("operating_margin", fy, "revenue", "operating_income")
        unclassified = (d.meta.sector.strip().lower() in UNCLASSIFIED_SECTORS
                        and g("current_assets") is None and g("current_liabilities") is None)
        if unclassified:
            not_applicable.setdefault("current_ratio", []).append(str(fy))
        else:
            need("current_ratio", fy, "current_assets", "current_liabilities")
        need("debt_to_equity", fy, "total_debt", "total_equity")
        need("interest_coverage", fy, "operating_income", "interest_expense")
        need("free_cash_flow", fy, "operating_cash_flow", "capital_expenditures")
        if equity is not None and equity <= 0:
            notes.append(f"FY{fy}: total_equity {equity:,.0f} <= 0, leverage ratios not meaningful")
        out.append(YearFigures(
            fiscal_year=fy, fiscal_year_end=d.fiscal_year_end(fy), revenue=rev, operating_income=op, net_income=ni,
            free_cash_flow=fcf, total_debt=g("total_debt"), total_equity=equity, revenue_growth=growth,
            operating_margin=_ratio(op, rev, positive_den=True), net_margin=_ratio(ni, rev, positive_den=True),
            current_ratio=_ratio(g("current_assets"), g("current_liabilities"), positive_den=True),
            debt_to_equity=_ratio(g("total_debt"), equity, positive_den=True),
            liabilities_to_equity=_ratio(g("total_liabilities"), equity, positive_den=True),
            interest_coverage=_ratio(op, interest if interest and interest > 0 else None),
            fcf_margin=_ratio(fcf, rev, positive_den=True), not_applicable=["current_ratio"] if unclassified else []))
    for ratio, fys in not_applicable.items():
        notes.append(f"{ratio} not applicable for FY{', FY'.join(fys)} (a financial company's unclassified balance "
                     "sheet: no current assets or liabilities)")
    for what, fys in missing.items():
        notes.append(f"{what.split(' ')[0]} not available for FY{', FY'.join(fys)} {what[what.index('('):]}")

    with_rev = [(y.fiscal_year, y.revenue) for y in out if y.revenue is not None]
    cagr: float | None = None
    cagr_from: int | None = None
    cagr_to: int | None = None
    if len(with_rev) >= 2 and with_rev[0][1] > 0 and with_rev[-1][1] > 0:
        (fy_a, rev_a), (fy_b, rev_b) = with_rev[0], with_rev[-1]
        cagr = round((rev_b / rev_a) ** (1.0 / (fy_b - fy_a)) - 1.0, 6)
        cagr_from, cagr_to = fy_a, fy_b

    flags: list[FinancialFlag] = []

    def latest(attr: str) -> YearFigures | None:
        return next((y for y in reversed(out) if getattr(y, attr) is not None), None)

    def flag(attr: str, code: str, bad, threshold: float, message: str) -> None:
        y = latest(attr)
        if y is not None and bad(getattr(y, attr)):
            v = getattr(y, attr)
            flags.append(FinancialFlag(code=code, evidence_key=f"financials.{attr}", fiscal_year=y.fiscal_year,
                                       value=v, threshold=threshold, message=message.format(v=v, fy=y.fiscal_year)))

    flag("interest_coverage", "low_interest_coverage", lambda v: v < MIN_INTEREST_COVERAGE, MIN_INTEREST_COVERAGE,
         "interest coverage below 3x: {v:.2f}x in FY{fy}")
    flag("current_ratio", "low_current_ratio", lambda v: v < MIN_CURRENT_RATIO, MIN_CURRENT_RATIO,
         "current ratio below 1.0x: {v:.2f}x in FY{fy}")
    flag("debt_to_equity", "high_debt_to_equity", lambda v: v > MAX_DEBT_TO_EQUITY, MAX_DEBT_TO_EQUITY,
         "debt/equity above 2.0x: {v:.2f}x in FY{fy}")
    flag("liabilities_to_equity", "high_liabilities_to_equity", lambda v: v > MAX_LIABILITIES_TO_EQUITY,
         MAX_LIABILITIES_TO_EQUITY, "liabilities/equity above 3.0x: {v:.2f}x in FY{fy}")
    flag("operating_margin", "thin_operating_margin", lambda v: v < MIN_OPERATING_MARGIN, MIN_OPERATING_MARGIN,
         "operating margin below 5%: {v:.1%} in FY{fy}")
    flag("free_cash_flow", "negative_free_cash_flow", lambda v: v < 0, 0.0,
         "negative free cash flow: {v:,.0f} USD m in FY{fy}")
    flag("net_income", "net_loss", lambda v: v < 0, 0.0, "net loss: {v:,.0f} USD m in FY{fy}")
    flag("revenue_growth", "revenue_decline", lambda v: v < 0, 0.0, "revenue declined {v:.1%} in FY{fy}")
    flag("total_equity", "negative_equity", lambda v: v <= 0, 0.0, "book equity not positive: {v:,.0f} USD m in FY{fy}")
    if cagr is not None and cagr_to is not None and cagr < 0:
        flags.append(FinancialFlag(code="revenue_cagr_negative", evidence_key="financials.revenue_cagr",
                                   fiscal_year=cagr_to, value=cagr, threshold=0.0,
                                   message=f"revenue shrank {cagr:.1%} a year FY{cagr_from}-FY{cagr_to}"))
    return FinancialHealth(ticker=d.ticker, as_of=as_of, fiscal_years=years, latest_fiscal_year=years[-1], years=out,
                           revenue_cagr=cagr, cagr_from_year=cagr_from, cagr_to_year=cagr_to, flags=flags, notes=notes)
