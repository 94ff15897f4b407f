"""The same pause → approve → complete path with the audit store and checkpointer on PostgreSQL."""

from __future__ import annotations

import json
import uuid

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import Step
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.toy_graph import ToyGraph


def test_pause_and_approve_on_postgres(home, pg_url):
    register("toy", ToyGraph)
    settings = Settings(home=home, database_url=pg_url, checkpoint_url=pg_url)
    model = ScriptedChatModel(replies=["a", "b", "c", json.dumps({"verdict": "no", "reason": "small number"})])
    with Chainproof(settings, models=StaticModels(model)) as app:
        run = app.start("toy", {"x": 1}, run_id=f"pg-{uuid.uuid4().hex[:8]}")
        assert run.status == "paused"
    # a fresh engine (as another process would) resumes from the PostgreSQL checkpoint
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=[]))) as app:
        assert app.pending_requests(run.run_id)[0]["proposed"]["verdict"] == "no"
        done = app.decide(run.run_id, action="approve", approver="PG Approver")
        assert done.status == "completed"
        assert [s.node for s in app.audit.records_of(run.run_id, Step)][-2:] == ["approve", "report"]


def _connections(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT application_name, count(*) FROM pg_stat_activity WHERE "
                                 "datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1").fetchall())


def test_run_locks_of_one_process_share_one_connection_and_still_exclude(home, pg_url):
    """Ten runs locked at once by one process hold one lock connection; a second taker of a held
    run, in this process or another session, is refused; released, the run is free again."""
    from contextlib import ExitStack

    import pytest

    from chainproof._locks import lock_is_free, run_lock
    from chainproof.errors import RunBusy

    runs = [f"lock-{uuid.uuid4().hex[:8]}" for _ in range(10)]
    with ExitStack() as held:
        for r in runs:
            held.enter_context(run_lock(home, r, pg_url))
        assert _connections(pg_url).get("chainproof-run-lock") == 1
        with pytest.raises(RunBusy, match="being advanced by another process"):
            with run_lock(home, runs[3], pg_url):
                pass
        assert not any(lock_is_free(home, r, pg_url) for r in runs)  # seen from another session
    assert all(lock_is_free(home, r, pg_url) for r in runs)
    with run_lock(home, runs[3], pg_url):  # free again, on the same connection
        assert _connections(pg_url).get("chainproof-run-lock") == 1


def test_an_engines_pools_hold_at_most_workers_pool_size_connections(home, pg_url):
    """Eight runs advanced at once by threads of one engine with workers.pool_size 2: the audit
    store and the checkpointer each hold at most 2 connections, and every run completes."""
    from concurrent.futures import ThreadPoolExecutor

    from testkit import fleet

    fleet.register_all()
    assert Settings(home=home).workers.resolved_pool_size == 5  # 2 + ceil(10 / 4) at the default concurrency
    settings = Settings(home=home, database_url=pg_url, checkpoint_url=pg_url, workers={"pool_size": 2})
    with Chainproof(settings, models=StaticModels(fleet.fleet_model(0.05))) as app:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: app.start("fleet", {"tag": f"p{i}", "n": 3}), range(8)))
        used = _connections(pg_url)
        assert [r.status for r in results] == ["completed"] * 8
    assert used.get("chainproof-audit", 0) <= 2 and used.get("chainproof-checkpoints", 0) <= 2, used


def test_a_leaf_appended_while_the_signer_reads_the_log_is_past_its_end_not_a_missing_record(home, pg_url,
                                                                                            monkeypatch):
    """A tree head is signed while other workers append: a leaf committed between the signer's two
    reads of the log is not yet in the log it signs, never "the record is missing" (which refused
    to sign and made a worker-recovery run fail)."""
    from chainproof.checkpoints import merkle_log
    from chainproof.checkpoints.audit_schema import EventRecord

    register("toy", ToyGraph)
    settings = Settings(home=home, database_url=pg_url, checkpoint_url=pg_url)
    model = ScriptedChatModel(replies=["a", "b", "c", json.dumps({"verdict": "no", "reason": "small number"})])
    with Chainproof(settings, models=StaticModels(model)) as app:
        run = app.start("toy", {"x": 1})
        break_at = merkle_log._break_at

        def racing(conn, idx):  # another process appends between the two reads
            app.audit.append(run.run_id, EventRecord(kind="model_retry", detail={"attempt": 1}))
            return break_at(conn, idx)

        monkeypatch.setattr(merkle_log, "_break_at", racing)
        leaves = merkle_log.signable_leaves(app.audit.engine)  # raised LogInconsistent before
        monkeypatch.setattr(merkle_log, "_break_at", break_at)
        assert len(merkle_log.signable_leaves(app.audit.engine)) == len(leaves) + 1


