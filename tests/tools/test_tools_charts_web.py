"""The report's charts outside the Markdown: on the web run page (the same SVG files the HTML
export embeds, each served with a CSP of its own and checked against its recorded SHA-256), and
the HTML export rendered by headless Chromium, with a screenshot kept under
tests/artifacts/export/ (ignored by git; skipped with the reason where no browser is installed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints.export import export_data
from chainproof.cli._html import export_html
from chainproof.web import create_app
from testkit.dd_answers import dd_model
from testkit.dossier_data import DEMO_AS_OF
from testkit.web_app import safe_page

CHARTS = ("price", "financials", "peers", "legal")
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "export"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def dd_run(settings, built_dossiers):
    """A completed scripted due-diligence run of MMM (its report drew the four charts) and its engine."""
    app = Chainproof(settings, models=StaticModels(dd_model()))
    run = app.start("due-diligence", {"company": "MMM", "as_of": DEMO_AS_OF.isoformat(),
                                      "dossier": str(built_dossiers["MMM"])})
    done = app.decide(run.run_id, action="approve", approver="Kim")
    yield app, run.run_id, Path(done.report_path).parent / run.run_id
    app.close()


def test_run_page_shows_the_reports_charts_served_safely(dd_run):
    engine, run_id, folder = dd_run
    web = create_app(engine, workers=1)
    try:
        web.state.accounts.add("aud", PASSWORD, ["auditor"], actor="test")
        web.state.accounts.add("root", PASSWORD, ["admin"], actor="test")
        page = TestClient(web, base_url="https://testserver")
        assert page.post("/login", data={"username": "aud", "password": PASSWORD, "next": "/runs"},
                         follow_redirects=False).status_code == 303
        html = safe_page(page.get(f"/runs/{run_id}"))
        assert re.findall(rf'<img src="/runs/{run_id}/charts/(\w+)\.svg"', html) == list(CHARTS)
        for name in CHARTS:
            svg = page.get(f"/runs/{run_id}/charts/{name}.svg")
            assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
            assert svg.content == (folder / f"{name}.svg").read_bytes()  # the same bytes the export embeds
            csp = svg.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "sandbox" in csp and "script" not in csp
            assert svg.headers["x-content-type-options"] == "nosniff"
        assert page.get(f"/runs/{run_id}/charts/nope.svg").status_code == 404
        # a chart file changed after the run wrote it is named, not shown
        (folder / "peers.svg").write_text((folder / "peers.svg").read_text().replace("MMM", "<script>x</script>"))
        html = safe_page(page.get(f"/runs/{run_id}"))
        assert "Chart peers: its file is changed since the run wrote it" in html and "/charts/peers.svg" not in html
        assert page.get(f"/runs/{run_id}/charts/peers.svg").status_code == 404
        stranger = TestClient(web, base_url="https://testserver")
        assert stranger.get(f"/runs/{run_id}/charts/price.svg", follow_redirects=False).status_code in (303, 401)
        stranger.post("/login", data={"username": "root", "password": PASSWORD, "next": "/runs"})
        assert stranger.get(f"/runs/{run_id}/charts/price.svg").status_code == 403
    finally:
        web.state.runner.shutdown()
        web.state.reader.close()


def test_html_export_renders_its_charts_in_headless_chromium(dd_run, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (.ci/run installs Debian's chromium: apt-get install -y chromium)")
    engine, run_id, _ = dd_run
    out = tmp_path / "run.html"
    out.write_text(export_html(export_data(engine.audit, run_id)))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / "export-MMM.png"
    shot.unlink(missing_ok=True)
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
            page.on("request", lambda r: problems.append(f"fetched {r.url}") if not r.url.startswith(("file:", "data:")) else None)
            page.goto(out.as_uri())
            images = page.eval_on_selector_all(
                "figure img", "imgs => imgs.map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    print(f"\nscreenshot: {shot}")
    assert sorted(alt for alt, *_ in images) == sorted(f"{n} chart" for n in CHARTS)
    assert all(done and w > 200 and h > 100 for _, done, w, h in images), images  # each SVG decoded and drawn
    assert problems == []  # self-contained: nothing fetched, no CSP complaint, no script error
    assert shot.stat().st_size > 20_000
