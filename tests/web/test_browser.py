"""The pages in a real browser: Debian's headless Chromium driven by Playwright (no browser
download; ``.ci/run`` installs ``chromium``). An analyst starts a run and watches its steps
arrive over SSE, an approver edits the proposal in a second browser context and approves, the
analyst's page shows the run complete, an auditor verifies and replays the trace, and an analyst
is refused the inbox. No recorded ``<script>`` runs (no dialog opens) and no page breaks its CSP.
A screenshot of each page is saved under tests/artifacts/browser/ (ignored by git)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from testkit.web_app import PASSWORD, SCRIPT

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (the test extra)")


@pytest.fixture
def server(web):
    """The fixture's app served by uvicorn on a free 127.0.0.1 port; yields its base URL."""
    import uvicorn

    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (.ci/run installs Debian's chromium: apt-get install -y chromium)")
    web.app.state.settings.auth.secure_cookies = True
    srv = uvicorn.Server(uvicorn.Config(web.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (srv.started and srv.servers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def _watch(page, problems: list[str]) -> None:
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))


def _sign_in(browser, base: str, name: str, problems: list[str]):
    page = browser.new_context().new_page()
    _watch(page, problems)
    page.goto(f"{base}/runs")  # not signed in: to the sign-in page, then back
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")  # the keyboard submits the form
    page.wait_for_url(f"{base}/runs")
    return page


def test_analyst_approver_and_auditor_in_headless_chromium(web, server):
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    print(f"\nscreenshots: {SHOTS}")
    problems: list[str] = []
    expect = sync_api.expect
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        analyst = _sign_in(browser, server, "ana", problems)
        analyst.screenshot(path=SHOTS / "1-runs.png", full_page=True)
        analyst.get_by_role("link", name="New run").click()
        analyst.get_by_role("link", name="web-toy").click()
        analyst.get_by_label("X").fill("7")
        analyst.screenshot(path=SHOTS / "2-new-run.png", full_page=True)
        analyst.get_by_role("button", name="Start the run").click()
        analyst.wait_for_url(f"{server}/runs/*")
        run_id = analyst.url.rsplit("/", 1)[1]
        steps = analyst.locator("#timeline li.ev-step")  # the served timeline is empty: these come over SSE
        expect(steps.first).to_be_visible(timeout=30_000)
        expect(analyst.locator("#run-status")).to_have_text("paused", timeout=30_000)
        assert steps.count() >= 3
        expect(analyst.get_by_role("link", name="Waiting for approval: open the inbox")).to_be_visible()
        analyst.screenshot(path=SHOTS / "3-live-paused.png", full_page=True)

        approver = _sign_in(browser, server, "dana", problems)
        approver.get_by_role("link", name="Approval inbox").click()
        expect(approver.get_by_text(SCRIPT, exact=False).first).to_be_visible()  # the proposal's markup, as text
        approver.screenshot(path=SHOTS / "4-inbox.png", full_page=True)
        approver.get_by_role("link", name="Edit…").click()
        approver.get_by_label("Verdict").select_option("no")
        approver.get_by_label("Reason").fill(f"too thin {SCRIPT}")
        approver.get_by_role("button", name="Review the changes").click()
        expect(approver.locator("tr.changed")).to_have_count(2)
        approver.screenshot(path=SHOTS / "5-confirm-edit.png", full_page=True)
        approver.get_by_role("button", name="Confirm the edit and approve").click()
        approver.wait_for_url(f"{server}/runs/{run_id}")

        expect(analyst.locator("#run-status")).to_have_text("completed", timeout=30_000)
        expect(analyst.locator("#timeline li.ev-completed")).to_have_count(1)
        expect(analyst.locator("#timeline li.ev-resumed")).to_contain_text("dana")
        analyst.screenshot(path=SHOTS / "6-live-completed.png", full_page=True)

        auditor = _sign_in(browser, server, "aud", problems)
        auditor.goto(f"{server}/runs/{run_id}/trace")
        auditor.get_by_role("button", name="Verify the hash chain").click()
        expect(auditor.locator("#verify-result strong")).to_have_text("intact")
        auditor.get_by_role("button", name="Replay from the record").click()
        expect(auditor.locator("#replay-result strong")).to_have_text("identical", timeout=60_000)
        auditor.locator("#step-1 summary").focus()
        auditor.keyboard.press("Enter")  # a step opens from the keyboard
        expect(auditor.locator("#step-1 details")).to_have_attribute("open", "")
        auditor.screenshot(path=SHOTS / "7-trace.png", full_page=True)
        auditor.goto(f"{server}/costs")
        expect(auditor.locator("svg.chart rect").first).to_be_visible()
        auditor.screenshot(path=SHOTS / "8-costs.png", full_page=True)

        outsider = _sign_in(browser, server, "bob", problems)
        response = outsider.goto(f"{server}/inbox")
        assert response is not None and response.status == 403
        outsider.screenshot(path=SHOTS / "9-inbox-refused.png", full_page=True)
        browser.close()
    assert problems == []  # no injected script ran, nothing broke the CSP
    [decision] = [a for a in web.engine.audit.records_of(run_id, "approvals") if a.action != "requested"]
    assert (decision.action, decision.approver, decision.payload["edited"]["reason"]) == ("edit", "dana", f"too thin {SCRIPT}")
    assert len(list(SHOTS.glob("*.png"))) == 9
