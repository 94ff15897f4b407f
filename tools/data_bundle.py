"""Reading the shared data bundle that dossiers are built from (see :mod:`chainproof.tools.dossier_builder`
for its layout and the rules): CSV files, price series, the 10-K manifest and financials, and the
peer snapshot in force on a date. Raises :class:`DossierError` naming a missing bundle file.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from chainproof.errors import DossierError
from chainproof.tools.input_files import open_text

__all__ = ["Filing", "annual_filings", "filing_financials", "glob_latest", "need_file", "peer_snapshot",
           "prices_by_ticker", "read_rows"]

_KEY_METRICS = {
    "revenue": "revenue", "operating_income": "operating_income", "net_income_attributable": "net_income",
    "diluted_eps": "diluted_eps", "total_assets": "total_assets", "total_liabilities": "total_liabilities",
    "total_equity": "total_equity", "cash_and_equivalents": "cash_and_equivalents",
    "operating_cash_flow": "operating_cash_flow", "capital_expenditures": "capital_expenditures",
}

# (metric, statement, regex over the normalised lower-case line label). Matching lines of one filing and
# fiscal year are summed for total_debt; the first match is used for the others.
_LABEL_RULES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("current_assets", "balance_sheet", re.compile(r"^total current assets$")),
    ("current_liabilities", "balance_sheet",
     re.compile(r"^(total current liabilities|\[unlabeled subtotal line; preceding heading: total current liabilities\])$")),
    ("total_debt", "balance_sheet", re.compile(
        r"^(short-term (debt|borrowings)|loans and notes payable|notes payable|commercial paper"
        r"|current (portion|maturities) of long-term debt|debt maturing within one year|long-term debt)")),
    ("interest_expense", "income_statement",
     re.compile(r"^(total )?interest (and debt )?expense(, net| net)?(\b|$)(?!.*\bincome\b)")),
)

@dataclass(frozen=True)
class Filing:
    """One annual report (10-K) of the bundle's ``manifest.csv``: document name, ticker, company,
    fiscal year and fiscal-year-end date."""

    name: str
    ticker: str
    company: str
    fiscal_year: int
    fye: date


def need_file(path: Path) -> Path:
    """``path`` if it exists, else :class:`DossierError` naming it."""
    if not path.exists():
        raise DossierError(f"data bundle: missing {path}")
    return path


def glob_latest(root: Path, pattern: str) -> Path:
    """The last (by name, so the latest dated) file under ``root`` matching ``pattern``; raises
    :class:`DossierError` when none does."""
    found = sorted(root.glob(pattern))
    if not found:
        raise DossierError(f"data bundle: no file matching {pattern} under {root}")
    return found[-1]


@lru_cache(maxsize=16)
def read_rows(path: Path) -> tuple[dict[str, str], ...]:
    """The rows of a CSV file (``.gz`` read compressed) as dicts of strings; cached per path."""
    return tuple(csv.DictReader(open_text(path, "data bundle file")))


@lru_cache(maxsize=4)
def prices_by_ticker(path: Path) -> dict[str, list[tuple[str, str]]]:
    """``{ticker: [(date ISO, close as text), ...]}`` of a bundle price file (rows without a close skipped)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for r in read_rows(path):
        if r.get("close"):
            out.setdefault(r["ticker"], []).append((r["date"], r["close"]))
    return out


def annual_filings(bundle: Path, ticker: str) -> list[Filing]:
    """The 10-Ks of ``ticker`` in the bundle, oldest fiscal-year end first."""
    docs = []
    for r in read_rows(need_file(bundle / "sec_10k_filings" / "manifest.csv")):
        if r["ticker"] != ticker or "_10K" not in r["doc_name"]:
            continue
        fye = datetime.strptime(r["fiscal_year_end"].strip(), "%B %d, %Y").date()
        docs.append(Filing(r["doc_name"], ticker, r["company"], int(r["doc_period"]), fye))
    return sorted(docs, key=lambda x: x.fye)


