"""The portfolio scan: per-position ratings and the portfolio's VaR/CVaR from the dossiers, alerts
on high risk listed by `chainproof alerts` with their run ids; on SQLite it runs in this process
(no fan-out, and says why); schedules validate their cron naming the field; on the real
PostgreSQL a schedule fired by a short test cron makes workers run the scan, one position-risk
run per position, and an alert."""

from __future__ import annotations

import json
import math
import time
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

import chainproof.cli as cli
from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import Step
from chainproof.checkpoints.verify import verify_run
from chainproof.errors import InputError
from chainproof.settings import Settings
from chainproof.tools.portfolio import RiskThresholds, portfolio_risk
from testkit import fleet
from testkit.dossier_data import SYNTH_AS_OF, business_days, make_dossier  # noqa: F401 - fixture

fleet.register_all()

AS_OF = SYNTH_AS_OF.isoformat()


def _volatile(make) -> Path:
    """A dossier for VOL: closes swing 6 % a day and fall 40 % over the window (VaR and drawdown breach)."""
    days = business_days(date(2021, 1, 4), 120)
    prices = [(d, round(100 * (0.996 ** i) * (1 + 0.06 * ((-1) ** i)), 4)) for i, d in enumerate(days)]
    toml = ('ticker = "VOL"\nname = "Volatile Co"\nsector = "Industrials"\ncurrency = "USD"\nunits = "USD millions"\n'
            'fiscal_year_end = "12-31"\npeer_snapshot_date = 2021-05-28\nsources = ["synthetic"]\nnotes = "test"\n')
    peers = [["VOL", "Volatile Co", "Industrials", 50, 20, 2.0, 4.0, 12, 5000, 400, "true"],
             *[[t, t, "Industrials", 10, 15, 1.5, 2.0, "", 1000, 100, "false"] for t in ("AAA", "BBB", "CCC")]]
    return make("VOL", prices=prices, toml=toml, peers=peers)


@pytest.fixture
def book(make_dossier, tmp_path) -> Path:  # noqa: F811 - the imported fixture
    make_dossier("TST")
    _volatile(make_dossier)
    path = tmp_path / "book.csv"
    path.write_text("ticker,weight,dossier\nTST,0.6,TST\nVOL,0.3,VOL\n", encoding="utf-8")
    return path


def test_portfolio_var_is_the_weighted_returns_quantile_and_the_volatile_position_rates_high(book):
    out = portfolio_risk(str(book), SYNTH_AS_OF, RiskThresholds())
    by = {p["ticker"]: p for p in out["positions"]}
    assert by["VOL"]["rating"] == "high" and set(by["VOL"]["breaches"]) >= {"var95_high", "drawdown_high"}
    assert by["TST"]["rating"] == "low" and by["TST"]["weight"] == 0.6
    # recompute the portfolio's VaR by hand from the two price files
    import csv

    closes = [{r["date"]: float(r["close"]) for r in csv.DictReader(open(book.parent / t / "prices.csv"))}
              for t in ("TST", "VOL")]
    dates = sorted(d for d in closes[0] if d <= "2021-06-01")
    returns = sorted(0.6 * (closes[0][b] / closes[0][a] - 1) + 0.3 * (closes[1][b] / closes[1][a] - 1)
                     for a, b in zip(dates, dates[1:]))
    pos = 0.05 * (len(returns) - 1)
    q = returns[math.floor(pos)] + (returns[math.ceil(pos)] - returns[math.floor(pos)]) * (pos - math.floor(pos))
    assert out["portfolio"]["hist_var95_1d"] == pytest.approx(-q)
    assert out["portfolio"]["hist_cvar95_1d"] >= out["portfolio"]["hist_var95_1d"]
    assert out["portfolio"]["n_days"] == len(returns)


def test_a_scan_in_this_process_rates_alerts_and_lists_the_alerts_with_the_run(book, home):
    with Chainproof(Settings(home=home), models=StaticModels(fleet.fleet_model())) as app:
        result = app.start("portfolio-scan", {"portfolio": str(book), "as_of": AS_OF})
        assert result.status == "completed"
        run_id = result.run_id
        steps = {s.node: s for s in app.audit.records_of(run_id, Step)}
        assert verify_run(app.audit, run_id).ok
        assert app.replay(run_id).outcome == "identical"
    report = Path(result.report_path).read_text(encoding="utf-8")
    assert "| VOL | 0.3 |" in report and "high" in report
    runs_step = next(s for s in app.audit.records_of(run_id, Step) if s.title == "Record Position runs")
    assert "need PostgreSQL" in json.dumps(runs_step.output)  # no fan-out without workers, and why
    alerts = steps["report"].output["alerts"]
    assert {a["subject"] for a in alerts} == {"VOL"} | ({"portfolio"} if len(alerts) == 2 else set())
    out = CliRunner().invoke(cli.app, ["alerts", "--json"])
    assert out.exit_code == 0, out.output
    listed = json.loads(out.output)
    assert any(a["subject"] == "VOL" and a["run_id"] == run_id and a["graph"] == "portfolio-scan" for a in listed)


