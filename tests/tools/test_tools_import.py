"""``chainproof dossier import`` on a real 10-K's text (../shared/data/sec_10k_filings/full_text)."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chainproof.cli import app
from chainproof.tools.dossier import load_dossier
from chainproof.tools.dossier_import import text_financials
from chainproof.tools.sec_sections import find_sections

_METRIC = {"net_income_attributable": "net_income"}


def _tenk(bundle_root: Path, tmp_path: Path, doc: str, drop: str | None = None) -> Path:
    text = gzip.open(bundle_root / "sec_10k_filings" / "full_text" / f"{doc}.txt.gz", "rt", encoding="utf-8").read()
    if drop:
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().lower().startswith(drop))
    path = tmp_path / f"{doc}.txt"
    path.write_text(text, encoding="utf-8")
    return path


def _market(dossier: Path, tmp_path: Path) -> Path:
    """A folder with copies of ``dossier``'s four market files, to be spoiled by a test."""
    market = tmp_path / "market"
    market.mkdir()
    for n in ("prices", "benchmark", "rates", "peers"):
        market.joinpath(f"{n}.csv").write_bytes((dossier / f"{n}.csv").read_bytes())
    return market


def _import(tenk: Path, market: Path, out: Path, *extra: str, ticker: str = "MMM", as_of: str = "2018-02-08"):
    args = ["dossier", "import", "--ticker", ticker, "--10k", str(tenk), "--out", str(out), "--as-of", as_of,
            *(f"--{n}={market / f'{n}.csv'}" for n in ("prices", "benchmark", "rates", "peers")), *extra]
    return CliRunner().invoke(app, args)


def _said(result) -> str:
    return " ".join(result.output.split())  # the console wraps long messages


