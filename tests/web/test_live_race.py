"""A live reader never ends a stream before the run's last records: a run that completes between
its query for new records and its status check is read again (found by bench/web.py: 50 clients
lost the last events)."""

from __future__ import annotations

from types import SimpleNamespace

from chainproof._live import LiveReader


class _RacingReader:
    """Nothing new at the first query; by the status check the last step and run_completed are in."""

    def __init__(self):
        self.calls = 0
        step = SimpleNamespace(__tablename__="steps", seq=5, step_no=2, node="act", kind="tool", title="t",
                               status="ok", effort="low", model=None, input_tokens=0, cached_input_tokens=0,
                               output_tokens=0, reasoning_tokens=0, cost_usd=0.0, duration_s=0.1)
        done = SimpleNamespace(__tablename__="events", seq=6, kind="run_completed", detail={"report_path": "r.md"})
        self.late = [step, done]

    def records_after(self, run_id, after_seq, tables):
        self.calls += 1
        return [] if self.calls == 1 else [r for r in self.late if r.seq > after_seq]

    def run_status(self, run_id):
        return "completed"

    def seqs_after(self, run_id, after_seq, tables):
        return []

    def records_of(self, run_id, table):
        return []


class _GapReader(_RacingReader):
    """Step 5 was committed between the query of the steps and that of the events: only 6 is seen."""

    def records_after(self, run_id, after_seq, tables):
        self.calls += 1
        return [r for r in self.late if r.seq > after_seq and (self.calls > 1 or r.seq != 5)]


def test_a_run_completing_between_two_queries_loses_no_event():
    live = LiveReader(_RacingReader(), "r", 4)
    assert [(e.type, e.seq) for e in live.batch()] == [("step_finished", 5), ("completed", 6)]
    assert live.completed and live.batch() == []


def test_a_record_committed_between_two_table_queries_is_not_skipped():
    live = LiveReader(_GapReader(), "r", 4)
    assert live.batch() == [] and not live.completed  # 5 is missing: 6 waits for it
    assert [(e.type, e.seq) for e in live.batch()] == [("step_finished", 5), ("completed", 6)]
