"""Bad input never loses data, and what people, models and tools wrote is shown as text: an export
never overwrites a file unasked; a field longer than its column is one line naming the option on
every backend, with nothing recorded; input files have a size limit and decoding errors name the
file; terminals never receive control characters; Markdown reports escape HTML."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import chainproof.cli as cli
from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.graphs.registry import register
from chainproof.tools import input_files
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})
REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _engine(settings, monkeypatch, replies=("a", "b", "c", GOOD)) -> None:
    monkeypatch.setattr(cli, "_engine", lambda: Chainproof(settings, models=StaticModels(
        ScriptedChatModel(replies=list(replies)))))


def _one_line(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2, result.output
    for needle in needles:
        assert needle in result.output.replace("\n", " "), result.output


def _paused_run(settings, monkeypatch, **kwargs) -> str:
    _engine(settings, monkeypatch, **kwargs)
    started = runner.invoke(cli.app, ["run", "toy", "--x", "7"])
    assert started.exit_code == 0, started.output
    with Chainproof(settings) as app:
        return app.audit.list_runs(limit=1)[0][0].run_id


def test_export_never_overwrites_a_file_without_force(settings, monkeypatch, tmp_path):
    run_id = _paused_run(settings, monkeypatch)
    kept = tmp_path / "audit-2018.json"
    kept.write_text("the auditor's own notes")
    refused = runner.invoke(cli.app, ["export", run_id, "--out", str(kept)])
    _one_line(refused, f"--out {kept}: the file exists; give --force to replace it")
    assert kept.read_text() == "the auditor's own notes"
    forced = runner.invoke(cli.app, ["export", run_id, "--out", str(kept), "--force"])
    assert forced.exit_code == 0 and json.loads(kept.read_text())["run"]["run_id"] == run_id


@pytest.mark.parametrize(("option", "length", "needle"), [
    ("--as", 10_000, "--as (started_by): at most 200 characters, got 10,000"),
    ("--department", 101, "--department (department): at most 100 characters, got 101"),
])
def test_a_field_longer_than_its_column_is_refused_on_every_backend(backend_settings, monkeypatch, option, length,
                                                                     needle):
    _engine(backend_settings, monkeypatch)
    _one_line(runner.invoke(cli.app, ["run", "toy", "--x", "7", option, "x" * length]), needle, "nothing was recorded")
    with Chainproof(backend_settings) as app:
        assert app.audit.list_runs() == []


def test_an_approver_name_longer_than_its_column_is_refused_and_the_run_stays_paused(backend_settings, monkeypatch):
    run_id = _paused_run(backend_settings, monkeypatch)
    _one_line(runner.invoke(cli.app, ["approve", run_id, "--as", "D" * 201]),
              "--as (approver): at most 200 characters, got 201")
    with Chainproof(backend_settings) as app:
        assert app.audit.run_status(run_id) == "paused"
        assert [r.action for r in app.audit.records_of(run_id, "approvals")] == ["requested"]
    assert runner.invoke(cli.app, ["approve", run_id, "--as", "Dana"]).exit_code == 0


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setenv("CHAINPROOF_INPUT_FILE_MAX_MB", "0.01")  # 10,485 bytes
    yield
    input_files.configure(input_files.DEFAULT_MAX_MB)


def test_an_inputs_file_over_the_limit_is_refused_naming_it_and_the_limit(settings, monkeypatch, tmp_path, small_limit):
    _engine(settings, monkeypatch)
    big = tmp_path / "inputs.json"
    big.write_text(json.dumps({"x": 7, "padding": "p" * 20_000}))
    _one_line(runner.invoke(cli.app, ["run", "toy", "--inputs-file", str(big)]),
              f"--inputs-file {big}: 0.0 MiB, more than the 0.01 MiB limit", "input_file_max_mb")
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"x": 7}))
    assert runner.invoke(cli.app, ["run", "toy", "--inputs-file", str(small)]).exit_code == 0


def _dossier_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "MMM"
    shutil.copytree(REPO / "tools" / "dossiers" / "MMM", folder)
    return folder


def test_a_dossier_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    from chainproof.errors import InputFileError
    from chainproof.tools.dossier_files import load_dossier

    folder = _dossier_copy(tmp_path)
    with (folder / "headlines.csv").open("a", encoding="utf-8") as fh:
        fh.write("2018-01-02,Filler headline,none\n" * 2_000)  # ~70 kB
    load_dossier(folder)  # within the default limit
    input_files.configure(0.05)
    try:
        with pytest.raises(InputFileError, match=rf"{folder / 'headlines.csv'}: 0.1 MiB, more than the 0.05 MiB limit"):
            load_dossier(folder)
    finally:
        input_files.configure(input_files.DEFAULT_MAX_MB)


@pytest.mark.parametrize("name", ["headlines.csv", "dossier.toml", "filings/risk_factors.txt"])
def test_a_file_that_is_not_utf8_is_named(tmp_path, name):
    from chainproof.errors import InputFileError
    from chainproof.tools.dossier_files import load_dossier

    folder = _dossier_copy(tmp_path)
    path = folder / name
    path.write_bytes(path.read_bytes()[:40] + b"\xff\xfe caf\xe9")
    with pytest.raises(InputFileError, match=rf"{path}: not valid UTF-8 text \(byte 0xff at offset 40\)"):
        load_dossier(folder)


def test_an_inputs_file_that_is_not_utf8_is_named(settings, monkeypatch, tmp_path):
    _engine(settings, monkeypatch)
    bad = tmp_path / "inputs.json"
    bad.write_bytes(b'{"x": 7, "note": "caf\xe9"}')
    _one_line(runner.invoke(cli.app, ["run", "toy", "--inputs-file", str(bad)]),
              f"--inputs-file {bad}: not valid UTF-8 text (byte 0xe9 at offset 21)")


ANSI = "\x1b[2J\x1b[31mRED\x1b[0m \x1b]0;pwned title\x07\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\ \x9b1mX\rline"


def test_terminals_never_receive_control_characters_from_recorded_text(settings, monkeypatch):
    run_id = _paused_run(settings, monkeypatch, replies=(f"The square. {ANSI}", "b", "c", GOOD))
    decided = runner.invoke(cli.app, ["approve", run_id, "--as", f"Dana{ANSI}", "--comment", f"ok {ANSI}"])
    assert decided.exit_code == 0, decided.output
    shown = [runner.invoke(cli.app, args).output for args in (["show", run_id], ["show", run_id, "--step", "2"],
                                                              ["runs"], ["export", run_id, "--format", "html"])]
    for out in shown:
        assert not any(c in out for c in "\x1b\x07\x9b\r"), repr(out[:300])
    assert "DanaRED" in shown[0] and "RED link" in "".join(shown)  # the text stays; controls (a title) go
    with Chainproof(settings) as app:  # the record keeps what was written, for the auditor
        assert ANSI in app.audit.records_of(run_id, "approvals")[-1].comment
    report = (settings.home / "reports" / f"{run_id}.md").read_text(encoding="utf-8")
    assert "\x1b" not in report and "Dana" in report


HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> & more"


def test_the_markdown_report_escapes_html_from_models_tools_and_people(settings, monkeypatch):
    class Echoing(ToyGraph):
        name = "toy-echo"

        def render_report(self, view):
            return (f"# Toy\n\nreason: {view.decision['reason']}\n\nsummary: {' / '.join(view.summary)}\n\n"
                    f"approved by: {view.approval.get('approver')}, comment: {view.approval.get('comment')}\n")

    register("toy-echo", Echoing)
    verdict = json.dumps({"verdict": "yes", "reason": f"model says {HOSTILE}"})
    _engine(settings, monkeypatch, replies=(f"The square. {HOSTILE}", "b", "c", verdict))
    assert runner.invoke(cli.app, ["run", "toy-echo", "--x", "7"]).exit_code == 0
    with Chainproof(settings) as app:
        run_id = app.audit.list_runs(limit=1)[0][0].run_id
    edited = runner.invoke(cli.app, ["edit", run_id, "--as", f"Mallory {HOSTILE}", "--set",
                                     f"reason=edited {HOSTILE}", "--comment", f"see {HOSTILE}"])
    assert edited.exit_code == 0, edited.output
    report = (settings.home / "reports" / f"{run_id}.md").read_text(encoding="utf-8")
    assert "<script>" not in report and "<img" not in report
    assert report.count("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt; &amp; more") >= 3
    assert report.startswith("# Toy")  # the spec's own Markdown is untouched
