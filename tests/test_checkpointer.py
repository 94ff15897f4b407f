"""The SQLite checkpointer's storage: checkpoints are zlib-compressed, a paused run resumes from
them in a new process, and threads written by LangGraph's plain SqliteSaver still load."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path
from typing import TypedDict

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.saver import CompressingSerializer, open_checkpointer
from chainproof.graphs.registry import register
from testkit.toy_graph import ToyGraph

pytestmark = pytest.mark.usefixtures("fresh_registries")

VERDICT = json.dumps({"verdict": "yes", "reason": "98 is large enough"})


def _checkpoint_types(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [t for (t,) in conn.execute("SELECT type FROM checkpoints ORDER BY rowid")]
    finally:
        conn.close()


def test_a_paused_runs_checkpoints_are_compressed_and_it_resumes_in_another_process(settings, home):
    register("toy", ToyGraph)
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(
            replies=["The square is 49.", "The double is 98.", "It is large.", VERDICT]))) as app:
        run = app.start("toy", {"x": 7})
    assert run.status == "paused"
    path = Path(settings.resolved_checkpoint_url)
    types = _checkpoint_types(path)
    assert "msgpack+zlib" in types, types  # the state's checkpoints are compressed ...
    assert b"The square is 49." not in path.read_bytes()  # ... so the raw text is not in the file
    # ... and read back whole: the decision is applied in a fresh interpreter from the checkpoint
    code = ("import sys; sys.path.insert(0, 'tests/support');"
            "from chainproof.app import Chainproof; from chainproof.settings import Settings;"
            "from chainproof.graphs.registry import register; from testkit.toy_graph import ToyGraph;"
            "register('toy', ToyGraph);"
            f"app = Chainproof(Settings(home={str(home)!r}));"
            f"r = app.decide({run.run_id!r}, action='approve', approver='Dana', comment='ok');"
            "print(r.status, r.state['inputs']['x'], r.state['done_count']); app.close()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == 0, done.stderr
    status, x, done_count = done.stdout.split()
    assert (status, x) == ("completed", "7") and int(done_count) >= 3, done.stdout


class Count(TypedDict):
    n: int
    note: str


def _counter():
    builder = StateGraph(Count)
    builder.add_node("inc", lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, "inc")
    builder.add_conditional_edges("inc", lambda s: "inc" if s["n"] < 3 else END, ["inc", END])
    return builder


def test_a_thread_written_by_langgraphs_plain_sqlite_saver_still_loads_and_continues(tmp_path):
    path = tmp_path / "checkpoints.sqlite"
    config = {"configurable": {"thread_id": "t1"}}
    note = "x" * 2000  # large enough that our saver compresses the state it writes from here on
    with SqliteSaver.from_conn_string(str(path)) as plain:
        graph = _counter().compile(checkpointer=plain, interrupt_before=["inc"])
        graph.invoke({"n": 0, "note": note}, config)
    assert set(_checkpoint_types(path)) == {"msgpack"}  # LangGraph's own format, string versions
    with open_checkpointer(str(path)) as saver:
        graph = _counter().compile(checkpointer=saver)
        assert graph.get_state(config).values == {"n": 0, "note": note}
        assert graph.invoke(None, config) == {"n": 3, "note": note}
    assert "msgpack+zlib" in _checkpoint_types(path)


def test_small_values_stay_uncompressed_and_a_corrupted_compressed_value_is_an_error():
    serde = CompressingSerializer()
    assert serde.dumps_typed({"n": 1})[0] == "msgpack"
    typ, blob = serde.dumps_typed({"note": "abc " * 500})
    assert typ == "msgpack+zlib" and len(blob) < 200
    assert serde.loads_typed((typ, blob)) == {"note": "abc " * 500}
    with pytest.raises(zlib.error):
        serde.loads_typed((typ, blob[:-8] + b"\x00" * 8))
