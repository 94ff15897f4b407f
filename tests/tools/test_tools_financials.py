"""Financial health: hand-computed ratios on a synthetic dossier, real 3M figures, missing data."""

from __future__ import annotations

import pytest

from chainproof.tools.dossier import DossierError, load_dossier
from chainproof.tools.financials import financial_health
from testkit.dossier_data import DEMO_AS_OF, SYNTH_AS_OF


def test_hand_computed_ratios(make_dossier):
    fh = financial_health(load_dossier(make_dossier()), SYNTH_AS_OF)
    assert fh.fiscal_years == [2019, 2020] and fh.latest_fiscal_year == 2020  # FY2021 ends after as_of
    assert "fiscal years ending on/after as_of ignored: 2021" in fh.notes
    y = fh.year(2020)
    assert y.revenue_growth == pytest.approx(0.10)          # 1100 / 1000 - 1
    assert y.operating_margin == pytest.approx(0.10)        # 110 / 1100
    assert y.net_margin == pytest.approx(0.05)              # 55 / 1100
    assert y.current_ratio == pytest.approx(1.5)            # 300 / 200
    assert y.debt_to_equity == pytest.approx(2.0)           # 400 / 200
    assert y.liabilities_to_equity == pytest.approx(4.0)    # 800 / 200
    assert y.interest_coverage == pytest.approx(2.2)        # 110 / 50
    assert y.free_cash_flow == pytest.approx(90)            # 150 + (-60)
    assert y.fcf_margin == pytest.approx(90 / 1100, abs=1e-6)  # ratios are rounded to 6 decimals
    assert fh.revenue_cagr == pytest.approx(0.10) and (fh.cagr_from_year, fh.cagr_to_year) == (2019, 2020)
    codes = {f.code: f for f in fh.flags}
    assert set(codes) == {"low_interest_coverage", "high_liabilities_to_equity"}  # D/E of exactly 2.0 is not > 2
    assert codes["low_interest_coverage"].evidence_key == "financials.interest_coverage"
    assert codes["low_interest_coverage"].message == "interest coverage below 3x: 2.20x in FY2020"
    # FY2019 lacks the balance sheet: None with a note, no crash
    y19 = fh.year(2019)
    assert y19.current_ratio is None and y19.revenue_growth is None
    assert any(n.startswith("current_ratio not available for FY2019 (missing current_assets, current_liabilities)")
               for n in fh.notes)


def test_negative_equity_and_losses(make_dossier):
    rows = [[2019, "revenue", 1000, "s"], [2020, "revenue", 900, "s"], [2020, "net_income", -30, "s"],
            [2020, "total_equity", -50, "s"], [2020, "total_debt", 500, "s"], [2020, "operating_cash_flow", 10, "s"],
            [2020, "capital_expenditures", -40, "s"]]
    fh = financial_health(load_dossier(make_dossier(financials=rows)), SYNTH_AS_OF)
    y = fh.year(2020)
    assert y.debt_to_equity is None  # not meaningful with negative equity
    assert {f.code for f in fh.flags} >= {"negative_equity", "net_loss", "negative_free_cash_flow",
                                          "revenue_decline", "revenue_cagr_negative"}
    assert fh.revenue_cagr == pytest.approx(-0.10)


def test_empty_financials_do_not_crash(make_dossier):
    fh = financial_health(load_dossier(make_dossier(financials=[])), SYNTH_AS_OF)
    assert fh.years == [] and fh.latest_fiscal_year is None and "nothing to analyse" in fh.notes[0]


def test_as_of_outside_data(make_dossier):
    with pytest.raises(DossierError, match="outside the data"):
        financial_health(load_dossier(make_dossier()), SYNTH_AS_OF.replace(year=2030))


def test_real_3m_fy2017(built_dossiers):
    fh = financial_health(load_dossier(built_dossiers["MMM"]), DEMO_AS_OF)
    assert fh.fiscal_years == [2015, 2016, 2017]
    y = fh.year(2017)
    assert y.revenue == 31657 and y.net_income == 4858
    assert y.revenue_growth == pytest.approx(31657 / 30109 - 1, abs=1e-6)
    assert y.current_ratio == pytest.approx(14277 / 7687, abs=1e-6)
    assert y.debt_to_equity == pytest.approx(13949 / 11622, abs=1e-6)
    assert y.free_cash_flow == 6240 - 1373
    assert fh.revenue_cagr == pytest.approx((31657 / 30274) ** 0.5 - 1, abs=1e-6)
    assert y.interest_coverage is None and any("interest_coverage not available" in n for n in fh.notes)
    assert fh.flags == []


def test_bundled_3m_has_interest_coverage():
    from chainproof.tools.dossier import bundled_dossier
    fh = financial_health(load_dossier(bundled_dossier("MMM")), DEMO_AS_OF)
    assert fh.year(2017).interest_coverage == pytest.approx(7820 / 322, abs=1e-6)
    assert len(fh.model_dump_json()) < 4096


BANK_ROWS = [[2019, "revenue", 1000, "s"], [2020, "revenue", 1100, "s"], [2020, "total_assets", 9000, "s"],
             [2020, "total_liabilities", 8000, "s"], [2020, "total_equity", 1000, "s"], [2020, "net_income", 90, "s"]]


def test_a_banks_unclassified_balance_sheet_says_not_applicable(make_dossier):
    toml = ('ticker = "TST"\nname = "Test Bank"\nsector = "Financials"\ncurrency = "USD"\nunits = "USD millions"\n'
            'fiscal_year_end = "12-31"\npeer_snapshot_date = 2021-05-28\nsources = ["synthetic"]\nnotes = ""\n')
    fh = financial_health(load_dossier(make_dossier(financials=BANK_ROWS, toml=toml)), SYNTH_AS_OF)
    assert fh.year(2020).current_ratio is None and fh.year(2020).not_applicable == ["current_ratio"]
    assert fh.year(2019).not_applicable == ["current_ratio"]  # every year of a bank alike
    assert any("current_ratio not applicable for FY2019, FY2020" in n for n in fh.notes)
    assert not any(n.startswith("current_ratio not available") for n in fh.notes)


def test_an_industrials_missing_current_assets_are_not_available_not_not_applicable(make_dossier):
    """Total assets without current assets is no sign of a bank: an industrial company's ratio is missing."""
    fh = financial_health(load_dossier(make_dossier(financials=BANK_ROWS)), SYNTH_AS_OF)
    assert fh.year(2020).current_ratio is None and fh.year(2020).not_applicable == []
    assert any(n.startswith("current_ratio not available for FY2019, FY2020 (missing current_assets, current_liabilities)")
               for n in fh.notes)
    assert not any("not applicable" in n for n in fh.notes)
