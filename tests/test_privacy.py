"""Privacy: zero data retention keeps no raw prompt or long model text in any database file, and
replay names the steps it can no longer reproduce; planted API keys, Authorization headers and
configured secret patterns are never written anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ModelCallRecord, Run
from chainproof.cli import app as cli
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.stored import stored_bytes
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})
LONG_ANSWER = "The square is forty-nine, which is a moderately large number for this exercise."
PROMPT_TAIL = "Never compute or invent numbers"  # past the 40-character excerpt of the system prompt


def _stored_bytes(home: Path) -> bytes:
    """Every database file under ``home`` (audit store and checkpointer, WAL files included, and
    the checkpoints decompressed)."""
    return stored_bytes(home)


def _run(settings: Settings, replies: list[str], *, zdr: bool | None = None, comment: str = "ok") -> str:
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=replies))) as app:
        run = app.start("toy", {"x": 7}, zdr=zdr)
        app.decide(run.run_id, action="approve", approver="Dana", comment=comment)
    return run.run_id


def test_zdr_run_stores_hashes_and_excerpts_not_prompts(settings, home):
    run_id = _run(settings, [LONG_ANSWER, "The double is 98.", "It is large.", GOOD], zdr=True)
    stored = _stored_bytes(home)
    assert PROMPT_TAIL.encode() not in stored
    assert b"Your task now: Say what the square is." not in stored
    assert b"moderately large number" not in stored
    with Chainproof(settings) as app:
        assert app.audit.get_run(run_id).zdr is True
        first = app.audit.records_of(run_id, ModelCallRecord)[0]
        system = first.messages[0]["content"]
        assert system.startswith("You are a careful analyst. Use only the ") and "[zdr sha256=" in system
        assert first.output.startswith("The square is forty-nine") and f"chars={len(LONG_ANSWER)}]" in first.output
        assert len(first.prompt_hash) == 64


def test_zdr_is_off_by_default_and_on_globally_by_setting(settings, home):
    run_id = _run(settings, [LONG_ANSWER, "b", "c", GOOD])
    assert PROMPT_TAIL.encode() in _stored_bytes(home)
    zdr_settings = Settings(home=home, zdr=True)
    zdr_run = _run(zdr_settings, [LONG_ANSWER, "b", "c", GOOD])
    with Chainproof(zdr_settings) as app, app.audit.session() as s:
        assert {r.run_id: r.zdr for r in s.query(Run)} == {run_id: False, zdr_run: True}


def test_replay_of_a_zdr_run_names_the_steps_it_cannot_reproduce(settings):
    run_id = _run(settings, [LONG_ANSWER, "The double is 98.", "It is large.", GOOD], zdr=True)
    with Chainproof(settings) as app:
        replay = app.replay(run_id)
    status = {s.step_no: s.status for s in replay.steps}
    assert replay.outcome == "not-reproducible"
    assert status[1] == status[2] == "identical"  # plan and the first tool call are still checked
    assert {status[n] for n in range(3, 11)} == {"not-reproducible"}
    assert "the model output was not retained" in replay.steps[2].differences[0]
    result = CliRunner().invoke(cli, ["replay", run_id], env={"COLUMNS": "200"})
    assert result.exit_code == 3 and "not reproducible: zero data retention kept no model output for steps 3, 4" in result.output


def test_planted_secrets_are_never_written(home):
    key, bearer, custom = "sk-live-0123456789abcdefghijKLMN", "Bearer abcdefgh12345678XYZ", "ACME-884211"
    settings = Settings(home=home, secret_patterns=[r"ACME-\d{6}"])
    leaky = f"The square is 49. Debug: api_key={key} Authorization: {bearer} account {custom}"
    run_id = _run(settings, [leaky, "The double is 98.", "It is large.", GOOD], comment=f"checked with {key}")
    written = _stored_bytes(home) + b"".join(p.read_bytes() for p in (home / "reports").iterdir())
    for secret in (key, "abcdefgh12345678XYZ", custom):
        assert secret.encode() not in written, secret
    with Chainproof(settings) as app:
        output = app.audit.records_of(run_id, ModelCallRecord)[0].output
    assert output.count("[REDACTED]") == 3 and output.startswith("The square is 49.")


def test_a_bad_secret_pattern_is_a_clear_error(home):
    with pytest.raises(ValidationError, match=r"secret_patterns\[1\]: '\(unclosed' is not a valid regular expression"):
        Settings(home=home, secret_patterns=[r"ok-\d+", "(unclosed"])


KEY = "sk-" + "A1b2C3d4E5f6G7h8I9j0"  # an OpenAI-style key (20 characters after ``sk-``)


@pytest.mark.parametrize("value", [
    {"messages": [{"role": "user", "content": f"use {KEY} please"}]},  # nested in a list of dicts
    {"args": ("x", {"header": "Authorization: Bearer abcdef123456"})},  # a tuple keeps its type
    {1: f"api_key={KEY}", "n": 3},  # a non-string key: JSON turns it into "1"
    {("tuple", "key"): f"token {KEY}"},  # a key JSON cannot hold: the value is walked instead
    [f"x-api-key: {KEY}", object()],  # an object redaction does not look into sits beside it
])
def test_redaction_finds_secrets_anywhere_in_a_value_and_leaves_the_input_alone(value):
    from chainproof.checkpoints.audit_hashing import REDACTED, Redactor

    before = repr(value)
    out = Redactor()(value)
    assert repr(value) == before, "the caller's value was modified"
    assert KEY not in repr(out) and "abcdef123456" not in repr(out) and REDACTED in repr(out)
    if isinstance(value, dict) and ("args" in value):
        assert isinstance(out["args"], tuple)


def test_a_value_without_secrets_is_returned_as_it_is():
    from chainproof.checkpoints.audit_hashing import Redactor

    value = {"findings": [{"summary": "risk-free rate 4.1%; capital expenditure rose"}], "n": 2}
    assert Redactor()(value) is value
    assert Redactor([r"capital"])(value) == {"findings": [{"summary": "risk-free rate 4.1%; [REDACTED] expenditure rose"}], "n": 2}
