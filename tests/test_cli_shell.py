"""The command-line shell: one error contract for every command, read-only commands that check
the schema instead of migrating it, `pending` from the record alone, and one `run` for every graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

import chainproof.cli as cli
from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints import audit_db
from chainproof.graphs import registry
from chainproof.graphs.registry import register
from testkit.environ import without_settings
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setattr(cli.console, "_width", 300)  # whole ids in Rich tables; restored to auto (None) after


def _scripted(settings, monkeypatch):
    monkeypatch.setattr(cli, "_engine", lambda: Chainproof(settings, models=StaticModels(
        ScriptedChatModel(replies=["a", "b", "c", GOOD]))))


def test_a_bug_inside_a_command_is_an_internal_error_not_bad_input(settings, monkeypatch):
    from chainproof.checkpoints.audit import AuditStore
    from chainproof.checkpoints.audit_read import AuditReader

    AuditStore(settings.resolved_database_url).close()  # an existing, empty store

    def broken(self, limit=50):
        raise KeyError("status")  # a programming bug, not the user's input

    monkeypatch.setattr(AuditReader, "list_runs", broken)
    result = CliRunner().invoke(cli.app, ["runs"])
    assert result.exit_code == 1, result.output
    assert "internal error: KeyError" in result.output and "CHAINPROOF_DEBUG=1" in result.output
    assert "Traceback" not in result.output


def test_head_revision_matches_the_migrations():
    script = ScriptDirectory(str(Path(audit_db.__file__).parent / "migrations"))
    assert audit_db.HEAD_REVISION == script.get_current_head()
    assert audit_db.KNOWN_REVISIONS[-1] == audit_db.HEAD_REVISION


def test_an_outdated_store_names_the_upgrade_command_and_db_upgrade_fixes_it(settings):
    engine = audit_db.make_engine(settings.resolved_database_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(audit_db.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    engine.dispose()
    runner = CliRunner()
    for args in (["runs"], ["pending"], ["verify", "--all"]):
        refused = runner.invoke(cli.app, args)
        assert refused.exit_code == 2, refused.output
        assert "revision 0002" in refused.output and "chainproof db upgrade" in refused.output
    upgraded = runner.invoke(cli.app, ["db", "upgrade"])
    assert upgraded.exit_code == 0 and "upgraded from 0002" in upgraded.output
    assert runner.invoke(cli.app, ["runs"]).exit_code == 0


def test_pending_reads_the_record_and_survives_a_graph_that_cannot_be_loaded(settings, monkeypatch):
    _scripted(settings, monkeypatch)
    register("toy-gone", ToyGraph)
    with cli._engine() as app:
        kept = app.start("toy", {"x": 7})
        gone = app.start("toy-gone", {"x": 7})
    registry.unregister("toy-gone")  # its graph is no longer known
    runner = CliRunner()
    listed = runner.invoke(cli.app, ["pending"])
    assert listed.exit_code == 0, listed.output
    assert kept.run_id in listed.output and gone.run_id in listed.output
    assert runner.invoke(cli.app, ["show", gone.run_id]).exit_code == 0
    approved = runner.invoke(cli.app, ["approve", kept.run_id, "--as", "Dana"])
    assert approved.exit_code == 0, approved.output
    after = runner.invoke(cli.app, ["pending"])
    assert kept.run_id not in after.output and gone.run_id in after.output


@pytest.mark.parametrize("args", [["--input", "x=7"], ["--x", "7"], ["--x=7"]])
def test_run_takes_inputs_for_any_registered_graph(settings, monkeypatch, args):
    _scripted(settings, monkeypatch)
    result = CliRunner().invoke(cli.app, ["run", "toy", *args])
    assert result.exit_code == 0, result.output
    assert "Approval needed" in result.output
    with cli._engine() as app:
        run = app.audit.list_runs()[0][0]
    assert run.graph == "toy" and run.inputs == {"x": 7}


def test_run_inputs_file_and_bad_inputs_are_one_line(settings, monkeypatch, tmp_path):
    _scripted(settings, monkeypatch)
    runner = CliRunner()
    (tmp_path / "in.toml").write_text("x = 7\n")
    assert runner.invoke(cli.app, ["run", "toy", "--inputs-file", str(tmp_path / "in.toml")]).exit_code == 0
    for args, needle in [(["--inputs-file", str(tmp_path / "missing.json")], "--inputs-file"),
                         (["--input", "x"], "--input 'x': expected KEY=VALUE"),
                         (["--x", "seven"], "x: expected an integer"),
                         (["stray"], "unexpected argument 'stray'")]:
        result = runner.invoke(cli.app, ["run", "toy", *args])
        assert result.exit_code == 2 and needle in result.output, result.output
    unknown = runner.invoke(cli.app, ["run", "no-such-graph", "--x", "1"])
    assert unknown.exit_code == 2 and "no-such-graph" in unknown.output


def test_graphs_lists_graphs_and_their_inputs(home):
    result = CliRunner().invoke(cli.app, ["graphs"])
    assert result.exit_code == 0, result.output
    assert "due-diligence" in result.output and "toy" in result.output


def test_edit_with_an_unreadable_file_is_one_line(home, tmp_path):
    result = CliRunner().invoke(cli.app, ["edit", "r1", "--as", "Dana", "--file", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "--file" in result.output and "cannot read" in result.output, result.output


def test_runs_tells_a_run_whose_process_died_from_one_running_now(settings, monkeypatch):
    from chainproof._locks import run_lock
    from chainproof.checkpoints.audit_schema import EventRecord

    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["ok"], repeat_last=True))) as app:
        run = app.start("toy", {"x": 2})
        app.audit.append(run.run_id, EventRecord(kind="run_resumed", detail={"after": "paused"}))  # then the process died
    listed = CliRunner().invoke(cli.app, ["runs"])
    assert listed.exit_code == 0 and "its process ended" in listed.output
    with run_lock(settings.home, run.run_id):  # a process holds it: running now
        listed = CliRunner().invoke(cli.app, ["runs"])
    assert "its process ended" not in listed.output and "resumed" in listed.output


@pytest.mark.parametrize(("flag", "value", "says"), [("--budget-usd", "-1", "budget_usd (--budget-usd): Input should be greater than 0"),
                                                     ("--budget-usd", "1e400", "budget_usd (--budget-usd): Input should be a finite number"),
                                                     ("--max-steps", "0", "max_steps (--max-steps): Input should be greater than or equal to 1"),
                                                     ("--max-steps", "99999999999999999999",
                                                      "max_steps (--max-steps): Input should be less than or equal to 1000000")])
def test_an_out_of_range_budget_names_the_option_typed(home, flag, value, says):
    result = CliRunner().invoke(cli.app, ["run", "due-diligence", "--company", "MMM", "--as-of", "2018-02-08", flag, value])
    assert result.exit_code == 2 and says in result.output
    assert "No runs yet" in CliRunner().invoke(cli.app, ["runs"]).output  # nothing was recorded


def test_pending_shows_the_newest_requests_up_to_its_limit(settings):
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["ok"], repeat_last=True))) as app:
        ids = [app.start("toy", {"x": i}).run_id for i in (1, 2, 3)]
    listed = CliRunner().invoke(cli.app, ["pending", "--limit", "2"])
    assert listed.exit_code == 0, listed.output
    assert ids[2] in listed.output and ids[1] in listed.output and ids[0] not in listed.output
    assert "1 more open requests on older runs" in listed.output


READ_ONLY = [["runs"], ["pending"], ["show", "RUN"], ["verify", "RUN"], ["costs", "RUN"], ["export", "RUN"]]


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: a[0])
def test_read_only_commands_import_neither_the_engine_nor_the_orm(settings, args):
    """What keeps them under half a second (bench/cli.py): no LangGraph, model clients or
    SQLAlchemy ORM is imported, yet they read a real run."""
    import subprocess
    import sys

    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["a", "b", "c", GOOD]))) as app:
        run_id = app.start("toy", {"x": 3}).run_id
    argv = [run_id if a == "RUN" else a for a in args]
    code = ("import sys; from chainproof.cli import app\n"
            f"try:\n    app({argv!r})\nexcept SystemExit as e:\n    code = e.code\n"
            "heavy = sorted({m.split('.')[0] if not m.startswith('sqlalchemy.orm') else 'sqlalchemy.orm' for m in sys.modules"
            " if m.split('.')[0] in ('langgraph', 'langchain_core', 'openai') or m.startswith('sqlalchemy.orm')})\n"
            "print('HEAVY', heavy, 'EXIT', code)")
    env = without_settings()
    env.update(CHAINPROOF_HOME=str(settings.home), COLUMNS="200")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "HEAVY [] EXIT 0" in out.stdout, out.stdout + out.stderr
    if args[0] in ("show", "export", "costs"):
        assert run_id in out.stdout


def test_records_read_back_are_read_only_and_name_their_table(settings):
    from chainproof.checkpoints.audit_read import AuditReader

    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["a", "b", "c", GOOD]))) as app:
        run_id = app.start("toy", {"x": 3}).run_id
    reader = AuditReader(settings.resolved_database_url)
    try:
        first = reader.records(run_id)[0]
        assert (type(first).__tablename__, first.kind, first.seq) == ("events", "run_started", 1)
        with pytest.raises(AttributeError, match="read-only"):
            first.kind = "run_completed"
        assert first.replace(kind="run_completed").kind == "run_completed" and first.kind == "run_started"
        with pytest.raises(AttributeError, match="no column 'colour'"):
            first.replace(colour="red")
        with pytest.raises(ValueError, match="table: expected one of steps, model_calls"):
            reader.records_of(run_id, "stepz")
        assert [s.node for s in reader.records_of(run_id, "steps")][:1] == ["plan"]
    finally:
        reader.close()


@pytest.mark.parametrize("args", [["runs"], ["pending"], ["verify", "--all"], ["show", "abc"], ["costs", "abc"]],
                         ids=lambda a: a[0])
def test_a_read_only_command_on_a_mistyped_store_path_creates_nothing(tmp_path, monkeypatch, args):
    """An auditor's typo must not become a new, empty store that `verify --all` calls fine:
    listings say nothing is recorded there; the others refuse (exit 2)."""
    wrong = tmp_path / "no-such-dir" / "audit.sqlite"
    monkeypatch.setenv("CHAINPROOF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHAINPROOF_DATABASE_URL", f"sqlite:///{wrong}")
    result = CliRunner().invoke(cli.app, args)
    if args[0] in ("runs", "pending"):
        assert result.exit_code == 0 and f"No runs yet (no audit store at {wrong})" in result.output.replace("\n", "")
    else:
        assert result.exit_code == 2, result.output
        assert "no audit store at" in result.output and "CHAINPROOF_DATABASE_URL" in result.output
    assert not wrong.parent.exists()


@pytest.mark.parametrize("month", ["2026-1", "2026-13", "26-01", "2026-01-05"])
def test_costs_refuses_a_month_that_is_not_yyyy_mm(home, month):
    result = CliRunner().invoke(cli.app, ["costs", "--department", "risk", "--month", month])
    assert result.exit_code == 2 and f"month: expected YYYY-MM, got {month!r}" in result.output
