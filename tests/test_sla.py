"""Endpoint SLA from the attempts already in the audit store: availability, nearest-rank p50/p95
of answered requests, 429 share, failovers, the window and the UTC day; ``chainproof sla``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from chainproof.checkpoints.audit import AuditStore
from chainproof.checkpoints.audit_schema import Step
from chainproof.cli import app as cli
from chainproof.errors import InputError
from chainproof.graphs.sla import parse_window, percentile, sla_report
from chainproof.settings import Settings


def ok(endpoint: str, latency: float, **extra) -> dict:
    return {"attempt": 1, "endpoint": endpoint, "latency_s": latency, "error_class": None, **extra}


def failed(endpoint: str, kind: str, status: int | None, latency: float = 0.05) -> dict:
    return {"attempt": 1, "endpoint": endpoint, "latency_s": latency, "error_class": "X", "kind": kind,
            "status_code": status}


STEPS = [
    [failed("primary", "rate_limited", 429), ok("primary", 0.5)],
    [ok("primary", 1.0)],
    [failed("primary", "server_error", 500), ok("backup", 2.0, failover_from="primary")],
    [ok("primary", 0.2), {"attempt": 2, "endpoint": "-", "kind": "circuit_open", "error_class": "CircuitOpen"}],
    [ok("primary", 0.3), ok("primary", 0.4), ok("primary", 3.0)],
    [],  # a step without model calls
]


def seed(url: str, steps=STEPS) -> None:
    store = AuditStore(url)
    try:
        store.start_run("r1", graph="toy", goal="g", inputs={})
        for i, attempts in enumerate(steps, 1):
            output = {"model_attempts": attempts} if attempts else {"finding": "no model"}
            store.append("r1", Step(step_no=i, node="n", kind="k", title="t", status="ok", inputs={}, output=output,
                                    started_at=datetime.now(UTC), duration_s=0.1))
    finally:
        store.close()


def test_figures_per_endpoint_follow_the_documented_definitions(home):
    url = Settings(home=home).resolved_database_url
    seed(url)
    store = AuditStore(url)
    try:
        report = sla_report(store, "24h")
    finally:
        store.close()
    backup, primary = (e.as_dict() for e in report.endpoints)  # by name
    # primary: 8 requests sent, 6 answered (0.2 0.3 0.4 0.5 1.0 3.0), one 429, one 500, one failover away
    assert primary == {"endpoint": "primary", "day": None, "requests": 8, "ok": 6, "availability": 0.75,
                       "p50_s": 0.4, "p95_s": 3.0, "rate_limited": 1, "rate_limited_share": 0.125, "failovers": 1,
                       "errors": {"rate_limited": 1, "server_error": 1}}
    assert (backup["requests"], backup["availability"], backup["p50_s"], backup["p95_s"], backup["failovers"]) == \
        (1, 1.0, 2.0, 2.0, 0)
    assert report.short_circuited == 1  # refused by the breaker: no request, no endpoint
    today = datetime.now(UTC).date().isoformat()
    assert [(d.day, d.endpoint, d.requests) for d in report.days] == [(today, "backup", 1), (today, "primary", 8)]


def test_the_window_ends_now_and_leaves_out_older_attempts(home):
    url = Settings(home=home).resolved_database_url
    seed(url)
    store = AuditStore(url)
    try:
        later = datetime.now(UTC) + timedelta(hours=2)
        assert sla_report(store, "1h", now=later).endpoints == []  # written more than an hour before "now"
        assert [e.requests for e in sla_report(store, "3h", now=later).endpoints] == [1, 8]
        assert sla_report(store, "24h", now=datetime.now(UTC) - timedelta(hours=1)).endpoints == []  # after "now"
    finally:
        store.close()


def test_nearest_rank_percentiles_and_window_parsing():
    assert percentile([], 95) is None
    assert percentile([5.0], 50) == 5.0
    values = [float(v) for v in range(1, 21)]  # 1..20: p50 = 10th value, p95 = 19th
    assert (percentile(values, 50), percentile(values, 95)) == (10.0, 19.0)
    assert parse_window("90m") == timedelta(minutes=90) and parse_window("7d") == timedelta(days=7)
    for bad in ("", "24", "0h", "-1h", "1y", "h"):
        with pytest.raises(InputError, match="since: expected a positive duration"):
            parse_window(bad)
    with pytest.raises(InputError, match="since: at most 36525 days"):  # not an OverflowError
        parse_window("99999999999d")


def test_cli_prints_the_table_and_the_same_figures_as_json(home):
    seed(Settings(home=home).resolved_database_url)
    runner = CliRunner()
    table = runner.invoke(cli, ["sla"])
    assert table.exit_code == 0, table.output
    line = next(ln for ln in table.output.splitlines() if ln.startswith("primary"))
    assert line.split()[:7] == ["primary", "8", "75.0%", "0.400", "3.000", "12.5%", "1"]
    assert "refused by the circuit breaker" in table.output
    data = json.loads(runner.invoke(cli, ["sla", "--json", "--since", "7d"]).stdout)
    assert [(e["endpoint"], e["availability"], e["p95_s"]) for e in data["endpoints"]] == [("backup", 1.0, 2.0),
                                                                                           ("primary", 0.75, 3.0)]
    bad = runner.invoke(cli, ["sla", "--since", "yesterday"])
    assert bad.exit_code == 2 and "since: expected" in bad.output


def test_cli_without_requests_says_so(home):
    seed(Settings(home=home).resolved_database_url, steps=[[]])
    out = CliRunner().invoke(cli, ["sla"])
    assert out.exit_code == 0 and "No model requests recorded in the last 24h." in out.output
