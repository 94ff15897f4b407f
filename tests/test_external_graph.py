"""A developer's own graph package, outside Chainproof, installed with ``pip install -e`` into a
project venv and declared through the ``chainproof.graphs`` entry point: three typed tools, a goal
review and an approval. The CLI alone lists it, runs it, pauses it, approves it from a second
process, and shows, verifies, replays (identical, zero model calls), exports and forks it. The
README's "Writing a graph" example is this package's code."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.fake_openai import FakeOpenAI
from testkit.venvs import Venv, clean_env, make_venv

PACKAGE = Path(__file__).resolve().parent / "support" / "margin_check_pkg"
README = Path(__file__).resolve().parents[1] / "README.md"


def answer(body: dict) -> str:
    """The scripted model: a 'continue' goal review, a 'reprice' verdict, a sentence otherwise."""
    system = body["messages"][0]["content"]
    if '"title":"ReviewDecision"' in system:
        return json.dumps({"decision": "continue", "reason": "On track.", "drift": "none"})
    if '"title":"Verdict"' in system:
        return json.dumps({"decision": "reprice", "reason": "The margin is below the target."})
    return "Noted."


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Venv, Path]]:
    root = tmp_path_factory.mktemp("project")
    src = root / "margin_check_pkg"
    shutil.copytree(PACKAGE, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = make_venv(root, with_this_checkout=True)
    venv.pip("install", "--no-deps", "--no-build-isolation", "-e", src, cwd=root)
    yield venv, root


def _cli(venv: Venv, root: Path, env: dict[str, str], *args: str):
    return venv.run(venv.python, "-m", "chainproof.cli", *args, cwd=root, env=env, timeout=120)


def test_the_cli_alone_runs_a_graph_from_an_installed_package(project, tmp_path):
    venv, root = project
    with FakeOpenAI(answer) as server:
        env = clean_env(CHAINPROOF_HOME=str(tmp_path / "home"), CHAINPROOF_MODEL__PROVIDER="openai",
                        CHAINPROOF_MODEL__MODEL="fake-model", CHAINPROOF_MODEL__BASE_URL=server.base_url,
                        CHAINPROOF_MODEL__API_KEY="sk-test")

        def cli(*args: str, code: int = 0) -> str:
            done = _cli(venv, root, env, *args)
            assert done.returncode == code, done.stdout + done.stderr
            return done.stdout + done.stderr

        graphs = cli("graphs")
        assert "margin-check" in graphs and "margin_check.graph:MarginCheck" in graphs and "revenue" in graphs
        bad = cli("run", "margin-check", "--input", "product=Widget", "--input", "revenue=-5", "--input", "cost=80",
                  code=2)
        assert "revenue" in bad and "greater than 0" in bad
        started = cli("run", "margin-check", "--input", "product=Widget", "--input", "revenue=100", "--input", "cost=80",
                      "--as", "Ana Analyst")
        run_id = re.search(r"chainproof approve (\w+) --as", started).group(1)
        assert "reprice" in started
        assert run_id in cli("pending") and run_id in cli("runs")

        approved = cli("approve", run_id, "--as", "Dana Approver", "--comment", "reprice it")  # a second process
        assert "completed" in approved
        report = (tmp_path / "home" / "reports" / f"{run_id}.md").read_text()
        assert "Decision: reprice (approve by Dana Approver)" in report and "price for the target: 114.29" in report

        shown = cli("show", run_id)
        assert "Goal review after 2 plan steps" in shown and "Human decision" in shown
        assert "intact" in cli("verify", run_id)
        calls = len(server.requests)
        replayed = cli("replay", run_id)
        assert "identical" in replayed and "0 model calls made" in replayed
        assert len(server.requests) == calls  # the replay asked the model nothing
        out = tmp_path / "run.json"
        cli("export", run_id, "--format", "json", "--out", str(out))
        exported = json.loads(out.read_text())
        assert exported["verify"]["ok"] and exported["run"]["graph"] == "margin-check"
        html = tmp_path / "run.html"
        cli("export", run_id, "--format", "html", "--out", str(html))
        assert "Dana Approver" in html.read_text()

        decide_step = int(re.search(r"│ (\d+)\s+│ decide", shown).group(1))
        forked = cli("fork", run_id, "--at", str(decide_step - 1), "--as", "Lee")
        fork_id = re.search(r"fork (\w+) of run", forked).group(1)
        assert f"chainproof approve {fork_id} --as" in forked  # the approval is asked again
        assert "intact" in cli("verify", fork_id) and "intact" in cli("verify", run_id)
        assert "identical" in cli("replay", fork_id)
        assert f"fork of {run_id}" in cli("runs")


def test_the_readme_example_is_the_package_code():
    text = README.read_text()
    section = text[text.index("## Writing a graph"):]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    assert block == (PACKAGE / "margin_check" / "graph.py").read_text()
    entry = re.search(r"```toml\n(.*?)```", section, flags=re.S).group(1)
    assert 'margin-check = "margin_check.graph:MarginCheck"' in entry
    assert entry.strip() in (PACKAGE / "pyproject.toml").read_text()
