"""The bundle's real filings (../shared/data/sec_10k_filings) written out as the analyst's text
files, and made-up 2023 market files for importing them (the bundle's prices end in 2018)."""

from __future__ import annotations

import gzip
from datetime import date, timedelta
from pathlib import Path

#: the --as-of of a 2023 import: the last business day of the made-up market files
AS_OF = "2023-09-29"


def filing_doc(bundle_root: Path, tmp_path: Path, folder: str, doc: str) -> Path:
    """``tmp_path/<doc>.txt``: the text of ``sec_10k_filings/<folder>/<doc>.txt.gz`` ("full_text",
    "other_filings_full_text")."""
    path = tmp_path / f"{doc}.txt"
    path.write_text(gzip.open(bundle_root / "sec_10k_filings" / folder / f"{doc}.txt.gz", "rt", encoding="utf-8").read(),
                    encoding="utf-8")
    return path


def market_2023(built: Path, tmp_path: Path) -> Path:
    """``tmp_path/market``: made-up prices, benchmark and rates for 2023 (to 2023-09-29) and the
    built dossier ``built``'s peers file (its names)."""
    market = tmp_path / "market"
    market.mkdir()
    days = [d for d in (date(2023, 1, 2) + timedelta(n) for n in range(272)) if d.weekday() < 5]
    for name, base in (("prices", 100.0), ("benchmark", 4000.0)):
        rows = [f"{d.isoformat()},{base * (1 + 0.001 * (i % 7)):.4f}" for i, d in enumerate(days)]
        market.joinpath(f"{name}.csv").write_text("date,close\n" + "\n".join(rows) + "\n", encoding="utf-8")
    market.joinpath("rates.csv").write_text("month,rf_pct\n" + "".join(f"2023-{m:02d},4.5\n" for m in range(1, 10)),
                                            encoding="utf-8")
    market.joinpath("peers.csv").write_bytes((built / "peers.csv").read_bytes())
    return market
