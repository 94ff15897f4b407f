"""What ``chainproof dossier import`` refuses or flags in the analyst's documents: a table-of-contents
entry taken for a section, a ``--10q`` that is not a later 10-Q of the same company, an ``--as-of``
before the 10-K was public, a core metric missing for the latest year. Real 10-Ks and 10-Qs of
../shared/data/sec_10k_filings (skipped without it) with made-up 2023 market files."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from chainproof.cli import app
from chainproof.tools.dossier import load_dossier
from testkit.filing_docs import AS_OF, filing_doc, market_2023


def _run(tenk: Path, market: Path, out: Path, *extra: str, as_of: str = AS_OF):
    args = ["dossier", "import", "--ticker", "MGM", "--10k", str(tenk), "--out", str(out), "--as-of", as_of,
            *(f"--{n}={market / f'{n}.csv'}" for n in ("prices", "benchmark", "rates", "peers")), *extra]
    return CliRunner().invoke(app, args)


def _said(result) -> str:
    return " ".join(result.output.split())


def _edit(path: Path, keep) -> Path:
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(x for i, x in enumerate(lines) if keep(i, x)) + "\n", encoding="utf-8")
    return path


def test_a_table_of_contents_entry_is_not_taken_for_item_1a(bundle_root, built_dossiers, tmp_path):
    """MGM's 2022 10-K without its body's "ITEM 1A. RISK FACTORS" line, and its first 200 lines (the
    table of contents only): refused naming the section, not imported with "Item 1A. Risk Factors 13"."""
    market = market_2023(built_dossiers["MGM"], tmp_path)
    tenk = _edit(filing_doc(bundle_root, tmp_path, "full_text", "MGMRESORTS_2022_10K"), lambda i, x: x.strip() != "ITEM 1A. RISK FACTORS")
    result = _run(tenk, market, tmp_path / "out")
    assert result.exit_code == 2 and not (tmp_path / "out").exists(), result.output
    assert f"--10k {tenk}: section not found: Item 1A (Risk Factors)" in _said(result) and "Item 3" not in _said(result)
    _edit(tenk, lambda i, x: i < 200)
    result = _run(tenk, market, tmp_path / "out")
    assert result.exit_code == 2 and "section not found: Item 1A (Risk Factors)" in _said(result)
    assert "Item 3 (Legal Proceedings)" in _said(result)


def test_a_10qs_table_of_contents_entry_is_not_its_part_ii_item_1a(bundle_root, built_dossiers, tmp_path):
    """MGM's Q2 2023 10-Q without its Part II "Item 1A. Risk Factors" line adds no risk factors update
    (its table of contents' "Item 1A. Risk Factors 41" is not one) and says so."""
    tenk = filing_doc(bundle_root, tmp_path, "full_text", "MGMRESORTS_2022_10K")
    tenq = _edit(filing_doc(bundle_root, tmp_path, "other_filings_full_text", "MGMRESORTS_2023Q2_10Q"),
                 lambda i, x: x.strip() != "Item 1A. Risk Factors")
    result = _run(tenk, market_2023(built_dossiers["MGM"], tmp_path), tmp_path / "out", "--10q", str(tenq))
    assert result.exit_code == 0, result.output
    assert f"10-Q {tenq.name}: no Part II Item 1A (Risk Factors); nothing added to risk_factors" in _said(result)
    assert "[Update from the 10-Q" not in load_dossier(tmp_path / "out").texts["risk_factors"]