def test_appends_racing_from_two_stores_give_every_record_one_leaf_in_order_and_write_their_riders(pg_url):
    """Two stores (as two workers) append from several threads at once with a reasoning-cache entry
    riding on each append: the leaves' indexes are 0..n-1 with no gap, each record has exactly one,
    a run's leaves follow its seq, the log signs, and every entry was written with its records."""
    import threading

    from sqlalchemy import select

    from chainproof.checkpoints import merkle_log
    from chainproof.checkpoints.audit import AuditStore
    from chainproof.checkpoints.audit_schema import EventRecord
    from chainproof.checkpoints.audit_tables import merkle_leaves
    from chainproof.checkpoints.reasoning_cache import PendingPut, ReasoningCache

    stores = [AuditStore(pg_url), AuditStore(pg_url)]
    caches = [ReasoningCache(s.engine) for s in stores]
    runs = [f"race-{i}" for i in range(6)]
    for run_id in runs:
        stores[0].start_run(run_id, graph="g", goal="race", inputs={})

    def appender(i: int) -> None:
        store, cache, run_id = stores[i % 2], caches[i % 2], runs[i]
        for n in range(15):
            rider = PendingPut(cache, {"key": f"{run_id}:{n}", "model": "m", "effort": "low", "response": {"n": n},
                                       "created_at": cache.clock(), "expires_at": cache.clock() + cache.ttl, "hits": 0})
            store.append(run_id, EventRecord(kind="tick", detail={"n": n}), riders=(rider,))
            assert rider.written

    threads = [threading.Thread(target=appender, args=(i,)) for i in range(len(runs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        with stores[0].engine.connect() as conn:
            rows = conn.execute(select(merkle_leaves.c.idx, merkle_leaves.c.record_table, merkle_leaves.c.record_id)
                                .order_by(merkle_leaves.c.idx)).all()
        assert [r[0] for r in rows] == list(range(len(runs) * 16))  # 6 run_started + 6 x 15 ticks
        assert len({(r[1], r[2]) for r in rows}) == len(rows)
        leaves = merkle_log.signable_leaves(stores[0].engine)
        for run_id in runs:
            seqs = [leaf.seq for leaf in leaves if leaf.run_id == run_id]
            assert seqs == sorted(seqs) and len(seqs) == 16
        assert all(caches[1].get(f"{run_id}:{n}") == {"n": n} for run_id in runs for n in (0, 14))
    finally:
        for store in stores:
            store.close()


def test_on_postgres_an_append_to_one_run_does_not_wait_for_another_runs_append_in_the_same_process(pg_url):
    """A store on PostgreSQL serialises appends per run (the database orders them across runs): an
    append held open inside its transaction does not stop another run's append in the same process.
    Two appends to one run still take turns."""
    import threading

    from chainproof.checkpoints.audit import AuditStore
    from chainproof.checkpoints.audit_schema import EventRecord

    store = AuditStore(pg_url)
    for run_id in ("held", "free"):
        store.start_run(run_id, graph="g", goal="g", inputs={})
    inside, other_done = threading.Event(), threading.Event()

    def hold(conn) -> None:  # runs inside the append's transaction, with the append lock held
        inside.set()
        other_done.wait(timeout=20)

    held = threading.Thread(target=store._append, args=("held", (EventRecord(kind="tick", detail={}),)),
                            kwargs={"guard": hold})
    held.start()
    try:
        assert inside.wait(timeout=20)
        free = threading.Thread(target=store.append, args=("free", EventRecord(kind="tick", detail={})))
        free.start()
        free.join(timeout=10)  # with one lock for the store it waited for `held` (20 s)
        assert not free.is_alive() and len(store.records("free")) == 2
        assert [r.kind for r in store.records("held")] == ["run_started"]  # still inside its transaction
    finally:
        other_done.set()
        held.join(timeout=20)
    assert [r.kind for r in store.records("held")][-1] == "tick"
    store.close()
