"""The endpoint SLA over the web: the JSON API gives the figures of ``chainproof sla --json``, the
page shows them with charts; reading roles see it, an admin-only account and strangers do not."""

from __future__ import annotations

from datetime import UTC, datetime

from chainproof.checkpoints.audit_schema import Step
from testkit.web_app import SCRIPT
from testkit.web_app import safe_page as _safe


def _seed(web) -> None:
    audit = web.engine.audit
    audit.start_run("sla1", graph="web-toy", goal="g", inputs={}, department="M&A")
    attempts = [{"attempt": 1, "endpoint": "primary", "latency_s": 0.05, "error_class": "RateLimitError",
                 "kind": "rate_limited", "status_code": 429},
                {"attempt": 2, "endpoint": "primary", "latency_s": 0.8, "error_class": None},
                {"attempt": 1, "endpoint": SCRIPT, "latency_s": 1.5, "error_class": None}]
    audit.append("sla1", Step(step_no=1, node="n", kind="k", title="t", status="ok", inputs={},
                              output={"model_attempts": attempts}, started_at=datetime.now(UTC), duration_s=0.1))


def test_api_gives_the_figures_to_every_reading_role_only(web):
    _seed(web)
    for name in ("ana", "dana", "aud"):
        data = web.client(name).get("/api/sla", params={"since": "1h"}).json()
        primary = next(e for e in data["endpoints"] if e["endpoint"] == "primary")
        assert (primary["requests"], primary["availability"], primary["rate_limited_share"], primary["p95_s"]) == \
            (2, 0.5, 0.5, 0.8)
    assert web.client("root").get("/api/sla").status_code == 403
    assert web.client().get("/api/sla").status_code == 401
    bad = web.client("aud").get("/api/sla", params={"since": "soon"})
    assert bad.status_code == 422 and "since" in bad.text


def test_page_shows_the_table_and_charts_and_endpoint_names_as_text(web):
    _seed(web)
    page = _safe(web.page("aud").get("/sla"))
    assert "Endpoint SLA" in page and "50.0%" in page and "0.800" in page
    assert page.count('<svg class="chart"') == 3 and "&lt;script&gt;" in page
    assert web.page("root").get("/sla").status_code == 403
    assert "since" in _safe(web.page("aud").get("/sla", params={"since": "x"}), 422)