def test_a_bad_portfolio_file_is_refused_naming_the_line_and_field(book, home):
    bad = book.parent / "bad.csv"
    for text, named in (("ticker,weight,dossier\nTST,0.6,TST\nVOL,heavy,VOL\n", "line 3: weight"),
                        ("ticker,weight\nTST,0.6\n", "line 2: dossier: no bundled dossier for ticker 'TST'"),
                        ("ticker,weight,dossier\nTST,0.6,TST\nVOL,0.5,VOL\n", "weight: the weights add up to 1.1"),
                        ("ticker,size\nTST,0.6\n", "missing column(s) ['weight']")):
        bad.write_text(text, encoding="utf-8")
        out = CliRunner().invoke(cli.app, ["run", "portfolio-scan", "--portfolio", str(bad), "--as-of", AS_OF])
        assert out.exit_code == 2 and named in out.output, out.output
    assert not (home / "audit.sqlite").exists() or "portfolio-scan" not in CliRunner().invoke(cli.app, ["runs"]).output


@pytest.mark.parametrize("cron, field", [("61 * * * *", "minute"), ("0 25 * * *", "hour"),
                                         ("0 6 * 13 *", "month"), ("0 6 * * mon-xx", "day of week"),
                                         ("75 */2 * * * *", "second"), ("0 6 * *", "5 fields"),
                                         ("0 6 31 2 *", "day-of-month field '31' and the month field '2'"),
                                         ("0 0 6 30 2 *", "never fire")])
def test_a_bad_cron_exits_2_naming_the_field(cron, field, home):
    out = CliRunner().invoke(cli.app, ["schedule", "add", "daily", "--cron", cron, "--graph", "portfolio-scan"])
    assert out.exit_code == 2, out.output
    assert field in out.output and "--cron" in out.output


def test_schedules_need_postgres_and_say_so(home):
    for args in (["schedule", "add", "daily", "--cron", "0 6 * * *", "--graph", "portfolio-scan"],
                 ["schedule", "list"], ["schedule", "remove", "daily"]):
        out = CliRunner().invoke(cli.app, args)
        assert out.exit_code == 2 and "need PostgreSQL" in out.output, out.output


def test_a_schedule_added_with_a_relative_portfolio_stores_its_absolute_path(pg_url, tmp_path, book, monkeypatch):
    """Workers read the schedule's inputs from their own folders: the file named from the adding
    folder is the one every worker scans."""
    pytest.importorskip("dbos", reason="the workers extra (PyPI dbos) is not installed")
    for k, v in {"CHAINPROOF_HOME": str(tmp_path / "cli"), "CHAINPROOF_DATABASE_URL": pg_url,
                 "CHAINPROOF_CHECKPOINT_URL": pg_url}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(book.parent)
    runner = CliRunner()
    added = runner.invoke(cli.app, ["schedule", "add", "rel", "--cron", "0 6 * * *", "--graph", "portfolio-scan",
                                    "--input", "portfolio=book.csv", "--input", f"as_of={AS_OF}"])
    assert added.exit_code == 0, added.output
    for name, dossier in (("local", "TST"), ("bundled", "MMM")):  # a folder here; a ticker each worker looks up
        added = runner.invoke(cli.app, ["schedule", "add", name, "--cron", "0 6 * * *", "--graph", "position-risk",
                                        "--input", f"ticker={dossier}", "--input", f"as_of={AS_OF}",
                                        "--input", f"dossier={dossier}"])
        assert added.exit_code == 0, added.output
    listed = {s["name"]: s["inputs"] for s in json.loads(runner.invoke(cli.app, ["schedule", "list", "--json"]).output)}
    assert listed["rel"]["portfolio"] == str(book.resolve())
    assert listed["local"]["dossier"] == str((book.parent / "TST").resolve()) and listed["bundled"]["dossier"] == "MMM"
    for name in listed:
        assert runner.invoke(cli.app, ["schedule", "remove", name]).exit_code == 0


