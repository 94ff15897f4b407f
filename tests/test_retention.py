"""Retention and purges: the retention is held in the store (admin-only, audited, at least 6
months); a purge deletes old finished runs but keeps their leaves and a tombstone, so `verify
--against` an earlier head still proves consistency and `verify` reports them as purged; deleting a
tombstone or a kept leaf afterwards is detected; paused and too-young runs are refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

import chainproof.cli._retention as retention_cli
from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.merkle_log import leaf_rows
from chainproof.checkpoints.retention import Retention
from chainproof.checkpoints.saver import open_checkpointer
from chainproof.errors import InputError
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.cli_accounts import cli_out, sign_in
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
runner = CliRunner()
GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})


def _run(app: Chainproof, x: int, *, approve: bool = True) -> str:
    app.models = StaticModels(ScriptedChatModel(replies=["The square.", "The double.", "Large.", GOOD]))
    run = app.start("toy", {"x": x})
    if approve:
        app.decide(run.run_id, action="approve", approver="Dana")
    return run.run_id


def _sql(app: Chainproof, statement: str, **params) -> list:
    with app.audit.engine.begin() as conn:
        result = conn.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def _later(monkeypatch, days: int) -> None:
    """The purge's clock, ``days`` from now (the runs were recorded a moment ago)."""
    monkeypatch.setattr(retention_cli, "_now", lambda: datetime.now(UTC) + timedelta(days=days))


@pytest.mark.parametrize(("value", "expected"), [
    ("3 months", "at least 6 months (184 days"), ("183 days", "got 183 days"), ("0 years", "got 0 years"),
    ("6 weeks", "expected N days|months|years"), ("forever", "expected N days|months|years"),
])
def test_retention_below_the_floor_or_malformed_is_refused_naming_the_field(value, expected):
    with pytest.raises(InputError, match="retention: ") as caught:
        Retention.parse(value)
    assert expected in str(caught.value)


def test_a_negative_or_too_large_retention_is_refused_by_the_cli_naming_floor_and_ceiling(home):
    sign_in("boss", "admin")
    negative = cli_out("retention", "set", "-1 years", code=2)  # a value, not an unknown option
    assert "retention: a negative retention is not allowed, got '-1 years'; at least 6 months" in negative
    for value in ("99999999999 years", "101 years", "1201 months", "36526 days"):
        out = cli_out("retention", "set", value, code=2)
        assert "retention: too large" in out and "at most 100 years (36,525 days)" in out, (value, out)
    assert "No retention is set" in cli_out("retention", "show")  # nothing stored
    assert "retention: version 1, 100 years" in cli_out("retention", "set", "100 years")
    assert "retention: version 2, 36525 days" in cli_out("retention", "set", "36525 days")


def test_retention_is_admin_only_audited_and_held_in_the_store(home):
    assert "No retention is set" in cli_out("retention", "show")
    assert "not signed in" in cli_out("retention", "set", "1 year", code=2)
    sign_in("analyst1", "analyst")
    assert "'analyst1', who is not an admin" in cli_out("retention", "set", "1 year", code=2)
    sign_in("boss", "admin")
    assert "at least 6 months" in cli_out("retention", "set", "5 months", code=2)
    assert "retention: version 1, 6 months" in cli_out("retention", "set", "6 months")
    assert "retention: unchanged" in cli_out("retention", "set", "6 months")
    assert "retention: version 2, 7 years" in cli_out("retention", "set", "7 years")
    assert "retention 7 years (version 2" in cli_out("retention", "show") and "by account:boss" in cli_out("retention", "show")
    with Chainproof(Settings(home=home)) as app:
        rows = _sql(app, "SELECT actor, detail FROM auth_events WHERE kind = 'retention_changed' ORDER BY seq")
    changes = [(actor, json.loads(d) if isinstance(d, str) else d) for actor, d in rows]
    assert [(a, d["old"], d["new"]) for a, d in changes] == [
        ("account:boss", None, {"amount": 6, "unit": "months"}),
        ("account:boss", {"amount": 6, "unit": "months"}, {"amount": 7, "unit": "years"})]


def test_purge_needs_a_retention_and_an_admin(home, settings, monkeypatch):
    with Chainproof(settings) as app:
        done = _run(app, 2)
    _later(monkeypatch, 400)
    assert "retention: not set for this store" in cli_out("purge", "--dry-run", code=2)
    sign_in("boss", "admin")
    cli_out("retention", "set", "6 months")
    (home / "credentials.json").unlink()
    assert "not signed in" in cli_out("purge", code=2)
    with Chainproof(settings) as app:
        assert app.audit.get_run(done) is not None and app.audit.records(done)


