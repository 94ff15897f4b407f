"""What a user sees when something is wrong: one line naming the problem, nothing half-recorded."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import graphs.cli as cli
from agents.models import StaticModels
from agents.scripted import ScriptedChatModel
from graphs.registry import register
from graphs.runner import Chainproof
from graphs.settings import Settings
from tests.toy_graph import ToyGraph

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
