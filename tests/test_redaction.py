"""No credential in any store: a corpus of generated credentials in real formats (testkit.credentials),
put into a run's inputs, tool results, model output, decision, approval comment, `--as` and
`--department`, leaves no trace in the audit database, the checkpoints, the report, both exports
or the CLI's output; a corpus of look-alikes (hashes, "bearer bonds", "Basic EPS", public keys…)
passes untouched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import StructuredTool
from typer.testing import CliRunner

import chainproof.cli as cli
from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.redaction import REDACTED, Redactor, may_hold_secret
from chainproof.graphs.registry import register
from chainproof.graphs.spec import PlanStep
from chainproof.settings import Settings
from testkit.credentials import CREDENTIALS, LOOKALIKES, SECRET_PATTERNS
from testkit.stored import stored_bytes
from testkit.toy_graph import ToyGraph

ALL_SECRETS = "\n\n".join(c.text for c in CREDENTIALS)
ALL_LOOKALIKES = "\n\n".join(LOOKALIKES)


@pytest.mark.parametrize("cred", CREDENTIALS, ids=[c.kind for c in CREDENTIALS])
def test_each_credential_is_redacted(cred):
    out = Redactor(SECRET_PATTERNS)(cred.text)
    assert REDACTED in out
    assert [n for n in cred.needles if n in out] == [], out


@pytest.mark.parametrize("text", LOOKALIKES)
def test_each_lookalike_stays(text):
    assert Redactor(SECRET_PATTERNS)(text) == text


def test_the_prefilter_passes_every_credential_and_most_prose():
    assert all(may_hold_secret(c.text) for c in CREDENTIALS if c.kind != "configured pattern")
    prose = "Revenue grew 4% in 2017; margins were steady and the outlook is stable. " * 50
    assert not may_hold_secret(prose)
    value = {"findings": [{"summary": prose}]}
    assert Redactor()(value) is value  # nothing matched: the very same object, no copy


def _echo(note: str) -> dict[str, Any]:
    return {"note": note, "length": len(note)}


class Leaky(ToyGraph):
    """The toy chain with a text input that a tool echoes, and a report that shows everything."""

    name = "leaky"

    def tools(self):
        return [*super().tools(), StructuredTool.from_function(_echo, name="echo", description="echo a note")]

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return super().validate_inputs(inputs) | {"note": str(inputs.get("note", ""))}

    def subject(self, inputs):
        return inputs["note"][:60]

    def plan(self, inputs):
        return [PlanStep(id="echo", title="Echo", kind="tool", tool="echo", args={"note": "{inputs.note}"},
                         instruction="Repeat the note.", keep_data=True), *super().plan(inputs)]

    def render_report(self, view):
        return (f"# Leaky\n\nnote: {view.inputs['note']}\n\necho: {view.data('echo')}\n\nsummary: {view.summary}\n\n"
                f"decision: {view.decision}\n\napproval: {view.approval}\n")


register("leaky", Leaky)


def _stored(home: Path, *extra: Path) -> str:
    files = [*(home / "reports").glob("*"), *extra]
    return "\n".join([stored_bytes(home).decode("utf-8", "replace"), *(p.read_bytes().decode("utf-8", "replace") for p in files)])


def _leaks(text: str) -> list[str]:
    return [f"{c.kind}: {n[:24]}…" for c in CREDENTIALS for n in c.needles if n in text]


def test_the_credential_corpus_leaves_no_trace_anywhere_and_lookalikes_stay(home, monkeypatch, tmp_path):
    monkeypatch.setenv("CHAINPROOF_SECRET_PATTERNS", json.dumps(SECRET_PATTERNS))
    monkeypatch.setattr(cli.console, "_width", 300)
    settings = Settings(home=home)
    reason = f"approve; seen {CREDENTIALS[0].text} and {CREDENTIALS[-2].text}"
    replies = [f"The note says:\n{ALL_SECRETS}\n{ALL_LOOKALIKES}", "The square.", "The double.", "Large.",
               json.dumps({"verdict": "yes", "reason": reason})]
    monkeypatch.setattr(cli, "_engine", lambda: Chainproof(settings, models=StaticModels(
        ScriptedChatModel(replies=replies))))
    runner = CliRunner()
    note = f"{ALL_SECRETS}\n\n{ALL_LOOKALIKES}"
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"x": 7, "note": note}))
    started = runner.invoke(cli.app, ["run", "leaky", "--inputs-file", str(inputs), "--as", CREDENTIALS[11].text,
                                      "--department", CREDENTIALS[27].text])
    assert started.exit_code == 0, started.output
    with Chainproof(settings) as app:
        run_id = app.audit.list_runs(limit=1)[0][0].run_id
    outputs = [started.output, runner.invoke(cli.app, ["pending"]).output]
    decided = runner.invoke(cli.app, ["approve", run_id, "--as", "Dana", "--comment", f"checked {ALL_SECRETS}"])
    assert decided.exit_code == 0, decided.output
    exports = [tmp_path / "run.json", tmp_path / "run.html"]
    for path in exports:
        made = runner.invoke(cli.app, ["export", run_id, "--format", path.suffix[1:], "--out", str(path)])
        assert made.exit_code == 0, made.output
    outputs += [decided.output, *(runner.invoke(cli.app, args).output for args in (
        ["show", run_id], *(["show", run_id, "--step", str(n)] for n in range(1, 9)), ["runs"], ["verify", run_id],
        ["export", run_id, "--format", "json"]))]
    assert _leaks("\n".join(outputs)) == []
    assert _leaks(_stored(home, *exports)) == []
    with Chainproof(settings) as app:  # the look-alikes were stored as they were written
        run = app.audit.get_run(run_id)
        assert all(text in run.inputs["note"] for text in LOOKALIKES)
        output = app.audit.records_of(run_id, "model_calls")[0].output
        assert all(text in output for text in LOOKALIKES)
        assert REDACTED in run.started_by and REDACTED in run.department
    assert app.audit.records_of(run_id, "approvals")[-1].comment.count(REDACTED) >= len(CREDENTIALS) - 5
