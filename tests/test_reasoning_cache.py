"""The reasoning cache: hit, miss, expiry, opt-out per run and per node, `chainproof cache clear`,
replay of hits, and that adding cache_hit (revision 0003) leaves older rows verifiable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from alembic.config import Config
from langchain_core.messages import HumanMessage
from sqlalchemy import MetaData
from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.app import Chainproof
from chainproof.checkpoints import audit as audit_module
from chainproof.checkpoints.audit import AuditStore, make_engine
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import GENESIS, ModelCallRecord, Step
from chainproof.checkpoints.reasoning_cache import ReasoningCache
from chainproof.checkpoints.verify import verify_run
from chainproof.cli import app as cli
from chainproof.graphs.model_access import ModelAccess, StoredCache
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.toy_graph import ToyGraph
from testkit.toy_models import PRICES, toy_model

register("toy", ToyGraph)


class NoCacheForThink(ToyGraph):
    uncached = frozenset({"think"})


register("toy-no-cache-think", NoCacheForThink)


def _settings(home: Path, **kw) -> Settings:
    return Settings(home=home, pricing=PRICES, **kw)


def _calls(app: Chainproof, run_id: str) -> list[ModelCallRecord]:
    return app.audit.records_of(run_id, ModelCallRecord)


def test_a_second_run_of_the_same_input_is_answered_by_the_cache_at_no_cost(home):
    model = toy_model()
    with Chainproof(_settings(home), models=StaticModels(model)) as app:
        first = app.start("toy", {"x": 7})
        assert len(model.calls) == 4 and not any(c.cache_hit for c in _calls(app, first.run_id))
        second = app.start("toy", {"x": 7})
        hits = _calls(app, second.run_id)
        assert len(model.calls) == 4  # no model call at all
        assert [c.cache_hit for c in hits] == [True] * 4 and all(c.cost_usd == 0.0 for c in hits)
        # each hit records the tokens it saved (the original call's); the step rows used none
        assert [(c.input_tokens, c.output_tokens) for c in hits] == [(100, 50)] * 4
        assert [c.output for c in hits] == [c.output for c in _calls(app, first.run_id)]
        steps = [s for s in app.audit.records_of(second.run_id, Step) if s.model]
        assert all(s.input_tokens == 0 and s.output_tokens == 0 and s.cost_usd == 0.0 for s in steps)
        assert app.audit.run_cost_usd(second.run_id) == 0.0
        assert second.requests[0]["proposed"] == first.requests[0]["proposed"]
        other = app.start("toy", {"x": 8})  # another input: other prompts, misses
        assert not any(c.cache_hit for c in _calls(app, other.run_id)) and len(model.calls) == 8
        # hits replay as hits, identically, with no model call
        app.decide(second.run_id, action="approve", approver="Ana")
        report = app.replay(second.run_id)
        assert report.outcome == "identical" and report.model_calls_served == 4
    shown = CliRunner().invoke(cli, ["costs", second.run_id], env={"CHAINPROOF_HOME": str(home)})
    total = next(line for line in shown.output.splitlines() if line.startswith("total"))
    assert total.split() == ["total", "4", "4", "0", "0", "0", "0", "600", "0.000000"]


def test_entries_expire_after_the_ttl(home):
    now = [datetime(2026, 11, 29, 12, tzinfo=UTC)]
    settings = _settings(home)
    with Chainproof(settings, models=StaticModels(toy_model())) as app:
        cache = ReasoningCache(app.audit.engine, ttl_s=3600, clock=lambda: now[0])
        model = toy_model()
        access = ModelAccess(settings.model.profiles, StoredCache(cache))
        prompt = [HumanMessage("What is the revenue?")]
        assert not access.call(model, prompt, effort="low")[1].cache_hit  # miss, stored
        now[0] += timedelta(minutes=59)
        assert access.call(model, prompt, effort="low")[1].cache_hit  # hit within the TTL
        assert not access.call(model, prompt, effort="medium")[1].cache_hit  # the effort is part of the key
        now[0] += timedelta(minutes=2)
        assert not access.call(model, prompt, effort="low")[1].cache_hit  # expired: a miss, the model answers
        assert len(model.calls) == 3
        assert cache.stats() == {"entries": 2, "live": 2, "hits": 1}


def test_the_cache_can_be_turned_off_per_run_per_node_and_in_settings(home):
    model = toy_model()
    with Chainproof(_settings(home), models=StaticModels(model)) as app:
        app.start("toy-no-cache-think", {"x": 7})
        again = app.start("toy-no-cache-think", {"x": 7})
        hits = {c.node: c.cache_hit for c in _calls(app, again.run_id) if c.node != "observe"}
        assert hits == {"act": None, "decide": True}  # the "think" step never uses the cache
        off = app.start("toy", {"x": 7}, cache=False)
        assert not any(c.cache_hit for c in _calls(app, off.run_id))
        zdr = app.start("toy", {"x": 7}, zdr=True)  # zero data retention: the cache would store model text
        assert not any(c.cache_hit for c in _calls(app, zdr.run_id))
    with Chainproof(_settings(home, cache={"enabled": False}), models=StaticModels(model)) as app:
        run = app.start("toy", {"x": 7})
        assert not any(c.cache_hit for c in _calls(app, run.run_id))


def test_cache_clear_deletes_entries_and_leaves_the_audit_trail(home):
    model = toy_model()
    with Chainproof(_settings(home), models=StaticModels(model)) as app:
        run = app.start("toy", {"x": 7})
        assert app.reasoning_cache.stats()["entries"] == 4
    result = CliRunner().invoke(cli, ["cache", "clear"], env={"CHAINPROOF_HOME": str(home)})
    assert result.exit_code == 0 and "4 entries deleted" in result.output
    with Chainproof(_settings(home), models=StaticModels(model)) as app:
        assert app.reasoning_cache.stats()["entries"] == 0
        assert verify_run(app.audit, run.run_id).ok and len(_calls(app, run.run_id)) == 4
        app.start("toy", {"x": 7})
        assert len(model.calls) == 8  # asked again


def test_rows_written_before_revision_0003_still_verify(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(audit_module.__file__).parent / "migrations"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    meta = MetaData()
    meta.reflect(engine)
    assert "cache_hit" not in meta.tables["model_calls"].c
    at = datetime(2026, 11, 1, 10, tzinfo=UTC)
    row = {"run_id": "old", "seq": 1, "created_at": at, "prev_hash": GENESIS, "step_no": 1, "node": "act",
           "model": "m", "effort": "low", "prompt_hash": "0" * 64, "messages": [], "output": "x", "reasoning": "",
           "tool_calls": [], "input_tokens": 1, "cached_input_tokens": 0, "output_tokens": 1, "reasoning_tokens": 0,
           "latency_s": 0.1, "finish_reason": "stop", "attempt": 1, "cost_usd": None}
    row["record_hash"] = sha256_hex({**row, "table": "model_calls"})  # what the 0002 code hashed
    with engine.begin() as conn:  # a run recorded before revision 0003
        conn.execute(meta.tables["runs"].insert().values(run_id="old", graph="toy", goal="g", inputs={},
                                                         created_at=at, zdr=False))
        conn.execute(meta.tables["model_calls"].insert().values(**row))
    engine.dispose()
    store = AuditStore(url)  # upgrades to head: model_calls.cache_hit is added, NULL on the old row
    try:
        [old] = store.records_of("old", ModelCallRecord)
        assert old.cache_hit is None and verify_run(store, "old").ok
        # had the new column been hashed as NULL, the old row would no longer verify
        assert sha256_hex({**row, "cache_hit": None, "table": "model_calls"}) != old.record_hash
    finally:
        store.close()


def test_cache_and_spend_queries_work_on_sqlite_and_postgresql(backend_settings):
    settings = backend_settings.model_copy(update={"pricing": PRICES})
    model = toy_model()
    with Chainproof(settings, models=StaticModels(model)) as app:
        first = app.start("toy", {"x": 7}, department="M&A")
        second = app.start("toy", {"x": 7}, department="M&A")
        assert [c.cache_hit for c in _calls(app, second.run_id)] == [True] * 4 and len(model.calls) == 4
        month = _calls(app, first.run_id)[0].created_at.strftime("%Y-%m")
        spend = app.audit.department_spend("M&A", month)
        assert spend.usd == 0.8 and spend.unpriced == 0  # 4 paid calls of 0.2 USD; the hits cost 0
        assert app.audit.department_spend("M&A", "2000-01").usd == 0
        assert app.reasoning_cache.clear() == 4
