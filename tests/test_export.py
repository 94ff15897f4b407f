"""Export: valid JSON holding the whole chain (re-checkable from the file alone) and one
self-contained HTML file that escapes recorded text."""

from __future__ import annotations

import json
from html.parser import HTMLParser

from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_hashing import sha256_hex
from chainproof.checkpoints.audit_schema import GENESIS
from chainproof.cli import app as cli
from chainproof.graphs.registry import register
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})
HOSTILE = "The square is 49. <script>alert('x')</script><img src=http://evil.example/x.png>"


def _run(settings) -> str:
    with Chainproof(settings, models=StaticModels(ScriptedChatModel(replies=[HOSTILE, "b", "c", GOOD]))) as app:
        run = app.start("toy", {"x": 7}, started_by="Ana", department="M&A")
        app.decide(run.run_id, action="approve", approver="Dana <Auditor>", comment="fine")
    return run.run_id


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_json_export_holds_the_chain_and_rechecks_outside_chainproof(settings, tmp_path):
    run_id = _run(settings)
    out = tmp_path / "run.json"
    result = CliRunner().invoke(cli, ["export", run_id, "--format", "json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["run"]["department"] == "M&A" and data["run"]["status"] == "completed"
    assert data["verify"]["ok"] is True and data["totals"]["steps"] == 10 and data["totals"]["model_calls"] == 4
    assert data["totals"]["input_tokens"] > 0 and data["totals"]["cost_usd"] is None
    # the chain re-checks from the exported JSON alone
    prev = GENESIS
    for rec in data["records"]:
        content = {k: v for k, v in rec.items() if k not in ("id", "record_hash")}
        assert rec["prev_hash"] == prev and sha256_hex(content) == rec["record_hash"], rec["seq"]
        prev = rec["record_hash"]
    assert data["verify"]["head_hash"] == prev


def test_html_export_is_one_self_contained_escaped_file(settings, tmp_path):
    run_id = _run(settings)
    out = tmp_path / "run.html"
    result = CliRunner().invoke(cli, ["export", run_id, "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    parser = _Tags()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert tags[0] == "html" and "style" in tags and "script" not in tags and "img" not in tags and "link" not in tags
    assert not any(a.get("src") or a.get("href") for _, a in parser.tags)  # nothing external
    text = "".join(parser.text)
    assert "Chain verified: intact." in text and "<script>alert('x')</script>" in text  # shown as text
    assert "Dana <Auditor>" in text and "Decide and request approval" in text and "approve" in text


def test_export_errors_are_clear(settings):
    run_id = _run(settings)
    bad = CliRunner().invoke(cli, ["export", run_id, "--format", "pdf"])
    assert bad.exit_code == 2 and "format: expected one of json, html, got 'pdf'" in bad.output
    missing = CliRunner().invoke(cli, ["export", "nope"])
    assert missing.exit_code == 2 and "no run 'nope'" in missing.output
