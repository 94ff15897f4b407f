"""The README flow through the real CLI in separate processes, against a local OpenAI-compatible
server: run → pause with instructions → approve from a new process → report → show."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chainproof.cli import app
from testkit.dd_answers import responder
from testkit.environ import without_settings
from testkit.fake_openai import FakeOpenAI
from testkit.stored import stored_bytes

REPO = Path(__file__).resolve().parents[1]

def _env(home: Path, base_url: str) -> dict[str, str]:
    env = without_settings()
    env.update(CHAINPROOF_HOME=str(home), CHAINPROOF_MODEL__PROVIDER="openai", CHAINPROOF_MODEL__MODEL="fake-model",
               CHAINPROOF_MODEL__BASE_URL=base_url, CHAINPROOF_MODEL__API_KEY="sk-planted-SECRET-0123456789abcdef",
               COLUMNS="200")
    return env


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chainproof.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def test_run_pause_approve_show_across_processes(home):
    with FakeOpenAI(responder) as server:
        env = _env(home, server.base_url)
        started = _cli("run", "due-diligence", "--company", "MMM", "--as-of", "2018-02-08", "--as", "Ana Analyst", env=env)
        assert started.returncode == 0, started.stderr
        assert "Approval needed" in started.stdout
        run_id = re.search(r"chainproof approve (\w+) --as", started.stdout).group(1)
        approved = _cli("approve", run_id, "--as", "Dana Approver", "--comment", "checked", env=env)
        assert approved.returncode == 0, approved.stderr
        assert "completed" in approved.stdout
    report = next((home / "reports").glob(f"{run_id}.md")).read_text()
    assert "**Approved** by **Dana Approver**" in report and "RENEGOTIATE" in report
    assert "3M" in report and "Market risk" in report
    shown = _cli("show", run_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"(\d+) steps", shown.stdout) and int(re.search(r"(\d+) steps", shown.stdout).group(1)) >= 15
    # every decision with approver, time and comment
    assert re.search(r"│ approve\s+│ Dana Approver\s+│ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d │ checked", shown.stdout), shown.stdout
    assert re.search(r"\| 1 \| decision \| approve \| Dana Approver \| \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \| checked \|", report)
    runs = _cli("runs", env=env)
    assert run_id in runs.stdout and "completed" in runs.stdout and "approve by Dana Approver" in runs.stdout
    # the planted API key never reaches the audit database or the checkpointer
    assert b"sk-planted-SECRET" not in stored_bytes(home)
    # the model server is gone: replay serves every answer from the record, step for step
    replayed = _cli("replay", run_id, env=env)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "identical: all" in replayed.stdout and "0 model calls made" in replayed.stdout
    assert _cli("verify", run_id, env=env).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--company", "ZZZZ", "--as-of", "2018-02-08"], "ZZZZ"),
        (["--company", "MMM", "--as-of", "08/02/2018"], "as_of: expected a date as YYYY-MM-DD"),
        (["--company", "MMM", "--as-of", "2021-06-01"], "2021-06-01"),
        (["--company", "MMM", "--as-of", "2018-02-08", "--dossier", "/no/such/folder"], "/no/such/folder"),
    ],
)
def test_bad_run_input_is_one_clear_line(home, args, message):
    result = CliRunner().invoke(app, ["run", "due-diligence", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_approve_unknown_run_is_refused(home):
    result = CliRunner().invoke(app, ["approve", "nope123", "--as", "X"])
    assert result.exit_code == 2 and "no run 'nope123'" in result.output


def test_the_cli_debate_flag_runs_the_cross_examination_and_replays_it(home):
    with FakeOpenAI(responder) as server:
        env = _env(home, server.base_url)
        started = _cli("run", "due-diligence", "--company", "MMM", "--as-of", "2018-02-08", "--debate", env=env)
        assert started.returncode == 0, started.stderr
        run_id = re.search(r"chainproof approve (\w+) --as", started.stdout).group(1)
        assert "Cross-examination: caution, round 2" in started.stdout
    shown = _cli("show", run_id, env=env)
    assert "Cross-examination: verdict" in shown.stdout
    replayed = _cli("replay", run_id, env=env)
    assert replayed.returncode == 0 and "identical: all" in replayed.stdout and "0 model calls made" in replayed.stdout


def _readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    return text[start:text.index("\n## ", start + 1)]


def test_the_readme_model_server_section_runs_the_main_job_to_the_approval_pause(home):
    """"Running on another model server": the main job, configured only by the environment variables
    the section exports (its llama-server lines, the address pointed at the local fake server)."""
    section = _readme_section("Running on another model server")
    exports = [line for line in section.splitlines() if line.startswith("export ")]
    provider = exports[0]
    llama_server = next(line for line in exports if "127.0.0.1:8080/v1" in line)
    command = next(line for line in section.splitlines() if line.startswith("chainproof run "))
    with FakeOpenAI(responder) as server:
        env = {k: v for k, v in without_settings().items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
        env.update(CHAINPROOF_HOME=str(home), COLUMNS="200")
        for line in (provider, llama_server.replace("http://127.0.0.1:8080/v1", server.base_url)):
            env.update(pair.split("=", 1) for pair in line.removeprefix("export ").split())
        assert {k for k in env if k.startswith("CHAINPROOF_MODEL")} == {"CHAINPROOF_MODEL__PROVIDER",
                                                                        "CHAINPROOF_MODEL__BASE_URL",
                                                                        "CHAINPROOF_MODEL__MODEL"}
        started = _cli(*command.split()[1:], env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "Approval needed" in started.stdout and re.search(r"chainproof approve \w+", started.stdout)
        assert server.requests and {r["model"] for r in server.requests} == {"qwen2.5-7b-instruct"}