@pytest.fixture
def purged(home, tmp_path, monkeypatch, backend_settings):
    """Three completed runs and a paused one, a head an auditor kept, then a purge 7 months later by
    an admin: ``(settings, completed run ids, paused run id, head file, leaves before, purge output)``."""
    if backend_settings.database_url:
        monkeypatch.setenv("CHAINPROOF_DATABASE_URL", backend_settings.database_url)
        monkeypatch.setenv("CHAINPROOF_CHECKPOINT_URL", backend_settings.checkpoint_url)
    with Chainproof(backend_settings) as app:
        done = [_run(app, x) for x in (2, 3, 4)]
        paused = _run(app, 5, approve=False)
    head = tmp_path / "head.json"
    cli_out("log", "head", "--out", str(head))
    with Chainproof(backend_settings) as app:
        before = leaf_rows(app.audit.engine)
    sign_in("boss", "admin")
    cli_out("retention", "set", "6 months")
    _later(monkeypatch, 214)
    out = cli_out("purge")
    return backend_settings, done, paused, head, before, out


def test_a_purge_deletes_old_finished_runs_and_keeps_the_log_verifiable(purged):
    settings, done, paused, head, before, out = purged
    assert "3 runs purged under the retention of 6 months, 1 kept" in out
    with Chainproof(settings) as app:
        for run_id in done:  # the content is gone: no header, no record, no checkpoint
            assert app.audit.get_run(run_id) is None and app.audit.records(run_id) == []
        assert len(app.audit.records(paused)) > 0  # a paused run is never purged
    with open_checkpointer(settings.resolved_checkpoint_url) as saver:  # nor are its checkpoints; the purged runs' are
        assert saver.get_tuple({"configurable": {"thread_id": paused}}) is not None
        assert all(saver.get_tuple({"configurable": {"thread_id": r}}) is None for r in done)
    with Chainproof(settings) as app:
        assert leaf_rows(app.audit.engine) == before  # every leaf hash is still computed, at the same index
        stones = _sql(app, "SELECT run_id, records, purged_by FROM purged_runs ORDER BY purged_at")
        events = _sql(app, "SELECT actor FROM auth_events WHERE kind = 'run_purged'")
    assert [s[0] for s in stones] == done and all(s[2] == "account:boss" for s in stones)
    assert [s[1] for s in stones] == [sum(1 for x in before if x.run_id == r) for r in done]
    assert [e[0] for e in events] == ["account:boss"] * 3
    assert "log consistent: the head of" in cli_out("verify", "--against", str(head))
    verified = cli_out("verify", "--all")
    for run_id, stone in zip(done, stones):
        assert f"{run_id}: purged ({stone[1]} records, leaves kept)" in verified
    assert "4 runs verified, 0 broken." in verified
    assert f"{done[0]}: purged" in cli_out("verify", done[0])
    assert "was purged on" in cli_out("show", done[0], code=2)
    assert f"--step 2: run {done[0]} was purged on" in cli_out("prove", done[0], "--step", "2", code=2)
    assert "0 runs purged under the retention of 6 months, 1 kept" in cli_out("purge")  # nothing more to purge
    # the log goes on: a new run appends after the kept leaves, and an old head is still a prefix
    with Chainproof(settings) as app:
        _run(app, 6)
        assert len(leaf_rows(app.audit.engine)) > len(before)
    assert "log consistent" in cli_out("verify", "--against", str(head))


def test_a_purge_checks_every_run_and_skips_the_paused_ones(purged):
    settings, done, paused, head, before, out = purged
    dry = cli_out("purge", "--dry-run")
    assert f"{paused} │ toy │ paused" in dry and "kept: paused: only completed or failed runs are purged" in dry
    assert "dry run: 0 runs (0 records) would be purged; nothing was deleted" in dry
    assert f"--run {paused}: not purged: paused" in cli_out("purge", "--run", paused, code=2)
    assert f"--run {done[0]}: no such run" in cli_out("purge", "--run", done[0], code=2)


def test_a_too_young_run_is_refused_and_kept(home, settings, monkeypatch):
    with Chainproof(settings) as app:
        young = _run(app, 2)
    sign_in("boss", "admin")
    cli_out("retention", "set", "1 year")
    _later(monkeypatch, 200)  # older than 6 months, younger than the retention of 1 year
    refused = cli_out("purge", "--run", young, code=2)
    assert f"--run {young}: not purged: ended" in refused and "within the retention of 1 year (purgeable from" in refused
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert f"--before {future}: later than the retention of 1 year allows" in cli_out("purge", "--before", future, code=2)
    assert "--before: expected a date YYYY-MM-DD" in cli_out("purge", "--before", "last week", code=2)
    assert "0 runs purged under the retention of 1 year, 1 kept" in cli_out("purge")
    with Chainproof(settings) as app:
        assert len(app.audit.records(young)) > 0 and not _sql(app, "SELECT run_id FROM purged_runs")