@pytest.mark.parametrize("doc", ["3M_2017_10K", "3M_2018_10K"])
def test_sections_are_found_and_figures_match_key_financials(bundle_root, built_dossiers, tmp_path, doc):
    tenk = _tenk(bundle_root, tmp_path, doc)
    result = _import(tenk, built_dossiers["MMM"], tmp_path / "MMM")
    if doc == "3M_2017_10K":
        assert result.exit_code == 0, result.output
        d = load_dossier(tmp_path / "MMM")
        texts, figures = d.texts, {(r.fiscal_year, r.metric): (r.value, r.source) for r in d.financials}
    else:  # FY2018 ended after the bundle's last price (2018-02-07): refused as look-ahead, read as import reads it
        assert result.exit_code == 2 and "after --as-of 2018-02-08" in _said(result)
        text = tenk.read_text(encoding="utf-8")
        texts = {k: v.text for k, v in find_sections(text).items()}
        figures = {(fy, m): (v, src) for fy, m, v, src in text_financials(text, tenk.name)}
    lines = (tmp_path / f"{doc}.txt").read_text(encoding="utf-8").split("\n")  # lines as editors count them
    sections = bundle_root / "sec_10k_filings" / "sections" / doc
    for key, name in (("risk_factors", "item1a_risk_factors.txt"), ("legal_proceedings", "item3_legal_proceedings.txt"),
                      ("legal_note", "legal_contingencies_note.txt")):
        real = (sections / name).read_text(encoding="utf-8")
        assert texts[key].split()[:2] == real.split()[:2]  # the same heading
        assert texts[key].split()[-8:] == real.split()[-8:]  # and the same last words
    checked = 0
    with (bundle_root / "sec_10k_filings" / "key_financials.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            metric = _METRIC.get(r["metric"], r["metric"])
            if r["source_doc"] != doc or metric == "dividends_paid":
                continue
            expected = float(r["value"] if metric == "diluted_eps" else r["value_usd_millions"])
            value, where = figures[(int(r["fiscal_year"]), metric)]
            assert value == pytest.approx(expected, abs=0.5), (metric, r["fiscal_year"])
            source = re.fullmatch(rf"{doc}\.txt: (Item 8|statement page) line (\d+): (.+)", where)
            assert source, where
            printed = " ".join(re.sub(r"[—–$]", " ", lines[int(source[2]) - 1]).split()).lower()  # the named line prints the label
            assert printed.startswith(source[3]), (printed, source[3])
            checked += 1
    assert checked >= 25  # revenue ... capital expenditures for three years (balance sheet: two)


def test_a_missing_section_is_named(bundle_root, built_dossiers, tmp_path):
    tenk = _tenk(bundle_root, tmp_path, "3M_2017_10K", drop="item 3")
    result = _import(tenk, built_dossiers["MMM"], tmp_path / "MMM")
    assert result.exit_code == 2
    assert "section not found: Item 3 (Legal Proceedings)" in result.output and "Item 1A" not in result.output
    assert not (tmp_path / "MMM").exists()


def test_a_bad_market_file_names_its_option(bundle_root, built_dossiers, tmp_path):
    market = _market(built_dossiers["MMM"], tmp_path)
    market.joinpath("peers.csv").write_text("ticker,name\nMMM,3M\n", encoding="utf-8")
    result = _import(_tenk(bundle_root, tmp_path, "3M_2017_10K"), market, tmp_path / "MMM")
    assert result.exit_code == 2 and "--peers" in result.output and "missing column 'sector'" in result.output


def test_prices_that_do_not_reach_as_of_are_named_at_import_not_at_run_time(bundle_root, built_dossiers, tmp_path):
    market = _market(built_dossiers["MMM"], tmp_path)
    market.joinpath("prices.csv").write_text("date,close\n2019-01-02,100\n2019-01-03,101\n", encoding="utf-8")
    result = _import(_tenk(bundle_root, tmp_path, "3M_2017_10K"), market, tmp_path / "MMM")
    assert result.exit_code == 2
    assert "--prices" in result.output and "does not cover --as-of" in result.output and "2019-01-02 to 2019-01-03" in result.output
    assert not (tmp_path / "MMM").exists()  # nothing half-written


def test_headlines_and_sector_come_from_the_analysts_files(bundle_root, built_dossiers, tmp_path):
    news = tmp_path / "news.csv"
    news.write_text("date,headline,source\n2018-01-25,3M reports fourth-quarter results,8-K\n,3M at a conference,\n",
                    encoding="utf-8")
    tenk = _tenk(bundle_root, tmp_path, "3M_2017_10K")
    assert _import(tenk, built_dossiers["MMM"], tmp_path / "MMM", f"--headlines={news}").exit_code == 0
    d = load_dossier(tmp_path / "MMM")
    assert [(h.date and h.date.isoformat(), h.headline) for h in d.headlines] == [
        ("2018-01-25", "3M reports fourth-quarter results"), (None, "3M at a conference")]
    assert d.meta.sector == "Industrials" and d.meta.name == "3M COMPANY"
    news.write_text("date,headline\n2018-13-01,bad month\n", encoding="utf-8")
    bad = _import(tenk, built_dossiers["MMM"], tmp_path / "MMM2", f"--headlines={news}")
    assert bad.exit_code == 2 and "--headlines" in bad.output and "line 2" in bad.output


def test_force_never_deletes_the_commands_own_inputs(bundle_root, built_dossiers, tmp_path):
    """--out is the folder holding the 10-K: refused (exit 2) naming the file, with or without --force,
    and every file there is left as it was."""
    work = tmp_path / "work1"
    work.mkdir()
    tenk = _tenk(bundle_root, work, "3M_2017_10K")
    (work / "notes.txt").write_text("mine", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    for extra in ((), ("--force",)):
        result = _import(tenk, built_dossiers["MMM"], work, *extra)
        assert result.exit_code == 2, result.output
        assert "--out" in result.output and f"--10k {tenk}" in " ".join(result.output.split())
        assert {p.name: p.read_bytes() for p in work.iterdir()} == before
    market = _market(built_dossiers["MMM"], tmp_path)  # a market file inside --out is refused too
    result = _import(_tenk(bundle_root, tmp_path, "3M_2017_10K"), market, market, "--force")
    assert result.exit_code == 2 and "--prices" in result.output and (market / "prices.csv").is_file()


def _other(bundle_root: Path, tmp_path: Path, doc: str) -> Path:
    """A 10-Q (or other filing) of the bundle's other_filings_full_text as a text file."""
    path = tmp_path / f"{doc}.txt"
    path.write_text(gzip.open(bundle_root / "sec_10k_filings" / "other_filings_full_text" / f"{doc}.txt.gz", "rt").read())
    return path


def test_a_report_whose_period_ended_after_as_of_is_refused(bundle_root, built_dossiers, tmp_path):
    """PepsiCo's FY2017 10-K ("For the fiscal year ended December 30, 2017") as of 2017-06-30 is
    look-ahead; so is Best Buy's 10-Q for the quarter ended July 29, 2023 in a dossier as of 2018-02-08."""
    pep = _import(_tenk(bundle_root, tmp_path, "PEPSICO_2017_10K"), built_dossiers["PEP"], tmp_path / "PEP",
                  ticker="PEP", as_of="2017-06-30")
    assert pep.exit_code == 2 and not (tmp_path / "PEP").exists()
    assert "--10k" in _said(pep) and "ended 2017-12-30, after --as-of 2017-06-30" in _said(pep)
    bby = _import(_tenk(bundle_root, tmp_path, "BESTBUY_2017_10K"), built_dossiers["BBY"], tmp_path / "BBY",
                  f"--10q={_other(bundle_root, tmp_path, 'BESTBUY_2024Q2_10Q')}", ticker="BBY")
    assert bby.exit_code == 2 and "--10q" in _said(bby) and "ended 2023-07-29, after --as-of 2018-02-08" in _said(bby)
    ok = _import(_tenk(bundle_root, tmp_path, "BESTBUY_2017_10K"), built_dossiers["BBY"], tmp_path / "BBY", ticker="BBY")
    assert ok.exit_code == 0 and load_dossier(tmp_path / "BBY").meta.fiscal_year_end == "01-28"  # from the cover


def test_a_cover_without_a_period_end_is_refused_naming_what_is_missing(bundle_root, built_dossiers, tmp_path):
    tenk = _tenk(bundle_root, tmp_path, "3M_2017_10K", drop="for the fiscal year ended")
    result = _import(tenk, built_dossiers["MMM"], tmp_path / "MMM")
    assert result.exit_code == 2 and "no period end on the cover" in _said(result)
    assert "For the fiscal year ended <Month D, YYYY>" in _said(result) and not (tmp_path / "MMM").exists()


def test_another_companys_document_is_refused_naming_both_companies(bundle_root, built_dossiers, tmp_path):
    """3M's 10-K with PepsiCo's market files (ticker PEP), and a Pfizer 10-Q in 3M's dossier."""
    result = _import(_tenk(bundle_root, tmp_path, "3M_2017_10K"), built_dossiers["PEP"], tmp_path / "PEP", ticker="PEP")
    assert result.exit_code == 2 and not (tmp_path / "PEP").exists()
    assert "--10k" in _said(result) and "'3M COMPANY'" in _said(result) and "'PepsiCo Inc.'" in _said(result)
    tenq = _other(bundle_root, tmp_path, "Pfizer_2023Q2_10Q")
    result = _import(_tenk(bundle_root, tmp_path, "3M_2017_10K"), built_dossiers["MMM"], tmp_path / "MMM", f"--10q={tenq}")
    assert result.exit_code == 2 and "--10q" in _said(result) and "'PFIZER INC.'" in _said(result)
    assert "'3M Company'" in _said(result)
    ko = _tenk(bundle_root, tmp_path, "COCACOLA_2017_10K")  # its cover prints the name as a logo: the text must name PepsiCo
    result = _import(ko, built_dossiers["PEP"], tmp_path / "PEP", ticker="PEP")
    assert result.exit_code == 2 and "prints no registrant name" in _said(result) and "'PepsiCo Inc.'" in _said(result)


def test_a_10k_without_item_8_says_so_instead_of_reading_the_whole_document(bundle_root, built_dossiers, tmp_path):
    tenk = _tenk(bundle_root, tmp_path, "3M_2017_10K", drop="item 8")
    result = _import(tenk, built_dossiers["MMM"], tmp_path / "MMM")
    assert result.exit_code == 2 and not (tmp_path / "MMM").exists()
    said = _said(result)
    assert f"--10k {tenk}: section not found: Item 8 (Financial Statements and Supplementary Data)" in said
    assert "no line starting 'Item 8'" in said and "Consolidated Balance Sheet(s)" in said and "duplicate" not in said


@pytest.mark.parametrize("option", ["--10k", "--10q"])
def test_a_folder_given_as_a_document_is_named_as_a_folder(bundle_root, built_dossiers, tmp_path, option):
    """``--10k DIR`` (or ``--10q DIR``) says it expected a file and got a folder, not "file not found";
    a path that does not exist still says so, naming its option."""
    folder = tmp_path / "filings"
    folder.mkdir()
    tenk = _tenk(bundle_root, tmp_path, "3M_2017_10K")
    extra = ("--10q", str(folder)) if option == "--10q" else ()
    result = _import(folder if option == "--10k" else tenk, built_dossiers["MMM"], tmp_path / "MMM", *extra)
    said = _said(result)
    assert result.exit_code == 2 and f"{option} {folder}: expected a file" in said and "got a folder" in said, said
    assert "file not found" not in said and not (tmp_path / "MMM").exists()
    result = _import(tmp_path / "nowhere.txt", built_dossiers["MMM"], tmp_path / "MMM")
    assert result.exit_code == 2 and f"--10k {tmp_path / 'nowhere.txt'}: file not found" in _said(result)


def test_a_total_printed_with_its_figures_on_the_next_line_is_read(bundle_root):
    """Coca-Cola FY2017 prints "TOTAL CURRENT LIABILITIES" alone and its figures on the next line:
    read as that label (matching the provider's statement lines), and every key_financials.csv
    figure of the document still matches within rounding."""
    doc = "COCACOLA_2017_10K"
    data = bundle_root / "sec_10k_filings"
    text = gzip.open(data / "full_text" / f"{doc}.txt.gz", "rt", encoding="utf-8").read()
    figures = {(fy, m): (v, src) for fy, m, v, src in text_financials(text, f"{doc}.txt")}
    with (data / "statement_lines.csv").open(encoding="utf-8", newline="") as fh:
        printed = {int(r["fiscal_year"]): float(r["value"]) for r in csv.DictReader(fh)
                   if r["doc_name"] == doc and r["section_heading"].lower() == "total current liabilities" and r["line_label"].startswith("[")}
    assert set(printed) == {2016, 2017}, printed
    for fy, value in printed.items():
        assert (fy, "current_liabilities") in figures, f"current_liabilities {fy} not read; read {sorted(figures)}"
        assert figures[(fy, "current_liabilities")][0] == pytest.approx(value, abs=0.5), fy
        assert figures[(fy, "current_liabilities")][1].endswith(": total current liabilities")
    with (data / "key_financials.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            metric = _METRIC.get(r["metric"], r["metric"])
            if r["source_doc"] == doc and metric != "dividends_paid":
                expected = float(r["value"] if metric == "diluted_eps" else r["value_usd_millions"])
                assert figures[(int(r["fiscal_year"]), metric)][0] == pytest.approx(expected, abs=0.5), (metric, r["fiscal_year"])
