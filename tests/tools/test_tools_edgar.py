"""``chainproof dossier fetch`` against a fake EDGAR on 127.0.0.1 (recorded responses in EDGAR's
formats, built from ../shared/data), then a scripted due-diligence run on the fetched dossier.

The command runs in a subprocess: edgartools reads EDGAR_BASE_URL / EDGAR_DATA_URL when it is first
imported, and the test process must not keep a mirror setting for other tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.settings import Settings
from chainproof.tools.dossier import load_dossier
from testkit.dd_answers import dd_model
from testkit.dossier_data import DEMO_AS_OF
from testkit.fake_edgar import CIK, EIGHT_KS, TEN_KS, fake_edgar

UA = "Jane Analyst jane@example.com"
ACC_2017, ACC_2018 = TEN_KS["3M_2017_10K"][0], TEN_KS["3M_2018_10K"][0]


def _fetch(tmp: Path, edgar_url: str, market: Path, *extra: str, ua: str | None = UA) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAINPROOF_", "EDGAR_"))}
    env.update(CHAINPROOF_HOME=str(tmp / "home"), EDGAR_BASE_URL=edgar_url, EDGAR_DATA_URL=edgar_url,
               COLUMNS="200")
    if ua is not None:
        env["CHAINPROOF_SEC_USER_AGENT"] = ua
    args = ["dossier", "fetch", "--ticker", "MMM", "--as-of", DEMO_AS_OF.isoformat(), "--out", str(tmp / "MMM"),
            *(f"--{n}={market / f'{n}.csv'}" for n in ("prices", "benchmark", "rates", "peers")), *extra]
    return subprocess.run([sys.executable, "-m", "chainproof.cli", *args], capture_output=True, text=True, env=env,
                          timeout=180)


@pytest.fixture(scope="module")
def fetched(bundle_root: Path, built_dossiers: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """The dossier fetched once from the fake EDGAR; ``(tmp, server, first result, second result)``
    where the second fetch runs after the server's routes are gone (served from the cache)."""
    tmp = tmp_path_factory.mktemp("fetch")
    with fake_edgar(bundle_root) as server:
        first = _fetch(tmp, server.url, built_dossiers["MMM"])
        served = list(server.requests)
        (tmp / "first-financials.csv").write_bytes((tmp / "MMM" / "financials.csv").read_bytes())
        server.routes.clear()  # EDGAR "down": a second fetch must come from the disk cache
        second = _fetch(tmp, server.url, built_dossiers["MMM"])
    return tmp, served, first, second


def test_every_figure_names_its_filings_accession_and_later_filings_are_absent(fetched):
    tmp, _, first, _ = fetched
    assert first.returncode == 0, first.stderr
    d = load_dossier(tmp / "MMM")
    assert d.fiscal_years() == [2015, 2016, 2017]  # the FY2018 10-K was filed 2019-02-07, after as_of
    assert d.financial("revenue", 2017) == 31657 and d.financial("diluted_eps", 2017) == 7.93
    assert d.financial("operating_income", 2017) == 7820  # not the FY2018 10-K's restated 7,692
    assert d.financial("capital_expenditures", 2017) == -1373
    assert all(ACC_2017 in r.source and "filed 2018-02-08" in r.source for r in d.financials)
    assert not any(ACC_2018 in r.source for r in d.financials)
    dates = [h.date.isoformat() for h in d.headlines]
    assert dates == [f for _, f, _ in EIGHT_KS if f <= "2018-02-08"] == ["2017-10-24", "2018-01-25", "2018-02-05"]
    assert all(h.date <= DEMO_AS_OF for h in d.headlines)
    assert any("Results of Operations and Financial Condition" in h.headline for h in d.headlines)


