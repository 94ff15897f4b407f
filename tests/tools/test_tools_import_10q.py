"""``chainproof dossier import --10q``: a 10-Q's Part II Item 1 (Legal Proceedings, with the note it
refers to) and Item 1A (Risk Factors) are appended to the 10-K's texts, each under a line naming
the 10-Q and its period; a 10-Q without Item 1A imports with nothing added for it, and says so.
Real 10-Ks and 10-Qs of ../shared/data/sec_10k_filings (skipped without it) with made-up 2023
market files (the bundle's prices end in 2018)."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chainproof.cli import app
from chainproof.errors import DossierError
from chainproof.tools.dossier import load_dossier
from chainproof.tools.dossier_import import tenq_updates
from chainproof.tools.legal import legal_matters
from testkit.filing_docs import AS_OF, filing_doc, market_2023

_doc, _market_2023 = filing_doc, market_2023


def _import(ticker: str, tenk: Path, tenq: Path, market: Path, out: Path):
    args = ["dossier", "import", "--ticker", ticker, "--10k", str(tenk), "--10q", str(tenq), "--out", str(out),
            "--as-of", AS_OF, *(f"--{n}={market / f'{n}.csv'}" for n in ("prices", "benchmark", "rates", "peers"))]
    return CliRunner().invoke(app, args)


def _said(result) -> str:
    return " ".join(result.output.split())


def test_a_10q_without_item_1a_imports_with_nothing_added_for_it_and_says_so(bundle_root, built_dossiers, tmp_path):
    """Best Buy's 10-Q for the quarter ended July 29, 2023 has no Part II Item 1A: the import succeeds,
    the risk factors are the 10-K's alone, the output and the dossier's notes say nothing was added."""
    tenk = _doc(bundle_root, tmp_path, "full_text", "BESTBUY_2023_10K")
    tenq = _doc(bundle_root, tmp_path, "other_filings_full_text", "BESTBUY_2024Q2_10Q")
    result = _import("BBY", tenk, tenq, _market_2023(built_dossiers["BBY"], tmp_path), tmp_path / "BBY")
    assert result.exit_code == 0, result.output
    said = _said(result)
    assert "10-Q BESTBUY_2024Q2_10Q.txt: no Part II Item 1A (Risk Factors); nothing added to risk_factors" in said
    assert "10-Q BESTBUY_2024Q2_10Q.txt: Part II Item 1 (Legal Proceedings) appended to legal_proceedings" in said
    d = load_dossier(tmp_path / "BBY")
    assert "[Update from the 10-Q" not in d.texts["risk_factors"]
    assert "no Part II Item 1A (Risk Factors); nothing added to risk_factors" in d.meta.notes
    tag = "[Update from the 10-Q BESTBUY_2024Q2_10Q.txt (period ended 2023-07-29): Part II Item 1 (Legal Proceedings)]"
    assert tag in d.texts["legal_proceedings"] and "see Note 10, Contingencies" in d.texts["legal_proceedings"].split(tag)[1]
    assert "10. Contingencies" in d.texts["legal_note"].split("[Update from the 10-Q BESTBUY_2024Q2_10Q.txt")[1]


def test_a_10k_without_item_1a_is_still_refused(bundle_root, built_dossiers, tmp_path):
    text = gzip.open(bundle_root / "sec_10k_filings" / "full_text" / "BESTBUY_2023_10K.txt.gz", "rt", encoding="utf-8").read()
    tenk = tmp_path / "BESTBUY_2023_10K.txt"
    tenk.write_text("\n".join(x for x in text.splitlines() if not x.lstrip().lower().startswith("item 1a")), encoding="utf-8")
    tenq = _doc(bundle_root, tmp_path, "other_filings_full_text", "BESTBUY_2024Q2_10Q")
    result = _import("BBY", tenk, tenq, _market_2023(built_dossiers["BBY"], tmp_path), tmp_path / "BBY")
    assert result.exit_code == 2 and not (tmp_path / "BBY").exists()
    assert f"--10k {tenk}: section not found: Item 1A (Risk Factors)" in _said(result)


@pytest.mark.parametrize(("ticker", "tenk_doc", "tenq_doc", "period", "item1", "note"), [
    ("PFE", "PFIZER_2022_10K", "Pfizer_2023Q2_10Q", "2023-07-02", "discussed in Note 12A", "Note 12. Contingencies and Certain Commitments"),
    ("MGM", "MGMRESORTS_2022_10K", "MGMRESORTS_2023Q2_10Q", "2023-06-30", "Note 9 – Commitments and Contingencies",
     "NOTE 9 — COMMITMENTS AND CONTINGENCIES"),
])
def test_a_10qs_legal_proceedings_and_their_note_are_appended(bundle_root, built_dossiers, tmp_path, ticker, tenk_doc,
                                                              tenq_doc, period, item1, note):
    """Pfizer's and MGM's Q2 2023 10-Qs: Part II Item 1 refers to a note ("Note 12A", "Note 9"); the
    item goes after the 10-K's legal proceedings and the note after the 10-K's legal note, each under
    a line naming the 10-Q and its period, and the legal review reads the 10-Q's note."""
    tenk = _doc(bundle_root, tmp_path, "full_text", tenk_doc)
    tenq = _doc(bundle_root, tmp_path, "other_filings_full_text", tenq_doc)
    result = _import(ticker, tenk, tenq, _market_2023(built_dossiers[ticker], tmp_path), tmp_path / ticker)
    assert result.exit_code == 0, result.output
    d = load_dossier(tmp_path / ticker)
    head = f"[Update from the 10-Q {tenq.name} (period ended {period}):"
    tenk_part, update = d.texts["legal_proceedings"].split(f"{head} Part II Item 1 (Legal Proceedings)]\n")
    assert tenk_part.lstrip().lower().startswith("item 3") and " ".join(update.split()).lower().startswith("item 1. legal proceedings")
    assert item1 in " ".join(update.split())
    tenk_note, q_note = d.texts["legal_note"].split(f"{head} {note}]\n")
    assert tenk_note.strip() and q_note.startswith(note) and len(q_note) > 1000
    assert f"{head} Part II Item 1A (Risk Factors)]\n" in d.texts["risk_factors"]
    assert f"10-Q {tenq.name}: {note} (referred to by Part II Item 1 (Legal Proceedings)) appended to legal_note" in _said(result)
    review = legal_matters(d, top_n=40)
    offset = len(tenk_note)  # the 10-Q's note starts after the 10-K's: some matter is read from it
    assert any(m.section == "legal_note" and " ".join(m.excerpt.split()[:6]) in " ".join(d.texts["legal_note"][offset:].split())
               for m in review.matters), [m.excerpt[:60] for m in review.matters]


def test_tenq_updates_needs_part_ii_item_1_or_1a():
    text = "PART I\nItem 1. Financial Statements\nBalance sheet.\nItem 2. Management's Discussion and Analysis\nGrowth.\n"
    with pytest.raises(DossierError, match=r"--10q q\.txt: section not found: Part II Item 1 \(Legal Proceedings\) and "
                                           r"Item 1A \(Risk Factors\)"):
        tenq_updates(text, "q.txt", date(2023, 6, 30), document="--10q q.txt")
    blocks, said = tenq_updates(text + "PART II\nItem 1. Legal Proceedings\nNone.\n", "q.txt", date(2023, 6, 30))
    assert blocks == {"legal_proceedings": "\n[Update from the 10-Q q.txt (period ended 2023-06-30): Part II Item 1 "
                                           "(Legal Proceedings)]\nItem 1. Legal Proceedings\nNone.\n"}
    assert said == ["10-Q q.txt: Part II Item 1 (Legal Proceedings) appended to legal_proceedings",
                    "10-Q q.txt: no Part II Item 1A (Risk Factors); nothing added to risk_factors"]
