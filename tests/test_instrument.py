"""Trust for an existing LangGraph graph: the README's two-node support-desk graph
(``tests/support/support_desk/graph.py``, plain LangGraph with its own ``ChatOpenAI`` and an
``interrupt()``), instrumented unchanged, is run, paused, approved from a second process, shown,
verified, replayed (identical, zero model calls) and exported from the CLI; its node efforts reach
the model's requests; an edit and a rejection reach the node's ``interrupt()``; a node with a side
effect Chainproof never saw replays as divergent at its step."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from chainproof import Chainproof, instrument, register
from chainproof.graphs.registry import unregister
from testkit.environ import without_settings
from testkit.fake_openai import FakeOpenAI

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLE = Path(__file__).resolve().parent / "support" / "support_desk"
DRAFT = "Dear Ana, we are sorry the kettle arrived broken; a replacement ships today."


def _answer(body: dict) -> str:
    return DRAFT


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch):
    """The fake OpenAI endpoint the example's ``ChatOpenAI`` talks to (OpenAI's own env variables)."""
    with FakeOpenAI(_answer) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        yield fake


def test_the_cli_runs_pauses_approves_shows_verifies_and_replays_an_instrumented_graph(server, home, tmp_path):
    env = without_settings()
    env.update(CHAINPROOF_HOME=str(home), CHAINPROOF_GRAPHS='["support_desk.trust:graph"]', COLUMNS="220")

    def cli(*args: str, code: int = 0) -> str:
        done = subprocess.run([sys.executable, "-m", "chainproof.cli", *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=120)
        assert done.returncode == code, done.stdout + done.stderr
        return done.stdout + done.stderr

    assert "support-reply" in cli("graphs") and "customer" in cli("graphs")
    started = cli("run", "support-reply", "--customer", "Ana", "--message", "My kettle arrived broken.", "--as", "Ana")
    run_id = re.search(r"chainproof approve (\w+) --as", started).group(1)
    assert "Send this reply?" in started
    assert len(server.requests) == 1
    body = server.requests[0]
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 192  # efforts={"draft": "low"}: the low profile
    pending = cli("pending")
    assert run_id in pending and "Send this reply?" in pending

    approved = cli("approve", run_id, "--as", "Dana Approver", "--comment", "polite and right")  # a second process
    assert "completed" in approved
    shown = cli("show", run_id)
    assert "Node draft" in shown and "low" in shown and "Human decision on node send: approve" in shown
    assert "Dana Approver" in shown and "polite and right" in shown
    assert "intact" in cli("verify", run_id)
    calls = len(server.requests)
    replayed = cli("replay", run_id)
    assert "identical" in replayed and "1 model answers" in replayed and "0 model calls made" in replayed
    assert len(server.requests) == calls == 1  # the replay asked the model nothing
    out = tmp_path / "run.json"
    cli("export", run_id, "--format", "json", "--out", str(out))
    exported = json.loads(out.read_text())
    assert exported["verify"]["ok"] and exported["run"]["graph"] == "support-reply"
    steps = [r for r in exported["records"] if r["table"] == "steps"]
    assert [(s["node"], s["effort"]) for s in steps] == [("draft", "low"), ("send", None), ("approve", None), ("send", None)]


def test_an_edit_and_a_rejection_reach_the_nodes_interrupt_and_replay_identically(server, settings):
    from support_desk.trust import graph

    register("support-reply", graph)
    try:
        with Chainproof(settings) as app:
            first = app.start("support-reply", {"customer": "Ana", "message": "Broken kettle."})
            assert first.status == "paused" and first.requests[0]["proposed"]["draft"] == DRAFT
            edited = app.decide(first.run_id, action="edit", approver="Dana", edited={"draft": "Sorry, Ana."})
            assert edited.status == "completed"
            assert edited.state["draft"] == "Sorry, Ana." and edited.state["sent"] and edited.state["reviewer"] == "Dana"
            second = app.start("support-reply", {"customer": "Bo", "message": "Late parcel."})
            rejected = app.decide(second.run_id, action="reject", approver="Dana", comment="too vague")
            assert rejected.state["sent"] is False and rejected.state["draft"] == DRAFT
            for run in (first, second):
                report = app.replay(run.run_id)
                assert report.outcome == "identical" and report.model_calls_served == 1
            rows = app.audit.records(first.run_id)
            decision = next(r for r in rows if r.__tablename__ == "approvals" and r.action == "edit")
            assert decision.payload["edited"] == {"draft": "Sorry, Ana."}
            model_rows = [r for r in rows if r.__tablename__ == "model_calls"]
            assert [(r.node, r.effort, r.output) for r in model_rows] == [("draft", "low", DRAFT)]
        assert len(server.requests) == 2  # one draft per run; replays made none
    finally:
        unregister("support-reply")


class Counter(TypedDict, total=False):
    n: int


def test_a_side_effect_chainproof_never_saw_is_reported_as_a_divergence_at_its_step(settings):
    ticks = itertools.count(1)
    builder = StateGraph(Counter)
    builder.add_node("tick", lambda state: {"n": next(ticks)})  # reads outside state: not replayable
    builder.add_edge(START, "tick")
    builder.add_edge("tick", END)
    register("ticker", instrument(builder, name="ticker"))
    try:
        with Chainproof(settings) as app:
            run = app.start("ticker", {})
            assert run.status == "completed" and run.state == {"n": 1}
            report = app.replay(run.run_id)
        assert report.outcome == "divergent"
        first = report.first_divergence
        assert (first.step_no, first.node) == (1, "tick")
        assert first.differences == ["steps.output: keys ['update']"]
    finally:
        unregister("ticker")


def test_instrument_names_what_is_wrong_and_leaves_the_builder_as_it_was():
    from support_desk.graph import builder

    nodes = dict(builder.nodes)
    with pytest.raises(ValueError, match=r"^efforts: no node 'drafts' in the graph; its nodes are draft, send$"):
        instrument(builder, name="x", efforts={"drafts": "low"})
    with pytest.raises(ValueError, match=r"^efforts: 'draft' has effort 'max'"):
        instrument(builder, name="x", efforts={"draft": "max"})  # type: ignore[dict-item]
    graph = instrument(builder, name="x", efforts={"draft": "high"})
    graph.compile_graph(None)
    assert builder.nodes == nodes and all(builder.nodes[n] is nodes[n] for n in nodes)
    assert sorted(type(graph).inputs_model.model_fields) == ["customer", "draft", "message", "reviewer", "sent"]
    assert [n for n, f in type(graph).inputs_model.model_fields.items() if f.is_required()] == ["customer", "message"]


def test_the_readme_example_is_the_support_desk_code():
    text = README.read_text()
    section = text[text.index("## Trust for an existing graph"):]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks[0] == (EXAMPLE / "graph.py").read_text()
    assert blocks[1] == (EXAMPLE / "trust.py").read_text()


class Sums(TypedDict, total=False):
    a: int
    b: int
    total: int
    said: str


def test_a_nodes_tool_and_model_calls_are_rows_of_its_step_with_its_effort_applied(settings):
    from langchain_core.tools import tool

    from chainproof import ScriptedChatModel

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    model = ScriptedChatModel(replies=["The total is 5."])

    def compute(state: Sums) -> dict:
        total = add.invoke({"a": state["a"], "b": state["b"]})
        return {"total": total, "said": model.invoke(f"Say the total {total}.").content}

    builder = StateGraph(Sums)
    builder.add_node("compute", compute)
    builder.add_edge(START, "compute")
    register("sums", instrument(builder, name="sums", efforts={"compute": "high"}))
    try:
        with Chainproof(settings) as app:
            run = app.start("sums", {"a": 2, "b": 3})
            assert run.state == {"a": 2, "b": 3, "total": 5, "said": "The total is 5."}
            rows = app.audit.records(run.run_id)
            report = app.replay(run.run_id)
    finally:
        unregister("sums")
    high = settings.model.profiles["high"]
    assert model.bound == [{"max_tokens": high.max_tokens, "temperature": high.temperature}]  # the node's effort
    tools = [(r.step_no, r.node, r.tool, r.args, r.result, r.error) for r in rows if r.__tablename__ == "tool_calls"]
    assert tools == [(1, "compute", "add", {"a": 2, "b": 3}, {"output": 5}, None)]
    calls = [(r.step_no, r.effort, r.messages, r.output) for r in rows if r.__tablename__ == "model_calls"]
    assert calls == [(1, "high", [{"role": "user", "content": "Say the total 5."}], "The total is 5.")]
    step = next(r for r in rows if r.__tablename__ == "steps")
    assert (step.node, step.effort, step.output) == ("compute", "high", {"update": {"total": 5, "said": "The total is 5."}})
    assert report.outcome == "identical" and report.model_calls_served == 1 and len(model.calls) == 1
