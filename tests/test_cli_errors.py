"""What a user sees when something is wrong: one line naming the problem, nothing half-recorded."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import chainproof.cli as cli
from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})
RUN = ["run", "due-diligence", "--company", "MMM", "--as-of", "2018-02-08"]


def _one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.strip().startswith("error:")
    assert len(result.output.strip().splitlines()) <= 2, result.output
    for needle in needles:
        assert needle in result.output, result.output


@pytest.mark.parametrize(("var", "value", "needle"), [
    ("CHAINPROOF_DATABASE_URL", "sqlite:////proc/no-such-dir/audit.sqlite", "database_url"),
    ("CHAINPROOF_DATABASE_URL", "notaurl", "database_url 'notaurl'"),
    ("CHAINPROOF_CHECKPOINT_URL", "/proc/no-such-dir/cp.sqlite", "checkpoint_url"),
])
def test_unusable_storage_is_one_line_naming_the_setting(home, monkeypatch, var, value, needle):
    monkeypatch.setenv(var, value)
    monkeypatch.setenv("CHAINPROOF_MODEL__PROVIDER", "openai")
    monkeypatch.setenv("CHAINPROOF_MODEL__API_KEY", "sk-test-0123456789abcdefXYZ")
    _one_line_error(CliRunner().invoke(cli.app, RUN), needle)
    if var == "CHAINPROOF_CHECKPOINT_URL":  # the audit store works: no run may have been recorded
        with Chainproof(Settings(home=home)) as app:
            assert app.audit.list_runs() == []


def test_unknown_effort_and_bad_settings_fail_before_a_run_is_recorded(home, monkeypatch):
    monkeypatch.setenv("CHAINPROOF_MODEL__PROVIDER", "openai")
    monkeypatch.setenv("CHAINPROOF_MODEL__API_KEY", "sk-test-0123456789abcdefXYZ")
    _one_line_error(CliRunner().invoke(cli.app, [*RUN, "--effort", "extreme"]), "effort: expected one of low, medium, high")
    with Chainproof(Settings(home=home)) as app:
        assert app.audit.list_runs() == []
    monkeypatch.setenv("CHAINPROOF_MODEL__PROVIDER", "Openai")
    _one_line_error(CliRunner().invoke(cli.app, ["runs"]), "model.provider")


def test_as_of_before_the_dossier_date_is_refused_as_look_ahead(home):
    _one_line_error(CliRunner().invoke(cli.app, ["run", "due-diligence", "--company", "MMM", "--as-of", "2016-03-01"]),
                    "before the date this dossier was assembled for (2018-02-08)")


def test_bracketed_names_and_comments_are_shown_as_written(settings, monkeypatch):
    monkeypatch.setattr(cli, "_engine", lambda: Chainproof(settings, models=StaticModels(
        ScriptedChatModel(replies=["a", "b", "c", GOOD]))))
    with cli._engine() as app:
        run = app.start("toy", {"x": 7})
    short = run.requests[0]["request_id"][:12]  # as the pause panel and `show` print it
    runner = CliRunner()
    approved = runner.invoke(cli.app, ["approve", run.run_id, "--request", short, "--as", "Lee [/]",
                                       "--comment", "checked [legal] section"])
    assert approved.exit_code == 0, approved.output
    shown = runner.invoke(cli.app, ["show", run.run_id])
    assert shown.exit_code == 0, shown.output
    assert "Lee [/]" in shown.output and "[legal]" in shown.output


def test_blank_approver_is_one_line(settings, monkeypatch):
    monkeypatch.setattr(cli, "_engine", lambda: Chainproof(settings, models=StaticModels(
        ScriptedChatModel(replies=["a", "b", "c", GOOD]))))
    with cli._engine() as app:
        run = app.start("toy", {"x": 7})
    _one_line_error(CliRunner().invoke(cli.app, ["approve", run.run_id, "--as", ""]), "approver")


def test_an_interrupted_run_is_recorded_and_resumes(settings):
    def stop(messages):
        raise KeyboardInterrupt

    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["a", stop]))) as app:
        with pytest.raises(KeyboardInterrupt) as info:
            app.start("toy", {"x": 7})
        run_id = app.audit.list_runs()[0][0].run_id
        assert app.audit.run_status(run_id) == "failed"
        assert any(f"chainproof resume {run_id}" in n for n in info.value.__notes__)
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["b", "c", GOOD]))) as app:
        assert app.resume(run_id).status == "paused"


def test_a_proposal_with_a_secret_looking_phrase_can_still_be_decided(settings):
    # "authorization: outstanding" matches the Authorization-header pattern and is redacted
    verdict = json.dumps({"verdict": "no", "reason": "the authorization: outstanding for the Decatur plant"})
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["a", "b", "c", verdict]))) as app:
        run = app.start("toy", {"x": 7})
        assert "[REDACTED]" in run.requests[0]["proposed"]["reason"]
        done = app.decide(run.run_id, action="approve", approver="Dana")
    assert done.status == "completed"


def test_one_process_at_a_time_advances_a_run(settings):
    from chainproof.app import RunBusy, run_lock

    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["a", "b", "c", GOOD]))) as app:
        run = app.start("toy", {"x": 7})
        with run_lock(settings.home, run.run_id):  # as if another process were applying a decision
            with pytest.raises(RunBusy, match="another process"):
                app.decide(run.run_id, action="approve", approver="Dana")
            with pytest.raises(RunBusy, match="another process"):
                app.resume(run.run_id)
        assert app.audit.decision_for(run.requests[0]["request_id"]) is None  # the busy approver recorded nothing
        assert app.decide(run.run_id, action="approve", approver="Dana").status == "completed"


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite:///:memory:"])
def test_checkpoint_urls_that_cannot_keep_a_paused_run_are_refused(home, monkeypatch, url):
    monkeypatch.setenv("CHAINPROOF_CHECKPOINT_URL", url)
    monkeypatch.setenv("CHAINPROOF_MODEL__PROVIDER", "openai")
    monkeypatch.setenv("CHAINPROOF_MODEL__API_KEY", "sk-test-0123456789abcdefXYZ")
    _one_line_error(CliRunner().invoke(cli.app, RUN), "checkpoint_url")


def test_a_run_that_failed_and_was_resumed_replays_identically(settings):
    def down(messages):
        raise ConnectionError("endpoint down")

    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["a", down]))) as app:
        with pytest.raises(ConnectionError):
            app.start("toy", {"x": 7})
        run_id = app.audit.list_runs()[0][0].run_id
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["b", "c", GOOD]))) as app:
        app.resume(run_id)
        app.decide(run_id, action="approve", approver="Dana")
        report = app.replay(run_id)
    assert report.outcome == "identical", [s.differences for s in report.steps if s.status != "identical"][:1]
