"""The value contract end to end (``chainproof.values``): every supported kind crosses a pause into a
new process and a replay unchanged; every refused kind stops the run with an error naming the tool,
the key path and the type, leaves its tool_calls row, and resumes without running the tool again."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_schema import ToolCallRecord
from chainproof.errors import UnsupportedValue
from chainproof.graphs.registry import register
from testkit import value_graph
from testkit.environ import without_settings
from testkit.value_graph import BEFORE_DST, SUPPORTED, ValueGraph, report_facts

register("values-kinds", ValueGraph)

CHILD = textwrap.dedent("""
    import json, sys
    from chainproof.agents.models import StaticModels
    from chainproof.agents.scripted import ScriptedChatModel
    from chainproof.app import Chainproof
    from chainproof.graphs.registry import register
    from testkit.value_graph import ValueGraph
    register("values-kinds", ValueGraph)
    run_id, action = sys.argv[1:3]
    with Chainproof(models=StaticModels(ScriptedChatModel(replies=[]))) as app:
        if action == "edit":
            r = app.decide(run_id, action="edit", approver="Child", changes=['note="edited in a new process"'])
        else:
            r = app.decide(run_id, action="approve", approver="Child")
        print(json.dumps({"status": r.status, "report": r.report_path}))
""")


def _models(*replies: str) -> StaticModels:
    return StaticModels(ScriptedChatModel(replies=list(replies)))


@pytest.mark.parametrize("action", ["approve", "edit"])
def test_every_supported_kind_survives_a_pause_a_new_process_and_a_replay(settings, home, action):
    value_graph.INVOCATIONS.clear()
    with Chainproof(settings, models=_models("made", "echoed", "x", "x", "x")) as app:
        run = app.start("values-kinds", {"kind": "all", "start": BEFORE_DST})
    assert run.status == "paused", run
    env = without_settings()
    env["CHAINPROOF_HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", CHILD, run.run_id, action], env=env, text=True,
                         capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr
    child = json.loads(out.stdout)
    assert child["status"] == "completed"
    facts = report_facts(Path(child["report"]).read_text())

    # the tool got decoded values, and the report (rendered in the new process) reads them back
    assert facts["echo"]["received"] == {k: [type(value_graph.value_of(k)).__qualname__, True]
                                         for k in SUPPORTED}
    assert facts["data"] == facts["echo"]["received"]
    assert facts["echo"]["start_zone"] == "America/New_York" and facts["echo"]["level"] == "Level"
    decision = facts["decision"]
    assert decision["tz"] == "America/New_York"
    assert decision["plus_24h"] == "2018-03-11T12:00:00-04:00"  # a fixed offset would give 13:00-04:00
    assert decision["level"] == "<Level.HIGH: 'high'>"
    assert decision["box"] == ["Box", 3, "set after init"]  # the init=False field kept its value
    assert decision["anything"] == "Inner" and decision["amount"] == "Decimal('0.10')"
    assert decision["day"] == "datetime.date(2018, 3, 11)" and decision["exact"] is True
    if action == "edit":
        assert decision["note"] == "edited in a new process" and facts["edited_by"] == "Child"

    with Chainproof(settings, models=_models()) as app:
        replay = app.replay(run.run_id)
        assert replay.outcome == "identical", (replay.stopped_by, replay.first_divergence)
        assert replay.tool_calls_served == 2 and replay.model_calls_served == 5
    assert value_graph.INVOCATIONS == {"make": 1, "echo": 1}


@pytest.mark.parametrize("kind,type_name", [("fraction", "Fraction"), ("range", "range"), ("opaque", "Opaque"),
                                            ("object", "object")])
def test_a_refused_tool_result_names_tool_key_and_type_and_resumes_without_a_second_run(settings, kind, type_name):
    value_graph.INVOCATIONS.clear()
    with Chainproof(settings, models=_models("x", "x", "x")) as app:
        with pytest.raises(UnsupportedValue) as caught:
            app.start("values-kinds", {"kind": kind, "start": BEFORE_DST}, run_id=f"refused-{kind}")
        message = str(caught.value)
        assert "tool make" in message and "result.items[2].when" in message and f"type {type_name}" in message
        assert "chainproof resume refused-" in "\n".join(caught.value.__notes__)
        assert app.audit.run_status(f"refused-{kind}") == "failed"
        [row] = app.audit.records_of(f"refused-{kind}", ToolCallRecord)
        assert row.tool == "make" and row.result is None
        assert "result.items[2].when" in row.error and type_name in row.error

        resumed = app.resume(f"refused-{kind}")
        assert resumed.status == "paused" and len(resumed.requests) == 1  # on to the approval, past the refusal
        done = app.decide(f"refused-{kind}", action="approve", approver="Ana")
        assert done.status == "completed"
        assert value_graph.INVOCATIONS == {"make": 1}  # the tool did not run again
        assert len(app.audit.records_of(f"refused-{kind}", ToolCallRecord)) == 1
        facts = report_facts(Path(done.report_path).read_text())
        assert "was refused" in facts["findings"]["make"] and type_name in facts["findings"]["make"]

        replay = app.replay(f"refused-{kind}")
        assert replay.outcome == "identical", (replay.stopped_by, replay.first_divergence)
    assert value_graph.INVOCATIONS == {"make": 1}
