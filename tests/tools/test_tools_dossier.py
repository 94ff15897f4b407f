"""Dossier loading/validation: good input loads, each kind of bad input names what is wrong."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from chainproof.tools.dossier import DossierError, bundled_dossier, bundled_tickers, check_as_of, load_dossier, resolve_dossier
from testkit.dossier_data import SYNTH_AS_OF


def _replace_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_synthetic_dossier_loads(make_dossier):
    d = load_dossier(make_dossier())
    assert d.ticker == "TST" and d.meta.fiscal_year_end == "12-31"
    assert d.financial("revenue", 2020) == 1100 and d.financial("revenue", 2018) is None
    assert d.fiscal_years() == [2019, 2020, 2021]
    assert d.fiscal_year_end(2020) == date(2020, 12, 31)
    assert [p.date for p in d.prices] == sorted(p.date for p in d.prices)
    assert d.target_peer.ticker == "TST" and len(d.peers) == 6
    assert d.peers[2].pb is None  # empty cell = not available
    assert d.headlines[3].date is None
    assert d.texts["legal_note"] == ""  # optional file absent


def test_bundled_mmm_is_available_and_valid():
    assert "MMM" in bundled_tickers()
    d = load_dossier(bundled_dossier("mmm"))
    assert d.ticker == "MMM" and d.meta.name == "3M Company"
    assert d.meta.peer_snapshot_date == date(2018, 2, 8)
    assert len(d.prices) == 1259 and d.prices[-1].date == date(2018, 2, 7)
    assert "own" in d.meta.notes and "no filing or news text is copied" in d.meta.notes


def test_unknown_ticker_lists_available():
    with pytest.raises(DossierError, match=r"no bundled dossier for ticker 'ZZZ'; available: .*MMM"):
        bundled_dossier("ZZZ")


def test_resolve_dossier_checks_ticker(make_dossier):
    folder = make_dossier()
    assert resolve_dossier("tst", folder) == folder.resolve()
    assert resolve_dossier("MMM") == bundled_dossier("MMM")
    with pytest.raises(DossierError, match=r"ticker is 'TST'; expected 'MMM'"):
        resolve_dossier("MMM", folder)


def test_missing_folder_and_missing_file(make_dossier, tmp_path):
    with pytest.raises(DossierError, match="dossier folder not found"):
        load_dossier(tmp_path / "nope")
    folder = make_dossier()
    (folder / "financials.csv").unlink()
    with pytest.raises(DossierError, match=rf"missing file financials.csv in {folder.resolve()}"):
        load_dossier(folder)
    folder2 = make_dossier("B")
    (folder2 / "filings" / "risk_factors.txt").unlink()
    with pytest.raises(DossierError, match="missing file filings/risk_factors.txt"):
        load_dossier(folder2)


def test_non_number_names_file_line_and_value(make_dossier):
    folder = make_dossier()
    _replace_line(folder / "prices.csv", 14, "2021-01-21,abc")
    before = hashlib.sha256((folder / "prices.csv").read_bytes()).hexdigest()
    with pytest.raises(DossierError, match=r"^prices.csv line 14: close='abc' is not a number$"):
        load_dossier(folder)
    # bad input is left untouched
    assert hashlib.sha256((folder / "prices.csv").read_bytes()).hexdigest() == before


def test_missing_column_names_found_and_expected(make_dossier):
    folder = make_dossier()
    text = (folder / "financials.csv").read_text().replace("fiscal_year,metric,value,source", "fiscal_year,metric,amount,source", 1)
    (folder / "financials.csv").write_text(text)
    with pytest.raises(DossierError, match=r"financials.csv: missing column 'value' \(found columns: fiscal_year, "
                                           r"metric, amount, source; expected: fiscal_year, metric, value, source\)"):
        load_dossier(folder)


def test_unparseable_date(make_dossier):
    folder = make_dossier()
    _replace_line(folder / "benchmark.csv", 3, "2021-02-30,3001")
    with pytest.raises(DossierError, match=r"benchmark.csv line 3: date='2021-02-30' is not a date \(expected YYYY-MM-DD\)"):
        load_dossier(folder)
    folder2 = make_dossier("B")
    _replace_line(folder2 / "headlines.csv", 2, "03/01/2021,Some headline,s")
    with pytest.raises(DossierError, match=r"headlines.csv line 2: date='03/01/2021' is not a date"):
        load_dossier(folder2)


@pytest.mark.parametrize("row, message", [
    ("2020,revenu,5,x", r"financials.csv line \d+: metric='revenu' is not a known metric \(expected one of: revenue"),
    ("20x0,revenue,5,x", r"fiscal_year='20x0' is not a 4-digit year"),
    ("2020,revenue,1100,x", r"duplicate revenue for fiscal_year 2020"),
])
def test_bad_financial_rows(make_dossier, row, message):
    folder = make_dossier()
    with (folder / "financials.csv").open("a") as fh:
        fh.write(row + "\n")
    with pytest.raises(DossierError, match=message):
        load_dossier(folder)


def test_bad_toml_fields(make_dossier):
    folder = make_dossier(toml='ticker = "TST"\nname = "x"\n')
    with pytest.raises(DossierError, match=r"dossier.toml: missing field 'sector'"):
        load_dossier(folder)
    good = (make_dossier("G") / "dossier.toml").read_text()
    folder = make_dossier("C", toml=good.replace('"12-31"', '"1231"'))
    with pytest.raises(DossierError, match=r"field 'fiscal_year_end'='1231' is not a month-day; expected 'MM-DD'"):
        load_dossier(folder)
    folder = make_dossier("D", toml=good.replace('currency = "USD"', 'currency = "EUR"'))
    with pytest.raises(DossierError, match=r"field 'currency'='EUR' is not supported; expected 'USD'"):
        load_dossier(folder)


def test_peers_need_the_target_row(make_dossier):
    folder = make_dossier(peers=[["AAA", "A", "X", 1, 2, 3, 4, "", 5, 6, "true"]])
    with pytest.raises(DossierError, match=r"peers.csv: the is_target row is AAA; expected TST"):
        load_dossier(folder)


def test_check_as_of_names_the_data_range(make_dossier):
    d = load_dossier(make_dossier())
    check_as_of(d, SYNTH_AS_OF)  # inside: no error
    with pytest.raises(DossierError, match=r"as_of 2021-02-01 is outside the data: only 20 trading days of prices "
                                           r"before it \(need >= 60\); prices.csv for TST covers 2021-01-04 to 2021-06-18"):
        check_as_of(d, date(2021, 2, 1))
    check_as_of(d, date(2021, 6, 28))  # 10 days after the last price is still allowed
    with pytest.raises(DossierError, match=r"as_of 2021-06-29 is outside the data: 11 days after the last price"):
        check_as_of(d, date(2021, 6, 29))
