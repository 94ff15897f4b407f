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


def run_import(tenk: Path, market: Path, out: Path, *extra: str, as_of: str = AS_OF):
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
    result = run_import(tenk, market, tmp_path / "out")
    assert result.exit_code == 2 and not (tmp_path / "out").exists(), result.output
    assert f"--10k {tenk}: section not found: Item 1A (Risk Factors)" in _said(result) and "Item 3" not in _said(result)
    _edit(tenk, lambda i, x: i < 200)
    result = run_import(tenk, market, tmp_path / "out")
    assert result.exit_code == 2 and "section not found: Item 1A (Risk Factors)" in _said(result)
    assert "Item 3 (Legal Proceedings)" in _said(result)


def test_a_10qs_table_of_contents_entry_is_not_its_part_ii_item_1a(bundle_root, built_dossiers, tmp_path):
    """MGM's Q2 2023 10-Q without its Part II "Item 1A. Risk Factors" line adds no risk factors update
    (its table of contents' "Item 1A. Risk Factors 41" is not one) and says so."""
    tenk = filing_doc(bundle_root, tmp_path, "full_text", "MGMRESORTS_2022_10K")
    tenq = _edit(filing_doc(bundle_root, tmp_path, "other_filings_full_text", "MGMRESORTS_2023Q2_10Q"),
                 lambda i, x: x.strip() != "Item 1A. Risk Factors")
    result = run_import(tenk, market_2023(built_dossiers["MGM"], tmp_path), tmp_path / "out", "--10q", str(tenq))
    assert result.exit_code == 0, result.output
    assert f"10-Q {tenq.name}: no Part II Item 1A (Risk Factors); nothing added to risk_factors" in _said(result)
    assert "[Update from the 10-Q" not in load_dossier(tmp_path / "out").texts["risk_factors"]


def test_a_10q_option_takes_only_a_later_10q_once(bundle_root, built_dossiers, tmp_path):
    """``--10q`` given MGM's 2018 10-K, the 2022 10-K itself, or the same Q2 2023 10-Q twice is refused
    naming ``--10q`` and what was expected; nothing is written. A 10-Q is refused as ``--10k``."""
    market = market_2023(built_dossiers["MGM"], tmp_path)
    tenk = filing_doc(bundle_root, tmp_path, "full_text", "MGMRESORTS_2022_10K")
    old = filing_doc(bundle_root, tmp_path, "full_text", "MGMRESORTS_2018_10K")
    tenq = filing_doc(bundle_root, tmp_path, "other_filings_full_text", "MGMRESORTS_2023Q2_10Q")
    for extra, said in [(("--10q", str(old)), f"--10q {old}: expected a Form 10-Q"),
                        (("--10q", str(tenk)), f"--10q {tenk}: expected a Form 10-Q"),
                        (("--10q", str(tenq), "--10q", str(tenq)),
                         f"--10q {tenq}: reports the quarter ended 2023-06-30, as --10q {tenq} does")]:
        result = run_import(tenk, market, tmp_path / "out", *extra)
        assert result.exit_code == 2 and not (tmp_path / "out").exists(), result.output
        assert said in _said(result), _said(result)
    result = run_import(tenq, market, tmp_path / "out")
    assert result.exit_code == 2 and f"--10k {tenq}: expected a Form 10-K" in _said(result) and "got a Form 10-Q" in _said(result)


def test_a_10q_for_a_quarter_the_10k_already_reports_is_refused(tmp_path):
    """The cover's form and the 10-Q's quarter against the 10-K's year (no bundle needed)."""
    from datetime import date

    import pytest

    from chainproof.errors import DossierError
    from chainproof.tools.dossier_import import _check_later
    from chainproof.tools.filing_cover import form_type

    assert form_type("FORM 10-Q\nFor the quarterly period ended June 30, 2023\n") == "10-Q"
    assert form_type("FORM 10-K\nFor the fiscal year ended December 31, 2022\n") == "10-K"
    assert form_type("Quarterly results press release\n") is None
    with pytest.raises(DossierError, match=r"--10q q\.txt: its quarter ended 2022-09-30, on or before the --10k's fiscal "
                                           r"year end 2022-12-31: expected a 10-Q for a later quarter"):
        _check_later(Path("q.txt"), date(2022, 9, 30), date(2022, 12, 31), {})
    seen: dict = {}
    _check_later(Path("q1.txt"), date(2023, 3, 31), date(2022, 12, 31), seen)
    with pytest.raises(DossierError, match=r"--10q q2\.txt: reports the quarter ended 2023-03-31, as --10q q1\.txt does"):
        _check_later(Path("q2.txt"), date(2023, 3, 31), date(2022, 12, 31), seen)


def test_an_as_of_before_the_10k_was_public_is_refused(bundle_root, built_dossiers, tmp_path):
    """MGM's 2022 10-K states its shares outstanding "As of February 22, 2023": it was filed after
    that, so --as-of 2023-01-15 (after the fiscal year end) is look-ahead, refused naming the date
    and --as-of; its 10-Q's "Outstanding at July 31, 2023" likewise against --as-of 2023-07-15."""
    market = market_2023(built_dossiers["MGM"], tmp_path)
    tenk = filing_doc(bundle_root, tmp_path, "full_text", "MGMRESORTS_2022_10K")
    result = run_import(tenk, market, tmp_path / "out", as_of="2023-01-15")
    assert result.exit_code == 2 and not (tmp_path / "out").exists(), result.output
    assert (f"--10k {tenk}: its cover states shares outstanding as of 2023-02-22, after --as-of 2023-01-15" in _said(result)
            and "look-ahead" in _said(result))
    tenq = filing_doc(bundle_root, tmp_path, "other_filings_full_text", "MGMRESORTS_2023Q2_10Q")
    result = run_import(tenk, market, tmp_path / "out", "--10q", str(tenq), as_of="2023-07-15")
    assert result.exit_code == 2 and f"--10q {tenq}: its cover states shares outstanding as of 2023-07-31" in _said(result)
    result = run_import(tenk, market, tmp_path / "out", as_of="2023-04-03")  # after it (with 60 days of prices)
    assert result.exit_code == 0, result.output


def test_a_core_metric_missing_for_the_latest_year_is_named(bundle_root, built_dossiers, tmp_path):
    """MGM's 2022 10-K prints its revenues and total assets as unlabelled totals (and has no Item 6):
    the import names them in its output and the dossier's notes instead of saying nothing."""
    tenk = filing_doc(bundle_root, tmp_path, "full_text", "MGMRESORTS_2022_10K")
    result = run_import(tenk, market_2023(built_dossiers["MGM"], tmp_path), tmp_path / "out")
    assert result.exit_code == 0, result.output
    line = "core metric(s) not found for fiscal year 2022 (the latest read): revenue, total_assets;"
    assert line in _said(result)
    d = load_dossier(tmp_path / "out")
    assert line in d.meta.notes and d.financial("revenue", 2022) is None


def test_missing_core_names_only_what_the_latest_year_lacks():
    from chainproof.tools.dossier_import import CORE_METRICS, missing_core

    full = [(2022, m, 1.0, "s") for m in CORE_METRICS] + [(2021, "revenue", 1.0, "s")]
    assert missing_core(full) == [] and missing_core([]) == []
    assert missing_core(full[1:] + [(2021, "net_income", 2.0, "s")])[0].startswith(
        "core metric(s) not found for fiscal year 2022 (the latest read): revenue;")
