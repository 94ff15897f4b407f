"""Dossier test data: the shared bundle, built dossiers of the 12 companies, and a synthetic dossier
factory (fixtures re-exported by tests/tools/conftest.py)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from chainproof.tools.dossier_builder import build_dossier

BUNDLE = Path(__file__).resolve().parents[4] / "shared" / "data"  # shared/ beside the repository root
TARGETS = ("MMM", "PEP", "KO", "JNJ", "PFE", "BA", "LMT", "VZ", "BBY", "MGM", "AXP", "CVS")
DEMO_AS_OF = date(2018, 2, 8)


@pytest.fixture(scope="session")
def bundle_root() -> Path:
    """The shared data bundle (/work/shared/data beside the repo); tests needing it skip without it."""
    if not (BUNDLE / "sec_10k_filings" / "key_financials.csv").is_file():
        pytest.skip(f"shared data bundle not found at {BUNDLE.resolve()} (needed for real-data checks)")
    return BUNDLE.resolve()


@pytest.fixture(scope="session")
def built_dossiers(bundle_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """All 12 target dossiers built as of 2018-02-08 from the bundle (real texts copied), once per session."""
    out = tmp_path_factory.mktemp("dossiers")
    return {t: build_dossier(bundle_root, t, DEMO_AS_OF, out / t) for t in TARGETS}


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


SYNTH_AS_OF = date(2021, 6, 1)

#: FY2019/FY2020 figures chosen so every ratio is easy to check by hand; FY2021 ends after SYNTH_AS_OF.
SYNTH_FINANCIALS = {
    2019: {"revenue": 1000, "operating_income": 90, "net_income": 40},
    2020: {"revenue": 1100, "operating_income": 110, "net_income": 55, "current_assets": 300,
           "current_liabilities": 200, "total_debt": 400, "total_equity": 200, "total_liabilities": 800,
           "total_assets": 1000, "interest_expense": 50, "operating_cash_flow": 150, "capital_expenditures": -60,
           "cash_and_equivalents": 70, "diluted_eps": 1.25},
    2021: {"revenue": 5000},
}


def business_days(start: date, n: int) -> list[date]:
    days, d = [], start
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d += timedelta(days=1)
    return days


@pytest.fixture
def make_dossier(tmp_path: Path) -> Callable[..., Path]:
    """Factory: write a small valid dossier for ticker TST into tmp_path/<name>; keyword overrides replace
    whole files (``prices=[(date, close), ...]``, ``financials=..., peers=..., headlines=..., toml=str``)."""

    def make(name: str = "TST", **over) -> Path:
        root = tmp_path / name
        (root / "filings").mkdir(parents=True)
        toml = over.get("toml") or (
            'ticker = "TST"\nname = "Test Co"\nsector = "Industrials"\ncurrency = "USD"\n'
            'units = "USD millions"\nfiscal_year_end = "12-31"\npeer_snapshot_date = 2021-05-28\n'
            'sources = ["synthetic"]\nnotes = "synthetic test dossier"\n')
        (root / "dossier.toml").write_text(toml, encoding="utf-8")
        fin = over.get("financials")
        if fin is None:
            fin = [[fy, m, v, "synthetic"] for fy, ms in SYNTH_FINANCIALS.items() for m, v in ms.items()]
        _write_csv(root / "financials.csv", ["fiscal_year", "metric", "value", "source"], fin)
        days = business_days(date(2021, 1, 4), 120)
        prices = over.get("prices") or [(d, round(100 * (1.001 ** i) * (1 + 0.01 * ((-1) ** i)), 4))
                                        for i, d in enumerate(days)]
        _write_csv(root / "prices.csv", ["date", "close"], [[d.isoformat(), c] for d, c in prices])
        bench = over.get("benchmark") or [(d, round(3000 * (1.0005 ** i) * (1 + 0.005 * ((-1) ** i)), 4))
                                          for i, d in enumerate(days)]
        _write_csv(root / "benchmark.csv", ["date", "close"], [[d.isoformat(), c] for d, c in bench])
        _write_csv(root / "rates.csv", ["month", "rf_pct"],
                   over.get("rates") or [["2021-01", 0.01], ["2021-02", 0.02], ["2021-03", 0.03],
                                         ["2021-04", 0.04], ["2021-05", 0.05], ["2021-06", 0.06]])
        _write_csv(root / "peers.csv",
                   ["ticker", "name", "sector", "price", "pe", "ps", "pb", "ev_ebitda", "market_cap", "ebitda",
                    "is_target"],
                   over.get("peers") or [
                       ["TST", "Test Co", "Industrials", 50, 20, 2.0, 4.0, 12, 5000, 400, "true"],
                       ["AAA", "A", "Industrials", 10, 10, 1.0, 2.0, "", 1000, 100, "false"],
                       ["BBB", "B", "Industrials", 10, 15, 1.5, "", "", 1000, 100, "false"],
                       ["CCC", "C", "Industrials", 10, 25, 3.0, 3.0, "", 1000, 100, "false"],
                       ["DDD", "D", "Industrials", 10, 30, "", 5.0, "", 1000, 100, "false"],
                       ["EEE", "E", "Industrials", 10, -8, 0.5, 1.0, "", 1000, -5, "false"],
                   ])
        _write_csv(root / "headlines.csv", ["date", "headline", "source"],
                   over.get("headlines") or [
                       ["2021-03-01", "Test Co upgraded to outperform, price target raised to $60 from $50", "s"],
                       ["2021-04-01", "Test Co shares plunge after it misses estimates and cuts guidance", "s"],
                       ["2021-07-01", "Test Co soars to a record high after blowout quarter", "s"],
                       ["", "Test Co to present at an industry conference", "s"],
                   ])
        (root / "filings" / "risk_factors.txt").write_text(
            over.get("risk_factors", "Competition\nWe face strong competition in every market we serve.\n"),
            encoding="utf-8")
        (root / "filings" / "legal_proceedings.txt").write_text(
            over.get("legal_proceedings",
                     "Water Litigation\nIn 2020 the State of Ohio, through its Attorney General, filed a lawsuit "
                     "alleging contamination of drinking water and seeking $2.5 billion in damages; about 1,200 "
                     "plaintiffs have joined related class actions. An adverse verdict could have a material "
                     "adverse effect on our results.\n\nLease Commitments\nWe lease offices under operating "
                     "leases with payments of $12 million a year, which we do not consider material.\n"),
            encoding="utf-8")
        return root

    return make
