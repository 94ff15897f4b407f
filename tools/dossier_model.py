"""What a loaded dossier is: its read-only data classes (a loaded dossier never goes into graph
state itself), the accepted financial metrics and the ``as_of`` limits. Loading lives in
:mod:`chainproof.tools.dossier_files`; the public face and the folder layout in
:mod:`chainproof.tools.dossier`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

__all__ = ["FINANCIAL_METRICS", "MAX_DAYS_AFTER_LAST_PRICE", "MIN_HISTORY_DAYS", "Dossier", "DossierMeta",
           "FinancialRow", "Headline", "PeerRow", "PricePoint", "RatePoint", "fiscal_year_end_date"]


#: Metrics accepted in ``financials.csv`` (USD millions unless noted).
FINANCIAL_METRICS: Mapping[str, str] = {
    "revenue": "net sales / total revenues, USD millions",
    "operating_income": "operating income as printed, USD millions",
    "net_income": "net income attributable to the parent, USD millions",
    "total_assets": "USD millions, fiscal year end",
    "total_liabilities": "USD millions, fiscal year end",
    "total_equity": "shareholders' equity, USD millions, fiscal year end",
    "current_assets": "USD millions, fiscal year end",
    "current_liabilities": "USD millions, fiscal year end",
    "total_debt": "short-term borrowings + current portion of long-term debt + long-term debt, USD millions",
    "interest_expense": "positive number, USD millions",
    "operating_cash_flow": "USD millions",
    "capital_expenditures": "negative, as printed in the cash-flow statement, USD millions",
    "cash_and_equivalents": "USD millions, fiscal year end",
    "diluted_eps": "USD per share",
}

#: check_as_of: trading days of price history required strictly before ``as_of``.
MIN_HISTORY_DAYS = 60
#: check_as_of: ``as_of`` may be at most this many calendar days after the last price.
MAX_DAYS_AFTER_LAST_PRICE = 10


# --------------------------------------------------------------------------------------------
# Data classes (a loaded dossier is read-only and never goes into graph state itself)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DossierMeta:
    """Contents of ``dossier.toml``."""

    ticker: str
    name: str
    sector: str
    currency: str
    units: str
    fiscal_year_end: str  # "MM-DD"
    peer_snapshot_date: date
    sources: tuple[str, ...]
    notes: str
    as_of: date | None = None


@dataclass(frozen=True)
class FinancialRow:
    """One ``financials.csv`` row: ``value`` in USD millions (``diluted_eps`` in USD/share)."""

    fiscal_year: int
    metric: str
    value: float
    source: str


@dataclass(frozen=True)
class PricePoint:
    """A daily close (``prices.csv`` / ``benchmark.csv``)."""

    date: date
    close: float


@dataclass(frozen=True)
class RatePoint:
    """Monthly risk-free rate: ``rf_pct`` percent per month for calendar month ``year``-``month``."""

    year: int
    month: int
    rf_pct: float

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class PeerRow:
    """One ``peers.csv`` row; ``None`` = not available. market_cap/ebitda in USD millions."""

    ticker: str
    name: str
    sector: str
    price: float | None
    pe: float | None
    ps: float | None
    pb: float | None
    ev_ebitda: float | None
    market_cap: float | None
    ebitda: float | None
    is_target: bool


@dataclass(frozen=True)
class Headline:
    """One ``headlines.csv`` row; ``date`` is ``None`` when undated."""

    date: date | None
    headline: str
    source: str


@dataclass(frozen=True, eq=False)
class Dossier:
    """A validated, loaded dossier (see module docstring for the file formats)."""

    path: Path
    meta: DossierMeta
    financials: tuple[FinancialRow, ...]
    prices: tuple[PricePoint, ...]  # ascending by date, unique dates
    benchmark: tuple[PricePoint, ...]  # ascending by date, unique dates
    rates: tuple[RatePoint, ...]  # ascending by month
    peers: tuple[PeerRow, ...]
    headlines: tuple[Headline, ...]
    texts: Mapping[str, str]  # risk_factors, legal_proceedings, legal_note ("" when absent)
    _fin_index: Mapping[tuple[int, str], FinancialRow] = field(default_factory=dict, repr=False)

    @property
    def ticker(self) -> str:
        return self.meta.ticker

    def financial(self, metric: str, fiscal_year: int) -> float | None:
        """Value of ``metric`` for ``fiscal_year`` or ``None`` when the row is absent."""
        row = self._fin_index.get((fiscal_year, metric))
        return None if row is None else row.value

    def financial_source(self, metric: str, fiscal_year: int) -> str | None:
        """``source`` text of the (fiscal_year, metric) row, or ``None`` when absent."""
        row = self._fin_index.get((fiscal_year, metric))
        return None if row is None else row.source

    def fiscal_years(self) -> list[int]:
        """All fiscal years with at least one financials row, ascending."""
        return sorted({r.fiscal_year for r in self.financials})

    def fiscal_year_end(self, fiscal_year: int) -> date:
        """Date on which ``fiscal_year`` ends (from ``fiscal_year_end`` MM-DD)."""
        return fiscal_year_end_date(self.meta.fiscal_year_end, fiscal_year)

    @property
    def target_peer(self) -> PeerRow | None:
        """The peers.csv row with is_target=true (exactly one in a loaded dossier)."""
        return next((p for p in self.peers if p.is_target), None)


def fiscal_year_end_date(mm_dd: str, fiscal_year: int) -> date:
    """``date(fiscal_year, MM, DD)``; Feb 29 falls back to Feb 28 in non-leap years."""
    month, day = (int(x) for x in mm_dd.split("-"))
    try:
        return date(fiscal_year, month, day)
    except ValueError:
        return date(fiscal_year, month, 28)