def test_sections_are_the_10k_text_and_sources_carry_urls_and_times(fetched, bundle_root):
    tmp, served, _, _ = fetched
    d = load_dossier(tmp / "MMM")
    real = bundle_root / "sec_10k_filings/sections/3M_2017_10K"
    first_risk_line = (real / "item1a_risk_factors.txt").read_text().splitlines()[2].strip()
    assert d.texts["risk_factors"].startswith("Item 1A") and first_risk_line in d.texts["risk_factors"]
    assert "Item 1B" not in d.texts["risk_factors"]  # ends at the next item heading, not in the table of contents
    note = d.texts["legal_note"]
    assert note.startswith("NOTE 15") or note.startswith("Note 15")
    assert len(note) > 0.95 * len((real / "legal_contingencies_note.txt").read_text()) and "Stock-Based" not in note
    assert all(agent == UA for _, agent in served)  # the declared User-Agent on every request
    assert any(p.endswith(f"{ACC_2017.replace('-', '')}/index.json") for p, _ in served)
    assert not any(ACC_2018.replace("-", "") in p for p, _ in served)
    sources = "\n".join(d.meta.sources)
    assert "companyfacts/CIK0000066740.json (retrieved 20" in sources and "--prices" in sources


def test_a_second_fetch_resumes_from_the_cache_without_edgar(fetched):
    tmp, _, first, second = fetched
    assert second.returncode == 0, second.stderr
    assert first.returncode == 0  # every EDGAR path now answers 404, so the second fetch read only the cache
    assert (tmp / "MMM" / "financials.csv").read_text() == (tmp / "first-financials.csv").read_text()
    assert load_dossier(tmp / "MMM").financial("revenue", 2017) == 31657


def test_a_missing_user_agent_is_refused_before_any_request(bundle_root, built_dossiers, tmp_path):
    with fake_edgar(bundle_root) as server:
        result = _fetch(tmp_path, server.url, built_dossiers["MMM"], ua=None)
        bad = _fetch(tmp_path, server.url, built_dossiers["MMM"], ua="just-a-name")
        assert server.requests == []
    assert result.returncode == 2 and "CHAINPROOF_SEC_USER_AGENT is not set" in result.stderr
    assert "fair-access" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert bad.returncode == 2 and "is not 'Name email'" in bad.stderr
    assert not (tmp_path / "MMM").exists()


def test_a_scripted_due_diligence_run_reads_the_fetched_dossier(fetched, home):
    tmp, _, _, _ = fetched
    model = dd_model("proceed")
    with Chainproof(Settings(home=home), models=StaticModels(model)) as app:
        run = app.start("due-diligence", {"company": "MMM", "as_of": DEMO_AS_OF.isoformat(), "dossier": str(tmp / "MMM")})
        assert run.requests and run.requests[0]["proposed"]["decision"] == "proceed"
        fin = run.state["findings"]["financials"]["data"]
        assert fin["latest_fiscal_year"] == 2017
        done = app.decide(run.run_id, action="approve", approver="Kim")
    report = Path(done.report_path).read_text()
    assert "31,657" in report and "**Approved** by **Kim**" in report
    assert "legal_note ¶" in report and "citations hold" in report  # the real sections were read and cited


def test_companyfacts_without_the_10ks_facts_gives_an_empty_financials_csv_and_says_so(bundle_root, built_dossiers,
                                                                                       tmp_path):
    """EDGAR's companyfacts holds no fact (a new registrant): the fetch still writes the dossier, and
    its output and notes say financials.csv is empty, as ``dossier import`` does."""
    with fake_edgar(bundle_root) as server:
        server.routes[f"/api/xbrl/companyfacts/CIK{CIK:010d}.json"] = json.dumps(
            {"cik": CIK, "entityName": "3M CO", "facts": {}}).encode("utf-8")
        result = _fetch(tmp_path, server.url, built_dossiers["MMM"])
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert f"no XBRL financial facts of a 10-K filed on or before {DEMO_AS_OF.isoformat()} in companyfacts" in said
    assert "financials.csv is empty" in said
    d = load_dossier(tmp_path / "MMM")
    assert not d.financials and "financials.csv is empty" in d.meta.notes
