"""Dossier financials from XBRL facts: which us-gaap concepts give each dossier metric, and how the
figures of several annual reports become one ``financials.csv`` row per (fiscal year, metric), each
naming the accession number of the filing it came from.

The input is a list of :class:`Fact` (one reported value: concept, unit, period, filing), as the SEC's
``companyfacts`` API serves them (``data.sec.gov/api/xbrl/companyfacts/CIK##########.json``: per
concept and unit, rows with ``start``/``end``, ``val``, ``accn``, ``form``, ``filed``; see
https://www.sec.gov/search-filings/edgar-application-programming-interfaces) or as an inline-XBRL
document tags them.

Rules (the dossier's, :data:`chainproof.tools.dossier_model.FINANCIAL_METRICS`):

* only annual reports (``10-K``, ``10-K/A``, ``10-KT``), filed on or before ``as_of``;
* a fiscal year is the calendar year its period ends in (the data bundle's convention, and what
  :func:`~chainproof.tools.dossier_model.fiscal_year_end_date` assumes); flows need a period of
  350-380 days, balances an instant at a fiscal-year end reported by some annual report;
* a year reported by several filings takes the latest filed (a restatement wins);
* values in USD become USD millions; ``diluted_eps`` stays USD per share; ``capital_expenditures``
  is negated (the dossier stores it as the cash-flow statement prints it, negative);
* ``total_debt`` sums the debt concepts of one filing (short-term borrowings, commercial paper,
  current and non-current long-term debt, or long-term debt including its current part);
* the last ``n_years`` fiscal years of the latest annual report are kept (3 by default, as
  :func:`chainproof.tools.dossier_builder.build_dossier`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

__all__ = ["ANNUAL_FORMS", "CONCEPTS", "DEBT_CONCEPTS", "Fact", "facts_from_companyfacts", "financial_rows"]

ANNUAL_FORMS = frozenset({"10-K", "10-K/A", "10-KT", "10-KT/A"})

#: dossier metric -> us-gaap concepts, first found wins (per fiscal year and filing).
CONCEPTS: Mapping[str, tuple[str, ...]] = {
    "revenue": ("Revenues", "RevenueFromContractWithCustomerExcludingAssessedTax", "SalesRevenueNet",
                "RevenueFromContractWithCustomerIncludingAssessedTax", "SalesRevenueGoodsNet"),
    "operating_income": ("OperatingIncomeLoss",),
    "net_income": ("NetIncomeLoss", "NetIncomeLossAvailableToCommonStockholdersBasic"),
    "total_assets": ("Assets",),
    "total_liabilities": ("Liabilities",),
    "total_equity": ("StockholdersEquity",
                     "StockholdersEquityIncludingPortionAttributableToNoncontrollingInterest"),
    "current_assets": ("AssetsCurrent",),
    "current_liabilities": ("LiabilitiesCurrent",),
    "interest_expense": ("InterestExpense", "InterestExpenseDebt", "InterestExpenseNonoperating"),
    "operating_cash_flow": ("NetCashProvidedByUsedInOperatingActivities",
                            "NetCashProvidedByUsedInOperatingActivitiesContinuingOperations"),
    "capital_expenditures": ("PaymentsToAcquirePropertyPlantAndEquipment", "PaymentsToAcquireProductiveAssets"),
    "cash_and_equivalents": ("CashAndCashEquivalentsAtCarryingValue",
                             "CashCashEquivalentsRestrictedCashAndRestrictedCashEquivalents"),
    "diluted_eps": ("EarningsPerShareDiluted",),
}
#: total_debt: alternative sets of concepts, summed; the first set with any value in a filing wins.
DEBT_CONCEPTS: tuple[tuple[str, ...], ...] = (
    ("ShortTermBorrowings", "CommercialPaper", "LongTermDebtCurrent", "LongTermDebtNoncurrent"),
    ("ShortTermBorrowings", "CommercialPaper", "LongTermDebt"),
    ("DebtCurrent", "LongTermDebtNoncurrent"),
)
_INSTANT = {"total_assets", "total_liabilities", "total_equity", "current_assets", "current_liabilities",
            "cash_and_equivalents", "total_debt"}


@dataclass(frozen=True)
class Fact:
    """One reported XBRL value: ``concept`` (us-gaap local name), ``unit`` ("USD", "USD/shares"),
    ``start`` (``None`` for an instant), ``end``, ``value`` as reported (USD, not millions), and
    the filing: ``accession`` ("0000066740-18-000013"), ``form`` and ``filed`` date."""

    concept: str
    unit: str
    start: date | None
    end: date
    value: float
    accession: str
    form: str
    filed: date


def facts_from_companyfacts(doc: Mapping[str, object]) -> list[Fact]:
    """The us-gaap facts of a ``companyfacts`` JSON document (USD and USD/shares units only).
    Raises ``ValueError`` naming the concept when a row lacks ``end``, ``val``, ``accn`` or
    ``filed``."""
    out: list[Fact] = []
    facts = doc.get("facts") or {}
    gaap = facts.get("us-gaap", {}) if isinstance(facts, Mapping) else {}
    wanted = {c for cs in CONCEPTS.values() for c in cs} | {c for cs in DEBT_CONCEPTS for c in cs}
    for concept, body in gaap.items():
        if concept not in wanted:
            continue
        for unit, rows in (body.get("units") or {}).items():
            if unit not in ("USD", "USD/shares"):
                continue
            for row in rows:
                try:
                    out.append(Fact(concept, unit, date.fromisoformat(row["start"]) if row.get("start") else None,
                                    date.fromisoformat(row["end"]), float(row["val"]), str(row["accn"]),
                                    str(row.get("form", "")), date.fromisoformat(row["filed"])))
                except (KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"companyfacts us-gaap:{concept} ({unit}): malformed row {row!r} ({exc})") from None
    return out


def _is_year(f: Fact) -> bool:
    return f.start is not None and 350 <= (f.end - f.start).days <= 380


def financial_rows(facts: Iterable[Fact], as_of: date, *, n_years: int = 3,
                   describe: Mapping[str, str] | None = None) -> list[tuple[int, str, float, str]]:
    """``[(fiscal_year, metric, value, source)]`` sorted by year then metric (rules in the module
    docstring). ``source`` reads ``"10-K 0000066740-18-000013 filed 2018-02-08: us-gaap:Revenues"``;
    ``describe`` may map an accession number to a longer text put in its place."""
    annual = [f for f in facts if f.form in ANNUAL_FORMS and f.filed <= as_of]
    if not annual:
        return []
    year_ends = {f.end for f in annual if _is_year(f)}
    latest_end = max(year_ends) if year_ends else max(f.end for f in annual)
    years = set(range(latest_end.year - n_years + 1, latest_end.year + 1))
    # (fy, metric) -> (filed, accession, value, concept label)
    best: dict[tuple[int, str], tuple[date, str, float, str]] = {}

    def offer(fy: int, metric: str, f: Fact, value: float, label: str) -> None:
        key = (fy, metric)
        if fy in years and (key not in best or best[key][:2] < (f.filed, f.accession)):
            best[key] = (f.filed, f.accession, value, label)

    grouped: dict[tuple[str, str, date], dict[str, Fact]] = {}  # (accession, kind, end) -> concept -> fact
    for f in annual:
        if (f.start is None and f.end in year_ends) or _is_year(f):
            grouped.setdefault((f.accession, "i" if f.start is None else "d", f.end), {}).setdefault(f.concept, f)
    for (_acc, kind, end), concepts in grouped.items():
        for metric, names in CONCEPTS.items():
            if (metric in _INSTANT) != (kind == "i"):
                continue
            unit = "USD/shares" if metric == "diluted_eps" else "USD"
            hit = next((concepts[n] for n in names if n in concepts and concepts[n].unit == unit), None)
            if hit is None:
                continue
            value = hit.value if metric == "diluted_eps" else hit.value / 1e6
            if metric == "capital_expenditures":
                value = -abs(value)
            elif metric == "interest_expense":
                value = abs(value)
            offer(end.year, metric, hit, round(value, 6), f"us-gaap:{hit.concept}")
        if kind == "i":
            for names in DEBT_CONCEPTS:
                parts = [concepts[n] for n in names if n in concepts and concepts[n].unit == "USD"]
                if parts:
                    offer(end.year, "total_debt", parts[0], round(sum(p.value for p in parts) / 1e6, 6),
                          " + ".join(f"us-gaap:{p.concept}" for p in parts))
                    break
    out = []
    for (fy, metric), (filed, acc, value, label) in sorted(best.items()):
        where = (describe or {}).get(acc) or f"10-K {acc} filed {filed.isoformat()}"
        out.append((fy, metric, value, f"{where}: {label}"))
    return out
