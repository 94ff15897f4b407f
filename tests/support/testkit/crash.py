"""A scripted run for the kill tests: ``n`` plan steps, each calling a ``side_effects=True`` tool
that leaves ``TAG sI PID`` in the effects file (``CHAINPROOF_TEST_EFFECTS``) and interpreted by a
scripted model that leaves ``PID PROMPT_HASH`` in the model log (``CHAINPROOF_TEST_MODEL_LOG``), then
a decision a person approves. A child process drives one run through its whole life
(:data:`DRIVER`); ``CHAINPROOF_TEST_KILL_AT`` kills it at an exact point."""

from __future__ import annotations

import os
import textwrap
import time
from typing import Any

from chainproof.agents.calls import wire_messages
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.graphs.registry import register
from chainproof.graphs.tool import tool
from testkit.fleet import GatedFleetChain, _append, worker_script
from testkit.long_graph import responder


@tool(name="send", side_effects=True)
def send(tag: str, step: str) -> dict[str, Any]:
    """Send one notice (a side effect: it leaves a line in the effects file)."""
    _append("CHAINPROOF_TEST_EFFECTS", f"{tag} {step} {os.getpid()}")
    return {"step": step, "value": len(step)}


class CrashChain(GatedFleetChain):
    """:class:`~testkit.fleet.GatedFleetChain` whose tool has side effects."""

    name = "crash"

    def tools(self):
        return [send]

    def plan(self, inputs):
        return [step.model_copy(update={"tool": "send"}) for step in super().plan(inputs)]


def register_crash() -> None:
    register("crash", CrashChain)


def crash_model(delay_s: float = 0.0) -> ScriptedChatModel:
    """Answers like ``long_model``; each request leaves ``PID PROMPT_HASH`` in the model log (the
    hash the audit records as ``model_calls.prompt_hash``)."""
    answer = responder()

    def reply(messages):
        _append("CHAINPROOF_TEST_MODEL_LOG", f"{os.getpid()} {sha256_hex(wire_messages(messages))}")
        time.sleep(delay_s)
        return answer(messages)

    return ScriptedChatModel(replies=[reply], repeat_last=True)


def drive(app: Any, run_id: str, n: int) -> str:
    """Take ``run_id`` one move further: start it (when the store has no such run), approve its
    pending request, or resume it; returns the status after the move (``failed`` when the run
    stopped on a side-effect call whose outcome a kill left unknown: the next resume goes on)."""
    from chainproof.errors import RunNotResumable, UnsupportedValue

    if app.audit.get_run(run_id) is None:
        return app.start("crash", {"tag": run_id, "n": n}, run_id=run_id, cache=False).status
    if app.audit.run_status(run_id) == "completed":
        return "completed"
    pending = app.pending_requests(run_id)
    if pending and any(app.audit.decision_for(r["request_id"]) is None for r in pending):
        return app.decide(run_id, action="approve", approver="dana").status
    # else: a decision a kill kept from reaching the run is applied by resume (as the refusal says)
    try:
        return app.resume(run_id).status
    except UnsupportedValue:  # ToolOutcomeUnknown: a person checks the effect, then resumes
        return "failed"
    except RunNotResumable:  # the resume recorded a pause a kill left unrecorded: approve it next
        return app.audit.run_status(run_id) or "started"


DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from chainproof.agents.models import StaticModels
    from chainproof.app import Chainproof
    from chainproof.errors import UnsupportedValue
    from testkit.crash import crash_model, drive, register_crash
    register_crash()
    run_id, n, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with Chainproof(models=StaticModels(crash_model(delay))) as app:
        print("ready", flush=True)
        for _ in range(6):
            try:
                if drive(app, run_id, n) == "completed":
                    break
            except UnsupportedValue:
                continue
    print("done", flush=True)
""")


class AutoCrashChain(CrashChain):
    """:class:`CrashChain` without the human gate: a run ends on its own (for workers)."""

    name = "crash-auto"

    def approval_policy(self):
        from chainproof.graphs.approval_policy import ApprovalPolicy

        return ApprovalPolicy(nodes=[])


register("crash-auto", AutoCrashChain)

WORKER = worker_script("from testkit.crash import crash_model, register_crash; register_crash()",
                       "StaticModels(crash_model(delay))")
