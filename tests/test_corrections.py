"""Corrections: an admin or approver appends a record that corrects a field of a recorded step; the
original stays untouched, `show` marks the corrected value next to the original, exports carry
both, `verify` checks the reference, `replay` replays the original; anyone else is refused."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_hashing import record_hash
from chainproof.checkpoints.merkle_log import leaf_rows
from chainproof.cli import app as cli
from chainproof.cli._web import stored_principal
from chainproof.errors import InputError, NotPermitted
from chainproof.graphs.registry import register
from testkit.cli_accounts import cli_out, sign_in
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
runner = CliRunner()
GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})


@pytest.fixture
def run_id(home, settings, tmp_path):
    """A completed toy run and a head an auditor kept before any correction."""
    with Chainproof(settings) as app:
        app.models = StaticModels(ScriptedChatModel(replies=["The square.", "The double.", "Large.", GOOD]))
        run = app.start("toy", {"x": 7})
        app.decide(run.run_id, action="approve", approver="Dana")
    cli_out("log", "head", "--out", str(tmp_path / "head.json"))
    return run.run_id


def _step(app: Chainproof, run_id: str, step_no: int):
    return [s for s in app.audit.records_of(run_id, "steps") if s.step_no == step_no][-1]


def test_only_a_signed_in_admin_or_approver_may_correct(run_id, home, settings):
    args = ("correct", run_id, "--step", "2", "--field", "title", "--value", "Square seven", "--reason", "clearer")
    assert "nobody is signed in" in cli_out(*args, "--as", "Dana", code=2)  # a typed name is no identity
    sign_in("ann", "analyst")
    assert "'ann' holds analyst" in cli_out(*args, code=2)
    sign_in("dana", "approver")
    assert "--as: signed in as 'dana', not 'Lee'" in cli_out(*args, "--as", "Lee", code=2)
    with Chainproof(settings) as app:
        assert app.audit.events_of(run_id, "record_corrected") == []
    assert f"correction recorded: run {run_id} step 2 title = Square seven" in cli_out(*args, "--as", "dana")
    sign_in("boss", "admin")
    cli_out("correct", run_id, "--step", "2", "--field", "status", "--value", "error", "--reason", "it failed in fact")
    with Chainproof(settings) as app:
        assert [e.detail["by"] for e in app.audit.events_of(run_id, "record_corrected")] == ["dana", "boss"]


def test_a_correction_is_appended_and_the_original_stays(run_id, home, settings, tmp_path):
    sign_in("dana", "approver")
    with Chainproof(settings) as app:
        before = _step(app, run_id, 3)
        records = len(app.audit.records(run_id))
        leaves = len(leaf_rows(app.audit.engine))
    old = before.output["finding"]  # the observe step's reading of the tool result
    out = cli_out("correct", run_id, "--step", "3", "--field", "output.finding", "--value", "The square is 49, not 48.",
               "--reason", "the interpretation misread the tool result")
    assert "correction recorded" in out and f"corrects seq {before.seq}" in out
    with Chainproof(settings) as app:
        after = _step(app, run_id, 3)
        assert after.as_dict() == before.as_dict()  # nothing updated in place
        everything = app.audit.records(run_id)
        assert len(everything) == records + 1 and len(leaf_rows(app.audit.engine)) == leaves + 1  # chained, a leaf
        fix = everything[-1]
        assert fix.kind == "record_corrected" and fix.prev_hash == everything[-2].record_hash
        assert fix.detail["corrects"] == {"table": "steps", "seq": before.seq, "record_hash": before.record_hash,
                                          "step_no": 3, "node": before.node}
        assert fix.detail["original"] == old and fix.detail["value"] == "The square is 49, not 48."
        assert fix.detail["account"]["username"] == "dana"
        assert app.replay(run_id).outcome == "identical"  # the original is replayed; a correction is not a step
    assert "chain intact" in cli_out("verify", run_id)
    assert "log consistent" in cli_out("verify", "--against", str(tmp_path / "head.json"))
    shown = cli_out("show", run_id)
    assert "✎" in shown and "The square is 49, not 48." in shown and f"{old[:20]}" in shown
    assert "the interpretation misread the tool result" in shown and "dana" in shown
    step = cli_out("show", run_id, "--step", "3")
    assert "The square is 49, not 48." in step and "corrections" in step
    exported = json.loads(runner.invoke(cli, ["export", run_id]).output)
    assert exported["corrections"][0]["value"] == "The square is 49, not 48."
    assert exported["corrections"][0]["original"] == old
    kept = next(r for r in exported["records"] if r["table"] == "steps" and r["seq"] == before.seq)
    assert kept["record_hash"] == before.record_hash  # the export holds the original record and the correction
    html = runner.invoke(cli, ["export", run_id, "--format", "html"]).output
    assert "<h2>Corrections</h2>" in html and "The square is 49, not 48." in html


def test_bad_corrections_are_refused_naming_the_option(run_id, home, settings):
    sign_in("boss", "admin")
    with Chainproof(settings) as app:
        principal = stored_principal()
        cases = [({"step": 99}, "--step 99: run"), ({"field": "record_hash"}, "--field 'record_hash': expected one of"),
                 ({"field": "output.nope"}, "has no 'nope' in output (there:"), ({"reason": "  "}, "--reason: say why"),
                 ({"field": "status", "value": "ok"}, "--value: step 2 status already holds")]
        for change, expected in cases:
            args = {"step": 2, "field": "title", "value": "x", "reason": "why"} | change
            with pytest.raises(InputError) as caught:
                app.correct(run_id, principal=principal, **args)
            assert expected in str(caught.value)
        with pytest.raises(NotPermitted):
            app.correct(run_id, step=2, field="title", value="x", reason="why", principal=None)
        assert app.audit.events_of(run_id, "record_corrected") == []


def test_a_value_the_column_cannot_hold_is_refused_naming_the_field(run_id, home, settings):
    sign_in("boss", "admin")
    refused = [("input_tokens", "abc", "--field input_tokens expects a whole number >= 0"),
               ("input_tokens", "-3", "--field input_tokens expects a whole number >= 0"),
               ("cost_usd", "cheap", "--field cost_usd expects a number of USD >= 0"),
               ("status", "nonsense", "--field status expects one of ok, error"),
               ("effort", "extreme", "--field effort expects one of low, medium, high, null"),
               ("title", "", "--field title expects text of 1 to 300 characters"),
               ("output", "[1, 2]", "--field output expects a JSON object")]
    for field, value, expected in refused:
        out = cli_out("correct", run_id, "--step", "2", "--field", field, "--value", value, "--reason", "why", code=2)
        assert expected in out, (field, value, out)
    with Chainproof(settings) as app, pytest.raises(InputError, match="--field output_tokens expects a whole number"):
        app.correct(run_id, step=2, field="output_tokens", value=True, reason="why", principal=stored_principal())
    with Chainproof(settings) as app:
        assert app.audit.events_of(run_id, "record_corrected") == []  # nothing appended
    # values of the right type are taken: a number typed for a text column stays text
    cli_out("correct", run_id, "--step", "2", "--field", "input_tokens", "--value", "12", "--reason", "miscounted")
    cli_out("correct", run_id, "--step", "2", "--field", "title", "--value", "2024", "--reason", "renamed")
    with Chainproof(settings) as app:
        assert [e.detail["value"] for e in app.audit.events_of(run_id, "record_corrected")] == [12, "2024"]


def test_verify_checks_what_a_correction_references(run_id, home, settings):
    sign_in("boss", "admin")
    cli_out("correct", run_id, "--step", "2", "--field", "title", "--value", "Square seven", "--reason", "clearer")
    with Chainproof(settings) as app:
        fix = app.audit.records(run_id)[-1]
        first_event = app.audit.records_of(run_id, "events")[0]
        # an attacker points the correction at another record and rehashes it (it is the chain's last record)
        forged = fix.replace(detail={**fix.detail, "corrects": {**fix.detail["corrects"], "seq": first_event.seq}})
        with app.audit.engine.begin() as conn:
            conn.execute(text("UPDATE events SET detail = :d, record_hash = :h WHERE id = :i"),
                         {"d": json.dumps(forged.detail), "h": record_hash(forged), "i": fix.id})
    broken = cli_out("verify", run_id, code=1)
    assert f"correction at events seq {fix.seq}" in broken and "which is not a step record of this run" in broken


def test_a_purged_run_cannot_be_corrected(run_id, home, settings, monkeypatch):
    from datetime import UTC, datetime, timedelta

    import chainproof.cli._retention as retention_cli

    sign_in("boss", "admin")
    cli_out("retention", "set", "6 months")
    monkeypatch.setattr(retention_cli, "_now", lambda: datetime.now(UTC) + timedelta(days=200))
    cli_out("purge")
    refused = cli_out("correct", run_id, "--step", "2", "--field", "title", "--value", "x", "--reason", "why", code=2)
    assert f"run {run_id} was purged on" in refused and "no record left to correct" in refused


def test_a_correction_is_redacted_and_minimised_like_the_step_it_corrects(home, settings):
    from testkit.credentials import CREDENTIALS

    secret = next(c for c in CREDENTIALS if c.kind == "GitHub ghp token")
    sign_in("boss", "admin")
    with Chainproof(settings) as app:
        app.models = StaticModels(ScriptedChatModel(replies=["The square.", "The double.", "Large.", GOOD]))
        zdr = app.start("toy", {"x": 7}, zdr=True).run_id
        long = "The square of seven is forty-nine, as the tool said; " * 3
        fix = app.correct(zdr, step=3, field="output.finding", value=long, reason=f"token was {secret.text}",
                          principal=stored_principal())
        assert fix.detail["value"].startswith(long[:40]) and "[zdr sha256=" in fix.detail["value"]
        assert all(needle not in json.dumps(fix.detail) for needle in secret.needles)
        assert "[REDACTED]" in fix.detail["reason"]