def filing_financials(bundle: Path, ticker: str, docs: Sequence[Filing], n_years: int,
                extra: Iterable[tuple[int, str, float, str]]) -> list[tuple[int, str, float, str]]:
    """``[(fiscal_year, metric, value, source)]`` for the last ``n_years`` fiscal years of the latest
    filing in ``docs`` (values in USD millions, diluted EPS in USD). Rows come from
    ``key_financials.csv`` and the label rules over ``statement_lines.csv``; a year reported by two
    filings takes the later one; ``total_liabilities`` is derived as assets - equity when not
    printed; ``extra`` rows fill metrics still missing."""
    if not docs:
        return []
    years = set(range(docs[-1].fiscal_year - n_years + 1, docs[-1].fiscal_year + 1))
    rank = {d.name: i for i, d in enumerate(docs)}  # later filing = higher rank
    best: dict[tuple[int, str], tuple[int, float, str]] = {}

    def offer(fy: int, metric: str, doc: str, value: float, source: str) -> None:
        if fy in years and doc in rank and ((fy, metric) not in best or best[(fy, metric)][0] < rank[doc]):
            best[(fy, metric)] = (rank[doc], value, source)

    for r in read_rows(need_file(bundle / "sec_10k_filings" / "key_financials.csv")):
        metric = _KEY_METRICS.get(r["metric"])
        if r["ticker"] != ticker or metric is None:
            continue
        raw = r["value"] if metric == "diluted_eps" else r["value_usd_millions"]
        if not raw:
            continue
        offer(int(r["fiscal_year"]), metric, r["source_doc"], float(raw),
              f"{r['source_doc']} p.{r['pdf_page']} {r['statement']}: {r['source_line_label']}")

    grouped: dict[tuple[str, int, str], list[tuple[str, float, str]]] = {}
    seen: set[tuple[str, str, int]] = set()
    for r in read_rows(need_file(bundle / "sec_10k_filings" / "statement_lines.csv")):
        if r["ticker"] != ticker or r["doc_name"] not in rank or not r["value"] or not r["fiscal_year"]:
            continue
        label = " ".join(r["line_label"].split()).lower()
        for metric, statement, pattern in _LABEL_RULES:
            if r["statement"] == statement and pattern.search(label) and "accrued interest" not in label:
                key = (r["doc_name"], r["line_label"], int(r["fiscal_year"]))
                if key in seen:
                    break  # same line printed twice: count once
                seen.add(key)
                scale = 1 / 1000 if r["units"] == "thousands" else 1.0
                grouped.setdefault((r["doc_name"], int(r["fiscal_year"]), metric), []).append(
                    (r["line_label"], float(r["value"]) * scale, f"p.{r['pdf_page']} {statement}"))
                break
    for (doc, fy, metric), lines in grouped.items():
        if metric == "total_debt":
            value = sum(v for _, v, _ in lines)
            labels = " + ".join(lbl[:60] for lbl, _, _ in lines)
        else:
            value = abs(lines[0][1]) if metric == "interest_expense" else lines[0][1]
            labels = lines[0][0][:80]
        offer(fy, metric, doc, round(value, 6), f"{doc} {lines[0][2]}: {labels}")

    out = {k: (v[1], v[2]) for k, v in best.items()}
    for fy in years:  # total liabilities not printed -> assets - equity
        if (fy, "total_liabilities") not in out and (fy, "total_assets") in out and (fy, "total_equity") in out:
            out[(fy, "total_liabilities")] = (
                round(out[(fy, "total_assets")][0] - out[(fy, "total_equity")][0], 6),
                "derived: total_assets - total_equity (no total printed; includes any noncontrolling interest)")
    for fy, metric, value, source in extra:
        if fy in years:
            out.setdefault((fy, metric), (value, source))
    return [(fy, m, v, s) for (fy, m), (v, s) in sorted(out.items())]


def peer_snapshot(bundle: Path, as_of: date) -> tuple[date, Path]:
    """``(date, path)`` of the latest constituents snapshot dated on or before ``as_of`` (else the
    earliest one). Raises :class:`DossierError` when the bundle has none."""
    found = []
    for p in (bundle / "industry_comparison").glob("sp500_constituents_financials_snapshot_*.csv"):
        m = re.search(r"(\d{4}-\d{2}-\d{2})", p.name)
        if m:
            found.append((date.fromisoformat(m.group(1)), p))
    if not found:
        raise DossierError(f"data bundle: no industry_comparison/sp500_constituents_financials_snapshot_*.csv in {bundle}")
    found.sort()
    before = [f for f in found if f[0] <= as_of]
    return before[-1] if before else found[0]