def test_a_run_whose_chain_is_broken_is_not_purged(home, settings, monkeypatch):
    with Chainproof(settings) as app:
        tampered = _run(app, 2)
        _sql(app, "UPDATE steps SET title = 'rewritten' WHERE run_id = :r AND step_no = 2", r=tampered)
    sign_in("boss", "admin")
    cli_out("retention", "set", "6 months")
    _later(monkeypatch, 200)
    assert "kept: its chain does not verify (edited" in cli_out("purge", "--dry-run")
    assert "0 runs purged" in cli_out("purge")


def test_deleting_a_tombstone_after_a_purge_is_detected(purged):
    settings, done, _, head, _, _ = purged
    with Chainproof(settings) as app:
        _sql(app, "DELETE FROM purged_runs WHERE run_id = :r", r=done[1])
    broken = cli_out("verify", "--all", code=1)
    assert f"{done[1]}: chain broken — purged at purged_runs" in broken
    assert "leaves of run" in broken and "its tombstone (purged_runs) is missing" in broken
    assert "its tombstone (purged_runs) is missing" in cli_out("verify", done[1], code=1)
    against = cli_out("verify", "--against", str(head), code=1)
    assert f"purge record broken: run {done[1]}" in against


def test_deleting_or_editing_a_kept_leaf_after_a_purge_is_detected(purged):
    settings, done, _, head, before, _ = purged
    leaf = next(x for x in before if x.run_id == done[0] and x.seq == 3)
    with Chainproof(settings) as app:
        _sql(app, "DELETE FROM purged_leaves WHERE idx = :i", i=leaf.idx)
    against = cli_out("verify", "--against", str(head), code=1)
    assert f"missing: leaf {leaf.idx}" in against and "the record is missing" in against
    assert "the tombstone counts" in cli_out("verify", done[0], code=1)
    other = next(x for x in before if x.run_id == done[2] and x.seq == 5)
    with Chainproof(settings) as app:
        _sql(app, "UPDATE purged_leaves SET record_hash = :h WHERE idx = :i", h="f" * 64, i=other.idx)
    assert "no longer hash to the tombstone's leaves root" in cli_out("verify", done[2], code=1)


def test_editing_a_kept_leaf_is_named_by_verify_against(purged):
    settings, done, _, head, before, _ = purged
    leaf = next(x for x in before if x.run_id == done[2] and x.seq == 5)
    with Chainproof(settings) as app:
        _sql(app, "UPDATE purged_leaves SET record_hash = :h WHERE idx = :i", h="f" * 64, i=leaf.idx)
    against = cli_out("verify", "--against", str(head), code=1)
    assert f"differs: leaf {leaf.idx}: run {done[2]}, {leaf.table} seq 5: the record was changed" in against


def test_a_fork_of_a_purged_parent_still_verifies_its_link(home, settings, monkeypatch):
    with Chainproof(settings) as app:
        parent = _run(app, 2)
        fork = app.fork(parent, 3, wait=False).run_id  # recorded, not advanced: it stays "started"
    sign_in("boss", "admin")
    cli_out("retention", "set", "6 months")
    _later(monkeypatch, 200)
    assert "1 run purged under the retention of 6 months" in cli_out("purge", "--run", parent)
    verified = cli_out("verify", fork)
    assert "chain intact" in verified and f"fork of run {parent} (purged) after its step" in verified
    assert "link verified against the parent's kept leaves" in verified


def test_a_run_that_changed_after_the_plan_is_kept_whole(home, settings, monkeypatch):
    from chainproof.checkpoints.audit_schema import EventRecord
    from chainproof.checkpoints.retention import plan_purge, purge_run

    with Chainproof(settings) as app:
        run_id = _run(app, 2)
        retention = Retention.parse("6 months")
        [planned] = plan_purge(app.audit, retention, now=datetime.now(UTC) + timedelta(days=200))
        assert planned.kept is None
        app.audit.append(run_id, EventRecord(kind="record_corrected", detail={"late": True}))  # after the plan
        with pytest.raises(InputError, match=f"run {run_id}: changed while it was being purged"):
            purge_run(app.audit.engine, planned, retention, actor="account:boss")
        assert len(app.audit.records(run_id)) == planned.records + 1
        assert not _sql(app, "SELECT idx FROM purged_leaves") and not _sql(app, "SELECT run_id FROM purged_runs")
