"""``verify`` against tampering done directly in SQL: each kind of tamper is named with its table,
seq and id, on SQLite and PostgreSQL; untouched runs stay intact."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_hashing import record_hash
from chainproof.checkpoints.audit_schema import ModelCallRecord, Step, ToolCallRecord
from chainproof.checkpoints.verify import verify_all, verify_run
from chainproof.cli import app as cli
from chainproof.graphs.registry import register
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})


def _completed_run(app: Chainproof, x: int = 7) -> str:
    app.models = StaticModels(ScriptedChatModel(replies=["The square.", "The double.", "Large.", GOOD]))
    run = app.start("toy", {"x": x}, department="audit-test")
    app.decide(run.run_id, action="approve", approver="Dana")
    return run.run_id


def _sql(app: Chainproof, statement: str, **params) -> None:
    with app.audit.engine.begin() as conn:
        conn.execute(text(statement), params)


def _row(app, run_id, table, index=0):
    return app.audit.records_of(run_id, table)[index]


def test_intact_run_verifies_with_its_head(backend_settings):
    with Chainproof(backend_settings) as app:
        run_id = _completed_run(app)
        result = verify_run(app.audit, run_id)
        records = app.audit.records(run_id)
    assert result.ok and result.notes == []
    assert result.records == len(records) == records[-1].seq
    assert result.head_hash == records[-1].record_hash


def test_each_tamper_is_named(backend_settings):
    with Chainproof(backend_settings) as app:
        runs = {kind: _completed_run(app, x) for x, kind in enumerate(
            ["intact", "edited", "rewritten", "deleted", "inserted", "appended", "reordered", "header"], start=2)}

        square = _row(app, runs["edited"], ToolCallRecord)
        _sql(app, "UPDATE tool_calls SET result = :r WHERE id = :id", r='{"x": 3, "squared": 10}', id=square.id)

        # a careful attacker also recomputes the edited record's own hash: its successor's link breaks
        call = _row(app, runs["rewritten"], ModelCallRecord).replace(output="A different interpretation.")
        _sql(app, "UPDATE model_calls SET output = :o, record_hash = :h WHERE id = :id",
             o=call.output, h=record_hash(call), id=call.id)

        gone = _row(app, runs["deleted"], ModelCallRecord, 1)
        _sql(app, "DELETE FROM model_calls WHERE id = :id", id=gone.id)

        taken = _row(app, runs["inserted"], Step, 2)
        _sql(app, "INSERT INTO events (run_id, seq, kind, detail, created_at, prev_hash, record_hash) "
                  "VALUES (:run, :seq, 'run_resumed', '{}', CURRENT_TIMESTAMP, :h, :h)",
             run=runs["inserted"], seq=taken.seq, h="f" * 64)

        head = app.audit.records(runs["appended"])[-1]
        _sql(app, "INSERT INTO events (run_id, seq, kind, detail, created_at, prev_hash, record_hash) "
                  "VALUES (:run, :seq, 'run_completed', '{}', CURRENT_TIMESTAMP, :p, :h)",
             run=runs["appended"], seq=head.seq + 1, p="0" * 64, h="e" * 64)

        a, b = _row(app, runs["reordered"], Step, 3), _row(app, runs["reordered"], Step, 4)
        _sql(app, "UPDATE steps SET seq = -1 WHERE id = :id", id=a.id)
        _sql(app, "UPDATE steps SET seq = :s WHERE id = :id", s=a.seq, id=b.id)
        _sql(app, "UPDATE steps SET seq = :s WHERE id = :id", s=b.seq, id=a.id)

        _sql(app, "UPDATE runs SET department = 'somewhere else' WHERE run_id = :r", r=runs["header"])

        results = {r.run_id: r for r in verify_all(app.audit)}

    def broken(kind):
        b = results[runs[kind]].broken
        return (b.kind, b.table, b.seq, b.record_id) if b else None

    assert results[runs["intact"]].ok
    assert broken("edited") == ("edited", "tool_calls", square.seq, square.id)
    assert broken("rewritten") == ("edited", "model_calls", call.seq, call.id)
    after_gap = next(r for r in app.audit.records(runs["deleted"]) if r.seq == gone.seq + 1)
    assert broken("deleted") == ("deleted", type(after_gap).__tablename__, gone.seq + 1, after_gap.id)
    assert f"seq {gone.seq} missing" in results[runs["deleted"]].broken.detail
    assert broken("inserted")[:3] == ("inserted", "events", taken.seq)
    assert broken("appended")[:3] == ("inserted", "events", head.seq + 1)
    assert broken("reordered") == ("reordered", "steps", a.seq, b.id)
    assert f"recorded at seq {b.seq}" in results[runs["reordered"]].broken.detail
    assert broken("header") == ("header-edited", "runs", None, None)


def test_cli_verify_names_the_break_and_exits_1(home, settings):
    with Chainproof(settings) as app:
        good, bad = _completed_run(app, 2), _completed_run(app, 3)
        step = _row(app, bad, Step, 1)
        _sql(app, "UPDATE steps SET title = 'something else' WHERE id = :id", id=step.id)
    runner = CliRunner()
    ok = runner.invoke(cli, ["verify", good])
    # its own chain is intact, but the log no longer extends the published head (an earlier leaf, of
    # the other run, changed), so the head vouches for none of the leaves after it: exit 1
    assert ok.exit_code == 1 and "chain intact" in ok.output and f"run {bad}, steps seq {step.seq}" in ok.output
    one = runner.invoke(cli, ["verify", bad])
    assert one.exit_code == 1
    assert f"edited at steps seq {step.seq} (id {step.id})" in one.output
    every = runner.invoke(cli, ["verify", "--all"])
    assert every.exit_code == 1 and "2 runs verified, 1 broken." in every.output
    assert runner.invoke(cli, ["verify"]).exit_code == 2
    missing = runner.invoke(cli, ["verify", "nope"])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output


def test_audit_rows_are_never_updated_by_the_writer(settings):
    """Appending after a pause/resume adds rows; every earlier row is byte-for-byte unchanged."""
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=["a", "b", "c", GOOD]))) as app:
        run = app.start("toy", {"x": 4})
        before = [(type(r).__tablename__, r.id, r.record_hash) for r in app.audit.records(run.run_id)]
        app.decide(run.run_id, action="approve", approver="Lee")
        after = [(type(r).__tablename__, r.id, r.record_hash) for r in app.audit.records(run.run_id)]
    assert after[: len(before)] == before and len(after) > len(before)


@pytest.mark.parametrize("decision", ["continue", "replan", "terminate"])
def test_reviews_are_chained_records(settings, decision):
    from chainproof.checkpoints.audit import AuditStore
    from chainproof.checkpoints.audit_schema import ReviewRecord

    store = AuditStore(settings.resolved_database_url)
    store.start_run("r1", graph="toy", goal="g", inputs={})
    store.append("r1", ReviewRecord(step_no=5, decision=decision, reason="on track", drift_assessment="none",
                                    inputs={"findings": 3}, effort="low", input_tokens=10, output_tokens=4,
                                    reasoning_tokens=2))
    [review] = store.records_of("r1", ReviewRecord)
    assert (review.decision, review.seq) == (decision, 2) and verify_run(store, "r1").ok
    with pytest.raises(ValueError, match="decision: expected one of continue, replan, terminate"):
        ReviewRecord(step_no=6, decision="maybe", reason="x", inputs={})
    store.close()


def test_deleting_a_run_header_is_reported_by_verify_all(settings):
    from chainproof.checkpoints.verify import verify_all

    with Chainproof(settings) as app:
        run_id = _completed_run(app)
        db = sqlite3.connect(settings.resolved_database_url.removeprefix("sqlite:///"))
        with db:  # as an attacker with the sqlite3 shell would (foreign keys are off there)
            db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        db.close()
        results = {r.run_id: r for r in verify_all(app.audit)}
    assert not results[run_id].ok and results[run_id].broken.kind == "deleted"


def test_a_record_appended_without_its_defaulted_columns_verifies(backend_settings):
    """Columns left unset take their defaults (token counts 0) before the record is hashed, so the
    hash covers what the row holds: the record verifies, and so does the Merkle log over it."""
    from datetime import UTC, datetime

    from chainproof.checkpoints.merkle_log import current_leaves

    with Chainproof(backend_settings) as app:
        app.audit.start_run("bare", graph="toy", goal="g", inputs={})
        app.audit.append("bare", Step(step_no=1, node="observe", kind="observe", title="t", status="ok", inputs={},
                                      output={}, input_tokens=3, output_tokens=2, started_at=datetime.now(UTC),
                                      duration_s=0.1))
        step = app.audit.records_of("bare", "steps")[0]
        assert (step.cached_input_tokens, step.reasoning_tokens) == (0, 0)
        assert verify_run(app.audit, "bare").ok
        assert current_leaves(app.audit)[1] is None


TAMPERS = {  # an edit in SQL that leaves a value its column cannot hold, and what verify names
    "invalid JSON": ("tool_calls", "result", "'{bad json'", "result: cannot be read as json"),
    "a garbage timestamp": ("steps", "created_at", "'garbage'", "created_at: cannot be read as datetime"),
    "text in seq": ("steps", "seq", "'abc'", "seq: expected a number, found str 'abc'"),
}


@pytest.mark.parametrize("tamper", TAMPERS, ids=list(TAMPERS))
def test_an_undecodable_record_is_named_and_other_runs_still_verify(settings, tamper):
    table, column, value, named = TAMPERS[tamper]
    runner = CliRunner()
    with Chainproof(settings) as app:
        victim, other = _completed_run(app, 2), _completed_run(app, 3)
        rec = _row(app, victim, table)
        _sql(app, f"UPDATE {table} SET {column} = {value} WHERE id = :id", id=rec.id)
    out = runner.invoke(cli, ["verify", victim], env={"COLUMNS": "300"})
    assert out.exit_code == 1 and f"undecodable at {table}" in out.output and f"(id {rec.id})" in out.output
    assert named in out.output.replace("\n", " "), out.output
    every = runner.invoke(cli, ["verify", "--all"], env={"COLUMNS": "300"})
    assert every.exit_code == 1 and f"✓ {other}: chain intact" in every.output and "2 runs verified, 1 broken" in every.output
    for args in (["show", victim], ["export", victim, "--format", "json"], ["export", victim, "--format", "html"], ["runs"]):
        shown = runner.invoke(cli, args)
        assert shown.exit_code == 0 and "internal error" not in shown.output, (args, shown.output)
    exported = json.loads(runner.invoke(cli, ["export", victim, "--format", "json"]).output)
    assert exported["verify"]["broken"]["kind"] == "undecodable"
    replayed = runner.invoke(cli, ["replay", victim])
    assert replayed.exit_code == 1 and "internal error" not in replayed.output
    assert f"run {victim} cannot be replayed" in replayed.output.replace("\n", " ")


def test_a_garbled_run_header_is_named_and_every_run_still_lists(settings):
    runner = CliRunner()
    with Chainproof(settings) as app:
        victim, other = _completed_run(app, 2), _completed_run(app, 3)
        _sql(app, "UPDATE runs SET inputs = 'not json' WHERE run_id = :r", r=victim)
    listed = runner.invoke(cli, ["runs"], env={"COLUMNS": "300"})
    assert listed.exit_code == 0 and victim in listed.output and other in listed.output
    out = runner.invoke(cli, ["verify", victim], env={"COLUMNS": "300"})
    assert out.exit_code == 1 and "undecodable at runs" in out.output and "inputs: cannot be read as json" in out.output
    assert runner.invoke(cli, ["verify", other]).exit_code == 0
    assert runner.invoke(cli, ["pending"]).exit_code == 0 and runner.invoke(cli, ["show", victim]).exit_code == 0
