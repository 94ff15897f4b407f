"""Runs across processes for the lock and worker tests: chains whose tool calls and model requests
leave a line in files (``CHAINPROOF_TEST_EFFECTS``, ``CHAINPROOF_TEST_MODEL_LOG``), so a test
counts what every process did; and helpers that start child processes on a shared PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from chainproof.agents.scripted import ScriptedChatModel
from chainproof.graphs.approval_policy import ApprovalPolicy
from chainproof.graphs.registry import register
from chainproof.graphs.spec import PlanStep
from testkit.environ import without_settings
from testkit.long_graph import LongChain, responder

REPO = Path(__file__).resolve().parents[3]


def _append(var: str, line: str) -> None:
    path = os.environ.get(var)
    if path:
        with open(path, "a", encoding="utf-8") as f:  # one short write per line: O_APPEND keeps lines whole
            f.write(line + "\n")


def _mark(tag: str, step: str) -> dict[str, Any]:
    _append("CHAINPROOF_TEST_EFFECTS", f"{tag} {step} {os.getpid()}")
    return {"step": step, "value": len(step)}


class FleetInputs(BaseModel):
    tag: str = Field(min_length=1)
    n: int = Field(default=4, ge=1)


class FleetChain(LongChain):
    """``n`` tool steps, each leaving ``TAG sI PID`` in the effects file; ends on its own."""

    name = "fleet"
    inputs_model = FleetInputs
    review_every = 0

    def tools(self):
        return [StructuredTool.from_function(_mark, name="mark", description="mark one step")]

    def validate_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return FleetInputs.model_validate(inputs).model_dump()

    def goal(self, inputs):
        return f"Walk {inputs['n']} steps for {inputs['tag']}."

    def plan(self, inputs):
        return [PlanStep(id=f"s{i}", title=f"Step {i}", kind="tool", tool="mark",
                         args={"tag": "{inputs.tag}", "step": f"s{i}"}, instruction="Note the value.", effort="low")
                for i in range(1, inputs["n"] + 1)]


class GatedFleetChain(FleetChain):
    """:class:`FleetChain` whose decision a person approves."""

    name = "fleet-gated"

    def approval_policy(self) -> ApprovalPolicy:
        return ApprovalPolicy()


def tampered(*_: Any, **__: Any) -> Any:
    """Stands in for ``chainproof.workers.continuation`` in a worker whose every advance fails."""
    from chainproof.errors import RecordTampered

    raise RecordTampered("test: the run_paused record fails its hash check")


def register_all() -> None:
    register("fleet", FleetChain)
    register("fleet-gated", GatedFleetChain)
    register("long", LongChain)


def fleet_model(delay_s: float = 0.0) -> ScriptedChatModel:
    """Answers like ``long_model``; each request sleeps ``delay_s`` and leaves ``PID`` in the model log."""
    answer = responder()

    def reply(messages):
        _append("CHAINPROOF_TEST_MODEL_LOG", str(os.getpid()))
        time.sleep(delay_s)
        return answer(messages)

    return ScriptedChatModel(replies=[reply], repeat_last=True)


def fake_openai_answer(body: dict[str, Any]) -> str:
    """What :func:`fleet_model` answers, for the fake OpenAI server (``body``: the request JSON)."""
    from langchain_core.messages import HumanMessage, SystemMessage

    messages = body.get("messages") or [{"content": ""}]
    return responder()([SystemMessage(str(messages[0].get("content", ""))), HumanMessage("")])


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def child_env(home: Path, url: str, logs: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process: its own ``CHAINPROOF_HOME``, the shared PostgreSQL for
    the audit store and the checkpointer, the count files."""
    env = without_settings()
    env.update(CHAINPROOF_HOME=str(home), CHAINPROOF_DATABASE_URL=url, CHAINPROOF_CHECKPOINT_URL=url,
               CHAINPROOF_TEST_EFFECTS=str(logs / "effects.log"), CHAINPROOF_TEST_MODEL_LOG=str(logs / "model.log"),
               CHAINPROOF_WORKERS__POLLING_INTERVAL_S="0.1", **extra)
    return env


_WORKER = textwrap.dedent("""
    import json, signal, sys, threading
    from chainproof.agents.models import StaticModels
    from chainproof.app import Chainproof
    from chainproof.workers import serve
    SETUP
    name, concurrency, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    def report(out):
        print(json.dumps(out), flush=True)
    with Chainproof(models=MODELS) as app:
        print(json.dumps({"ready": name}), flush=True)
        serve(app, concurrency=concurrency, executor_id=name, stop=stop, report=report)
""")


def worker_script(setup: str, models: str) -> str:
    """The ``python -c`` source of a test worker (argv: name, concurrency, model delay in seconds):
    ``setup`` (one line) registers its graphs, ``models`` is the provider expression."""
    return _WORKER.replace("SETUP", setup).replace("MODELS", models)


# a negative delay: the configured model (CHAINPROOF_MODEL__*), its limits shared as configured
WORKER = worker_script("from testkit.fleet import fleet_model, register_all; register_all()",
                       "StaticModels(fleet_model(delay)) if delay >= 0 else None")


def start_worker(env: dict[str, str], name: str, *, concurrency: int = 2, delay_s: float = 0.0) -> subprocess.Popen:
    """A worker process (``chainproof.workers.serve`` with :func:`fleet_model`, or the model its
    environment configures when ``delay_s`` is negative) printing one JSON line per advance; stop
    it with :func:`stop_workers`."""
    return subprocess.Popen([sys.executable, "-c", WORKER, name, str(concurrency), str(delay_s)], cwd=REPO, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def start_ready(url: str, logs: Path, *names: str, concurrency: int = 2, delay_s: float = 0.0,
                **env: str) -> list[subprocess.Popen]:
    """Worker processes named ``names`` on ``url`` (each its own home under ``logs``), returned once
    each says it is ready; ``env``: extra environment (e.g. ``CHAINPROOF_MODEL__RPM``)."""
    import pytest

    procs = [start_worker(child_env(logs / f"home-{n}", url, logs, **env), n, concurrency=concurrency, delay_s=delay_s)
             for n in names]
    for p in procs:  # DBOS is launching once the process says it is ready
        assert p.stdout is not None
        line = p.stdout.readline()
        if not line.startswith('{"ready"'):
            p.wait(timeout=30)
            pytest.fail(f"worker did not start: {line}{p.stderr.read() if p.stderr else ''}")
    return procs


def wait_status(app: Any, run_ids: list[str], status: str, procs: list[subprocess.Popen], timeout: float = 240) -> None:
    """Wait until every run of ``run_ids`` has ``status`` in ``app``'s audit store; fails the test
    (stopping the workers) on timeout or when a worker exits."""
    from collections import Counter

    import pytest

    deadline = time.monotonic() + timeout
    while True:
        states = {r: app.audit.run_status(r) for r in run_ids}
        if all(s == status for s in states.values()):
            return
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            outs = stop_workers(*procs)
            pytest.fail(f"runs not {status}: {Counter(states.values())}; workers reported {outs}")
        time.sleep(0.2)


def stop_workers(*procs: subprocess.Popen) -> list[dict[str, Any]]:
    """SIGTERM each worker, wait for it, and return every advance it reported."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr[-3000:]
        outs += [json.loads(line) for line in stdout.splitlines() if line.startswith("{") and '"run_id"' in line]
    return outs