def test_a_scheduled_scan_fires_on_workers_with_per_position_runs_and_an_alert(pg_url, tmp_path, book, monkeypatch):
    pytest.importorskip("dbos", reason="the workers extra (PyPI dbos) is not installed")
    for k, v in {"CHAINPROOF_HOME": str(tmp_path / "cli"), "CHAINPROOF_DATABASE_URL": pg_url,
                 "CHAINPROOF_CHECKPOINT_URL": pg_url}.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    args = ["schedule", "add", "test-scan", "--cron", "*/3 * * * * *", "--graph", "portfolio-scan",
            "--input", f"portfolio={book}", "--input", f"as_of={AS_OF}"]
    bad = runner.invoke(cli.app, args[:-2] + ["--input", "as_of=June"])
    assert bad.exit_code == 2 and "as_of" in bad.output, bad.output  # inputs checked when added
    added = runner.invoke(cli.app, args)
    assert added.exit_code == 0, added.output
    assert runner.invoke(cli.app, args).exit_code == 2  # the name is taken
    listed = json.loads(runner.invoke(cli.app, ["schedule", "list", "--json"]).output)
    assert [(s["name"], s["cron"], s["graph"]) for s in listed] == [("test-scan", "*/3 * * * * *", "portfolio-scan")]
    procs = fleet.start_ready(pg_url, tmp_path, "w1", "w2", concurrency=4,
                              CHAINPROOF_WORKERS__SCHEDULER_POLLING_INTERVAL_S="0.5")
    settings = Settings(home=tmp_path / "reader", database_url=pg_url, checkpoint_url=pg_url)
    with Chainproof(settings, models=StaticModels(fleet.fleet_model())) as app:
        deadline = time.monotonic() + 120
        scans: list[str] = []
        while not scans and time.monotonic() < deadline:
            scans = [r.run_id for r, _, _ in app.audit.list_runs(100) if r.graph == "portfolio-scan"]
            time.sleep(0.2)
        removed = runner.invoke(cli.app, ["schedule", "remove", "test-scan"])  # one firing is enough
        assert removed.exit_code == 0, removed.output
        assert runner.invoke(cli.app, ["schedule", "remove", "test-scan"]).exit_code == 2
        assert scans, fleet.stop_workers(*procs)
        scan = scans[-1]
        fleet.wait_status(app, [scan], "completed", procs)
        runs_step = next(s for s in app.audit.records_of(scan, Step) if s.title == "Record Position runs")
        child_ids = json.loads(runs_step.output["finding"])["submitted"]
        assert set(child_ids) == {"TST", "VOL"}
        fleet.wait_status(app, list(child_ids.values()), "completed", procs)
        fleet.stop_workers(*procs)
        assert app.audit.get_run(scan).started_by == "schedule:test-scan"
        assert all(verify_run(app.audit, r).ok for r in [scan, *child_ids.values()])
        alerts = app.audit.alerts()
    by_run = {(a["run_id"], a["subject"]) for a in alerts}
    assert (child_ids["VOL"], "VOL") in by_run  # the position run's own alert
    assert (scan, "VOL") in by_run and (child_ids["TST"], "TST") not in by_run
    scan_alert = next(a for a in alerts if a["run_id"] == scan and a["subject"] == "VOL")
    assert scan_alert["position_run"] == child_ids["VOL"]
    assert json.loads(runner.invoke(cli.app, ["schedule", "list", "--json"]).output) == []



def test_a_retried_fan_out_submits_one_child_run_per_position(pg_url, tmp_path, book, monkeypatch):
    """The scan's fan-out runs again when its DBOS step is retried (or its worker died): the first
    attempt here fails after submitting TST (VOL is recorded and checkpointed, its enqueue fails);
    the retry submits nothing twice: one run, one run_queued and one DBOS workflow per position."""
    pytest.importorskip("dbos", reason="the workers extra (PyPI dbos) is not installed")
    import psycopg

    from chainproof import workers
    from chainproof.graphs.portfolio_scan import fan_out, position_run_id

    settings = Settings(home=tmp_path / "scan", database_url=pg_url, checkpoint_url=pg_url)
    enqueue, calls = workers.enqueue, []

    def flaky(*args, **kwargs):  # the first attempt's second enqueue fails, as a dropped connection would
        calls.append(args[1])
        if len(calls) == 2:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return enqueue(*args, **kwargs)

    with Chainproof(settings, models=StaticModels(fleet.fleet_model())) as app:
        monkeypatch.setattr(workers, "enqueue", flaky)
        with pytest.raises(psycopg.OperationalError):
            fan_out(app, "scan00000001", str(book), SYNTH_AS_OF, {})
        monkeypatch.setattr(workers, "enqueue", enqueue)
        first = fan_out(app, "scan00000001", str(book), SYNTH_AS_OF, {})  # the retry
        again = fan_out(app, "scan00000001", str(book), SYNTH_AS_OF, {})  # and once more
        assert first == again == {"TST": position_run_id("scan00000001", 0, "TST"),
                                  "VOL": position_run_id("scan00000001", 1, "VOL")}
        other = fan_out(app, "scan00000002", str(book), SYNTH_AS_OF, {})  # another scan: its own runs
        assert set(other.values()).isdisjoint(first.values())
        children = sorted(r.run_id for r, _, _ in app.audit.list_runs(100) if r.graph == "position-risk")
        assert children == sorted([*first.values(), *other.values()])
        for run_id in first.values():
            assert len(app.audit.events_of(run_id, "run_queued")) == 1
            assert verify_run(app.audit, run_id).ok
        with pytest.raises(InputError, match="run_id: .* already a run of graph 'position-risk'"):
            app.submit("portfolio-scan", {"portfolio": str(book), "as_of": AS_OF}, run_id=first["TST"])
    with psycopg.connect(pg_url) as conn:
        workflows = [r[0] for r in conn.execute("SELECT workflow_uuid FROM dbos.workflow_status "
                                                "WHERE name = 'chainproof.advance_run'")]
    assert sorted(workflows) == sorted(f"{r}:start" for r in [*first.values(), *other.values()])
