"""Dossier builder against the shared bundle: statement figures match the 10-K pages."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.tools.dossier import DossierError, load_dossier
from chainproof.tools.dossier_builder import build_dossier
from testkit.dd_answers import scripted_replies
from testkit.dossier_data import DEMO_AS_OF


def test_mmm_fy2015_2017_figures_match_the_10k(built_dossiers):
    d = load_dossier(built_dossiers["MMM"])
    assert d.fiscal_years() == [2015, 2016, 2017]
    # income statement (3M_2017_10K p.57)
    assert d.financial("revenue", 2017) == 31657 and d.financial("revenue", 2015) == 30274
    assert d.financial("net_income", 2017) == 4858  # attributable to 3M
    assert d.financial("operating_income", 2017) == 7820
    assert d.financial("diluted_eps", 2017) == 7.93
    # balance sheet (p.59 of primary_financial_statements.txt): total current assets / liabilities,
    # short-term borrowings incl. current portion 1,853 + long-term debt 12,096
    assert d.financial("current_assets", 2017) == 14277 and d.financial("current_assets", 2016) == 11726
    assert d.financial("current_liabilities", 2017) == 7687 and d.financial("current_liabilities", 2016) == 6219
    assert d.financial("total_debt", 2017) == 1853 + 12096 and d.financial("total_debt", 2016) == 972 + 10678
    assert d.financial("cash_and_equivalents", 2017) == 3053
    assert d.financial("total_liabilities", 2017) == 26365 and d.financial("total_equity", 2017) == 11622
    assert d.financial("capital_expenditures", 2017) == -1373
    # the balance sheet shows two years only: FY2015 has no balance-sheet rows
    assert d.financial("total_assets", 2015) is None
    # 3M prints no interest-expense line on the income statement
    assert d.financial("interest_expense", 2017) is None
    assert "p.59" in d.financial_source("current_assets", 2017)


def test_label_rules_other_companies(built_dossiers):
    ko = load_dossier(built_dossiers["KO"])
    assert ko.financial("current_liabilities", 2017) == 27194  # unlabeled subtotal line in the filing
    assert ko.financial("total_debt", 2017) == 13205 + 3298 + 31182
    assert ko.financial("interest_expense", 2017) == 841
    mgm = load_dossier(built_dossiers["MGM"])  # MGM reports in thousands
    assert mgm.financial("current_assets", 2017) == pytest.approx(2374.627)
    assert mgm.financial("interest_expense", 2017) == pytest.approx(668.745)  # printed negative, stored positive
    ba = load_dossier(built_dossiers["BA"])
    assert ba.financial("interest_expense", 2017) == 360  # "Interest and debt expense", not Boeing Capital's
    assert ba.financial("total_liabilities", 2017) == ba.financial("total_assets", 2017) - ba.financial("total_equity", 2017)
    assert "derived" in ba.financial_source("total_liabilities", 2017)
    bby = load_dossier(built_dossiers["BBY"])
    assert bby.meta.fiscal_year_end == "01-28" and bby.fiscal_years() == [2015, 2016, 2017]


def test_prices_peers_and_texts(built_dossiers, bundle_root):
    d = load_dossier(built_dossiers["MMM"])
    assert len(d.prices) == 1259 and d.prices[0].date == date(2013, 2, 8) and d.prices[0].close == 102.66
    # benchmark: every index close dated <= as_of (the index file goes on past the price data)
    assert d.benchmark[-1].date == DEMO_AS_OF and d.benchmark[-2].close == pytest.approx(2681.659912)
    assert {p.date for p in d.prices} <= {p.date for p in d.benchmark}
    assert d.rates[0].label == "2013-02" and d.rates[-1].label == "2018-01"  # Feb 2018 not over on as_of
    assert [p.ticker for p in d.peers] == ["MMM", "HON", "GE", "DHR", "ROP", "EMR"]
    mmm = d.target_peer
    assert mmm.pe == 24.31 and mmm.market_cap == pytest.approx(138721.055226)
    # EV/EBITDA only for the target: (market cap + FY2017 debt - FY2017 cash) / EBITDA
    assert mmm.ev_ebitda == pytest.approx((138721.055226 + 13949 - 3053) / 9048, abs=1e-4)
    assert all(p.ev_ebitda is None for p in d.peers if not p.is_target)
    real = (bundle_root / "sec_10k_filings/sections/3M_2017_10K/legal_contingencies_note.txt").read_text()
    assert d.texts["legal_note"] == real  # a user's own build copies the real section
    assert len(d.headlines) == 8 and all(h.date is None for h in d.headlines)


def test_axp_without_a_2017_10k_still_builds(built_dossiers):
    d = load_dossier(built_dossiers["AXP"])
    assert d.financials == () and "no 10-K" in d.meta.notes
    assert len(d.prices) == 1259


def test_restated_year_prefers_the_later_filing(bundle_root, tmp_path):
    d = load_dossier(build_dossier(bundle_root, "MMM", date(2019, 3, 1), tmp_path / "MMM"))
    assert d.fiscal_years() == [2016, 2017, 2018]
    assert d.financial("operating_income", 2017) == 7692  # restated in the FY2018 10-K (was 7,820)
    assert "3M_2018_10K" in d.financial_source("operating_income", 2017)
    assert d.financial("revenue", 2018) == 32765


def test_filing_lag_excludes_unfiled_10k(bundle_root, tmp_path):
    d = load_dossier(build_dossier(bundle_root, "MMM", DEMO_AS_OF, tmp_path / "MMM", filing_lag_days=60))
    assert d.financials == ()  # the FY2017 10-K is not counted as filed 60 days after year end


def test_builder_refuses_bad_targets(bundle_root, tmp_path):
    with pytest.raises(DossierError, match="no prices for ticker 'NOPE'"):
        build_dossier(bundle_root, "NOPE", DEMO_AS_OF, tmp_path / "x")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_text("precious")
    with pytest.raises(DossierError, match=r"holds 1 file\(s\) no dossier build wrote as they are now \(thesis.docx\)"):
        build_dossier(bundle_root, "MMM", DEMO_AS_OF, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.docx").read_text() == "precious"
    with pytest.raises(DossierError, match=r"paraphrase_texts=True needs hand-written filings/risk_factors.txt"):
        build_dossier(bundle_root, "MMM", DEMO_AS_OF, tmp_path / "p", paraphrase_texts=True)


def test_bundled_mmm_is_small_and_paraphrased(bundle_root):
    folder = Path(__file__).resolve().parents[2] / "tools" / "dossiers" / "MMM"
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total < 200_000
    d = load_dossier(folder)
    assert d.financial("interest_expense", 2017) == 322  # from the filing's note, source says so
    assert "Note 5" in d.financial_source("interest_expense", 2017)

    def shingles(text: str, n: int) -> set[tuple[str, ...]]:
        words = re.findall(r"[a-z0-9$,.%]+", text.lower().replace("\u2019", "'"))
        return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}

    sections = bundle_root / "sec_10k_filings" / "sections" / "3M_2017_10K"
    real = set().union(*(shingles(p.read_text(), 8) for p in sections.glob("*.txt")))
    for name, text in d.texts.items():
        copied = shingles(text, 8) & real
        assert not copied, f"{name} copies filing text: {sorted(copied)[:3]}"
    subset = (bundle_root / "news_sentiment/twitter_financial_news_sentiment/"
              "subset_mentions_of_12_target_companies.csv").read_text()
    real_news = shingles(subset, 6)
    for h in d.headlines:
        assert not shingles(h.headline, 6) & real_news, h.headline


def test_axp_report_has_no_blank_financial_cells(settings, built_dossiers):
    """AXP: no 10-K before 2018-02-08 in the bundle; the report says so in every cell instead of a blank table."""
    model = ScriptedChatModel(replies=scripted_replies())
    app = Chainproof(settings, models=StaticModels(model))
    with app:
        run = app.start("due-diligence", {"company": "AXP", "as_of": "2018-02-08", "dossier": str(built_dossiers["AXP"])})
        done = app.decide(run.run_id, action="approve", approver="Kim")
    report = open(done.report_path).read()
    section = report.split("## Financial health")[1].split("\n## ")[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert len(table) == 3 and "not available: no annual report before as_of" in table[2]
    assert all(cell.strip() for cell in table[2].strip("|").split("|"))


def test_dossier_build_never_replaces_a_users_files_unless_forced_and_lists_them(bundle_root, tmp_path):
    """A rebuild replaces its own unchanged files freely; a file it did not write (a user's notes in
    filings/) or one edited since (a hand-curated headlines.csv) stops it, naming them, and nothing
    is written; --force lists them, then replaces the folder."""
    from typer.testing import CliRunner

    from chainproof.cli import app as cli

    out = tmp_path / "MMM"
    args = ["dossier", "build", "--bundle", str(bundle_root), "--ticker", "MMM", "--as-of", DEMO_AS_OF.isoformat(),
            "--out", str(out)]
    runner = CliRunner()
    assert runner.invoke(cli, args).exit_code == 0
    assert runner.invoke(cli, args).exit_code == 0  # its own files, unchanged: rebuilt without asking
    (out / "filings" / "my-own-notes.docx").write_bytes(b"precious notes")
    with (out / "headlines.csv").open("a", encoding="utf-8") as fh:
        fh.write("2018-01-30,Hand-curated headline,analyst\n")
    curated = (out / "headlines.csv").read_text(encoding="utf-8")
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    flat = refused.output.replace("\n", " ")
    assert "filings/my-own-notes.docx" in flat and "headlines.csv (changed)" in flat and "--force" in flat
    assert (out / "filings" / "my-own-notes.docx").read_bytes() == b"precious notes"
    assert (out / "headlines.csv").read_text(encoding="utf-8") == curated
    forced = runner.invoke(cli, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "replacing" in forced.output and "filings/my-own-notes.docx" in forced.output.replace("\n", " ")
    assert not (out / "filings" / "my-own-notes.docx").exists()
    assert runner.invoke(cli, [*args[:-2], "--out", str(out / "dossier.toml")]).exit_code == 2  # a file, not a folder
