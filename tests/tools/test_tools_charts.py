"""The report's charts for two companies: written beside the Markdown report, which links them, and
embedded in the self-contained HTML export; each draws what an analyst checks it against."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.cli import app as cli
from testkit.dd_answers import dd_model
from testkit.dossier_data import DEMO_AS_OF

CHARTS = ("price", "financials", "peers", "legal")


@pytest.mark.parametrize("ticker", ["MMM", "BA"])
def test_charts_are_written_beside_the_report_and_embedded_in_the_html_export(settings, built_dossiers, tmp_path, ticker):
    with Chainproof(settings, models=StaticModels(dd_model())) as app:
        run = app.start("due-diligence", {"company": ticker, "as_of": DEMO_AS_OF.isoformat(),
                                          "dossier": str(built_dossiers[ticker])})
        done = app.decide(run.run_id, action="approve", approver="Kim")
        assert app.replay(run.run_id).outcome == "identical"  # the charts render the same bytes again
    report_path = Path(done.report_path)
    report = report_path.read_text()
    findings = {k: v["data"] for k, v in done.state["findings"].items()}
    svgs = {}
    for name in CHARTS:
        assert f"]({run.run_id}/{name}.svg)" in report  # the Markdown links the file beside it
        svg = (report_path.parent / run.run_id / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg and len(svg) > 5_000
        svgs[name] = svg
    risk = findings["market_risk"]
    assert f"max drawdown {risk['max_drawdown'] * 100:.1f} %" in svgs["price"] and "S&amp;P 500" in svgs["price"]
    assert ticker in svgs["peers"] and any(p in svgs["peers"] for p in findings["peers"]["peers"])
    assert findings["legal"]["matters"][0]["cite"] in svgs["legal"]
    assert f"FY{findings['financials']['years'][-1]['fiscal_year']}" in svgs["financials"]

    out = tmp_path / "run.html"
    result = CliRunner().invoke(cli, ["export", run.run_id, "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    embedded = [base64.b64decode(b).decode() for b in re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page)]
    assert sorted(embedded) == sorted(svgs.values())  # every chart, byte for byte, inside the one file
    assert not re.search(r'(src|href)="(https?:|/|\./)', page)  # nothing fetched from elsewhere

    (report_path.parent / run.run_id / "peers.svg").write_text(svgs["peers"].replace(ticker, "XXX"))
    CliRunner().invoke(cli, ["export", run.run_id, "--format", "html", "--out", str(out), "--force"])
    assert "Chart peers" in out.read_text() and "SHA-256 differs" in out.read_text()


class _Financials:
    """A run view holding only ``financials.years``."""

    def __init__(self, years: list[dict]) -> None:
        self.years = years

    def data(self, name: str) -> dict:
        return {"years": self.years}


def _drawn(years: list[dict]) -> tuple[list[tuple[float, float]], list[str]]:
    """``([(bar x, height)], legend labels)`` of the financials chart drawn from ``years``."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("svg", force=False)
    import matplotlib.pyplot as plt

    from chainproof.graphs.dd_charts import _financials

    fig = plt.figure()
    try:
        _financials(fig, _Financials(years))  # type: ignore[arg-type]
        ax = fig.axes[0]
        bars = [(round(p.get_x() + p.get_width() / 2, 2), p.get_height()) for p in ax.patches]
        return bars, [t.get_text() for t in ax.get_legend().get_texts()]
    finally:
        plt.close(fig)


def test_a_free_cash_flow_not_available_is_not_drawn_as_zero():
    """FY2016's free cash flow is not available: revenue bars for both years, one free-cash-flow bar
    (FY2017's); with none available, no free-cash-flow bar and no legend entry for it."""
    years = [{"fiscal_year": 2016, "revenue": 100.0, "free_cash_flow": None, "net_margin": 0.1},
             {"fiscal_year": 2017, "revenue": 120.0, "free_cash_flow": -15.0, "net_margin": 0.12}]
    bars, legend = _drawn(years)
    assert bars == [(-0.2, 100.0), (0.8, 120.0), (1.2, -15.0)] and "free cash flow" in legend
    bars, legend = _drawn([{**y, "free_cash_flow": None} for y in years])
    assert bars == [(-0.2, 100.0), (0.8, 120.0)] and legend == ["revenue", "net margin"]
