"""Signed tree heads: an attacker with database access truncates, rewrites, forks or edits the log,
and `verify --against` an earlier signed head detects it and names the first record that differs
or is missing; heads with an edited signature or another key are refused; the signing key is
refused when others can read it; rotation keeps old heads verifiable."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from chainproof.agents.models import StaticModels
from chainproof.agents.scripted import ScriptedChatModel
from chainproof.app import Chainproof
from chainproof.checkpoints.audit_hashing import record_hash
from chainproof.checkpoints.audit_tables import GENESIS
from chainproof.checkpoints.log_heads import FileSink, LogKeys, publish_head
from chainproof.checkpoints.merkle_log import check_against, leaf_rows
from chainproof.cli import app as cli
from chainproof.errors import LogInconsistent
from chainproof.graphs.registry import register
from chainproof.settings import Settings
from testkit.toy_graph import ToyGraph

register("toy", ToyGraph)
GOOD = json.dumps({"verdict": "yes", "reason": "the doubled square is 98"})
runner = CliRunner()


def _run(app: Chainproof, x: int) -> str:
    app.models = StaticModels(ScriptedChatModel(replies=["The square.", "The double.", "Large.", GOOD]))
    run = app.start("toy", {"x": x})
    app.decide(run.run_id, action="approve", approver="Dana")
    return run.run_id


def _sql(app: Chainproof, statement: str, **params) -> None:
    with app.audit.engine.begin() as conn:
        conn.execute(text(statement), params)


def _head(tmp_path: Path, name: str = "head.json") -> Path:
    out = tmp_path / name
    result = runner.invoke(cli, ["log", "head", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _against(head: Path, *extra: str):
    return runner.invoke(cli, ["verify", "--against", str(head), *extra])


def _names(result, expected: str, code: int = 1) -> None:
    """``result`` exited with ``code`` and its output (line breaks aside) says ``expected``."""
    assert result.exit_code == code and expected in result.output.replace("\n", " "), result.output


def _rechain(app: Chainproof, run_id: str, seq: int, title: str) -> None:
    """What a careful attacker does: edit a step and recompute every later hash and link of the run
    (the store's leaves are computed from the records' hashes, so they follow)."""
    prev = GENESIS
    for rec in app.audit.records(run_id):
        changes = {"title": title} if rec.seq == seq else {}
        new = rec.replace(**changes, prev_hash=prev)
        prev = record_hash(new)
        sets = ", ".join(f"{k} = :{k}" for k in changes)
        _sql(app, f"UPDATE {rec.__tablename__} SET {sets + ', ' if sets else ''}prev_hash = :p, record_hash = :h "
                  f"WHERE id = :id", p=new.prev_hash, h=prev, id=rec.id, **changes)


@pytest.fixture
def store(home, settings, tmp_path):
    """Three completed runs and a head an auditor kept (head.json) after them."""
    with Chainproof(settings) as app:
        runs = [_run(app, x) for x in (2, 3, 4)]
        head = _head(tmp_path)
        yield app, runs, head


def test_untouched_store_verifies_and_keeps_verifying_as_it_grows(store, tmp_path, settings):
    app, runs, head = store
    ok = _against(head)
    assert ok.exit_code == 0, ok.output
    assert "log consistent" in ok.output
    size = json.loads(head.read_text())["tree_size"]
    assert size == len(leaf_rows(app.audit.engine)) == sum(len(app.audit.records(r)) for r in runs)
    _run(app, 5)  # its pause and its completion each published a head
    grown = _against(head)
    assert grown.exit_code == 0 and f"prefix of the current log of {size + len(app.audit.records(_last(app)))}" \
        in grown.output.replace("\n", " ")
    sink = FileSink(settings.home / "heads" / "heads.jsonl")
    assert len(sink.heads()) == 3 * 2 + 1 + 2 and len(sink.leaves()) == len(leaf_rows(app.audit.engine))


def _last(app: Chainproof) -> str:
    return app.audit.list_runs(limit=1)[0][0].run_id


@pytest.mark.parametrize("k", [1, 3, 6])
def test_truncation_is_named(store, k):
    app, runs, head = store
    last = leaf_rows(app.audit.engine)[-k:]
    for leaf in last:  # records and their leaves, as an attacker who knows the schema would
        _sql(app, f"DELETE FROM {leaf.table} WHERE run_id = :r AND seq = :s", r=leaf.run_id, s=leaf.seq)
        _sql(app, "DELETE FROM merkle_leaves WHERE idx = :i", i=leaf.idx)
    plain = runner.invoke(cli, ["verify", runs[-1]])  # the run's own chain still looks intact, the published head not
    assert plain.exit_code == 1 and "chain intact" in plain.output, plain.output
    out = _against(head)
    assert out.exit_code == 1
    first = last[0]
    assert f"missing: leaf {first.idx}: run {first.run_id}, {first.table} seq {first.seq}: the record is missing" \
        in out.output.replace("\n", " ")


def test_plain_verify_names_truncation_against_the_published_head(store):
    """A completed run cut short with its leaves: its own chain is intact, but plain `verify RUN` and
    `verify --all` check the latest head of the head sink and name the first missing leaf."""
    app, runs, _ = store
    victim = runs[-1]
    cut = [leaf for leaf in leaf_rows(app.audit.engine) if leaf.run_id == victim][-4:]
    for table in ("events", "steps", "approvals", "tool_calls", "model_calls"):
        _sql(app, f"DELETE FROM {table} WHERE run_id = :r AND seq >= :s", r=victim, s=cut[0].seq)
    _sql(app, "DELETE FROM merkle_leaves WHERE idx >= :i", i=cut[0].idx)
    for args in (["verify", victim], ["verify", "--all"]):
        out = runner.invoke(cli, args)
        assert "chain intact" in out.output
        _names(out, "log NOT consistent with the latest head published in")
        _names(out, f"missing: leaf {cut[0].idx}: run {victim}, {cut[0].table} seq {cut[0].seq}: the record is missing")


def test_plain_verify_all_names_a_deleted_run(store):
    """Every record and leaf of every run deleted: `verify --all` no longer says only "No runs yet."."""
    app, runs, _ = store
    for table in ("events", "steps", "approvals", "tool_calls", "model_calls", "merkle_leaves"):
        _sql(app, f"DELETE FROM {table}")
    _sql(app, "DELETE FROM runs")
    out = runner.invoke(cli, ["verify", "--all"])
    first = FileSink(Path(os.environ["CHAINPROOF_HOME"]) / "heads" / "heads.jsonl").leaves()[0]
    _names(out, f"missing: leaf 0: run {first.run_id}, {first.table} seq {first.seq}: the record is missing")


def test_plain_verify_passes_and_says_when_no_head_was_published(store, settings):
    app, runs, _ = store
    ok = runner.invoke(cli, ["verify", "--all"])
    assert ok.exit_code == 0 and "log consistent: the head of" in ok.output.replace("\n", " "), ok.output
    (settings.home / "heads" / "heads.jsonl").unlink()
    alone = runner.invoke(cli, ["verify", runs[0]])
    assert alone.exit_code == 0, alone.output
    assert "no signed tree head published yet" in alone.output.replace("\n", " ")


def test_truncation_without_a_sink_still_detected(store, settings, monkeypatch):
    app, runs, head = store
    last = leaf_rows(app.audit.engine)[-3:]
    for leaf in last:
        _sql(app, f"DELETE FROM {leaf.table} WHERE run_id = :r AND seq = :s", r=leaf.run_id, s=leaf.seq)
        _sql(app, "DELETE FROM merkle_leaves WHERE idx = :i", i=leaf.idx)
    (settings.home / "heads" / "heads.jsonl").unlink()
    out = _against(head)
    assert out.exit_code == 1
    assert f"truncated: the log holds {last[0].idx} leaves, the head covers {last[-1].idx + 1}" \
        in out.output.replace("\n", " ")


def test_whole_chain_rewrite_is_named(store):
    app, runs, head = store
    step = app.audit.records_of(runs[0], "steps")[1]
    _rechain(app, runs[0], step.seq, "a different story")
    plain = runner.invoke(cli, ["verify", runs[0]])  # rehashed: the chain alone cannot tell, the published head can
    assert plain.exit_code == 1 and "chain intact" in plain.output and "the record was changed" in plain.output
    out = _against(head)
    assert out.exit_code == 1
    assert "differs: leaf" in out.output and f"run {runs[0]}, steps seq {step.seq}: the record was changed" \
        in out.output.replace("\n", " ")


def test_changed_middle_record_is_named(store):
    app, runs, head = store
    call = app.audit.records_of(runs[1], "tool_calls")[0]
    _sql(app, "UPDATE tool_calls SET result = :r WHERE id = :id", r='{"x": 3, "squared": 10}', id=call.id)
    _names(_against(head), f"run {runs[1]}, tool_calls seq {call.seq}: the record was changed")


def test_record_deleted_under_its_leaf_is_named_and_never_signed_over(store):
    """The store keeps no leaf hash: a leaf whose record is gone cannot be recomputed, so the signer
    refuses and `verify --against` names the leaf (run and seq from the sink's mirror)."""
    app, runs, head = store
    victim = next(x for x in leaf_rows(app.audit.engine) if x.run_id == runs[1] and x.table == "tool_calls")
    _sql(app, "DELETE FROM tool_calls WHERE id = :id", id=victim.record_id)
    _names(runner.invoke(cli, ["log", "head"]), f"leaf {victim.idx}: tool_calls id {victim.record_id}: "
                                                   f"the record is missing")
    _names(_against(head), f"missing: leaf {victim.idx}: run {runs[1]}, tool_calls seq {victim.seq}: the record is missing")


def test_leaf_pointed_at_another_record_is_named(store):
    app, runs, head = store
    leaves = leaf_rows(app.audit.engine)
    moved = next(x for x in leaves if x.run_id == runs[0] and x.table == "steps")
    other = next(x for x in leaves if x.run_id == runs[2] and x.table == "steps")
    _sql(app, "UPDATE merkle_leaves SET record_id = :o WHERE idx = :i", o=other.record_id, i=moved.idx)
    _names(_against(head), f"differs: leaf {moved.idx}: run {runs[0]}, steps seq {moved.seq}: another record is "
                           f"there now (run {runs[2]}, steps seq {other.seq})")


def test_forked_log_is_refused_by_the_signer_and_named(store, settings, tmp_path):
    app, runs, head = store
    victim = runs[-1]
    first = next(x for x in leaf_rows(app.audit.engine) if x.run_id == victim)
    doomed = [x for x in leaf_rows(app.audit.engine) if x.run_id == victim]
    for table in TABLES:
        _sql(app, f"DELETE FROM {table} WHERE run_id = :r", r=victim)
    for leaf in doomed:
        _sql(app, "DELETE FROM merkle_leaves WHERE idx = :i", i=leaf.idx)
    _sql(app, "DELETE FROM runs WHERE run_id = :r", r=victim)
    with pytest.raises(LogInconsistent, match="no longer extends the head"):
        _run(app, 9)  # another history from the same point: the signer refuses to sign over it
    replacement = _last(app)
    out = _against(head)
    assert out.exit_code == 1
    flat = out.output.replace("\n", " ")
    assert f"differs: leaf {first.idx}: run {victim}" in flat and f"another record is there now (run {replacement}" in flat


def test_head_with_edited_signature_or_fields_is_refused(store, tmp_path):
    _, _, head = store
    data = json.loads(head.read_text())
    sig = bytearray(__import__("base64").b64decode(data["signature"]))
    sig[0] ^= 1
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**data, "signature": __import__("base64").b64encode(bytes(sig)).decode()}))
    out = _against(forged)
    assert out.exit_code == 2 and "signature does not verify" in out.output
    bigger = tmp_path / "bigger.json"
    bigger.write_text(json.dumps({**data, "tree_size": data["tree_size"] + 1}))
    assert _against(bigger).exit_code == 2


def test_a_head_file_without_its_fields_names_them(store, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tree_size": 3, "key_id": None}))
    out = " ".join(_against(bad).output.split())
    assert "no key_id, root_hash, timestamp, signature" in out and "key None" not in out, out
    _, _, head = store
    data = json.loads(head.read_text())
    bad.write_text(json.dumps({**data, "root_hash": "zz"}))
    out = " ".join(_against(bad).output.split())
    assert "root_hash: expected 64 lowercase hex digits, got 'zz'" in out, out


def test_head_signed_by_another_key_is_refused(store, tmp_path):
    app, _, head = store
    other = LogKeys(tmp_path / "mallory" / "key.pem", tmp_path / "mallory" / "public")
    size = json.loads(head.read_text())["tree_size"]
    hashes = [bytes.fromhex(x.leaf_hash) for x in leaf_rows(app.audit.engine)[:size]]
    from chainproof.checkpoints.log_verifier import root_of

    theirs = other.sign(size, root_of(hashes))
    own_id = tmp_path / "theirs.json"
    own_id.write_text(json.dumps(theirs))
    out = _against(own_id)
    assert out.exit_code == 2 and "not one of this log's keys" in out.output
    ours = json.loads(head.read_text())
    spoofed = tmp_path / "spoofed.json"
    spoofed.write_text(json.dumps({**theirs, "key_id": ours["key_id"]}))
    out = _against(spoofed)
    assert out.exit_code == 2 and "signature does not verify" in out.output
    # with the auditor's own copy of the public key, Mallory's keyring entry does not help her
    pem = tmp_path / "log.pem"
    assert runner.invoke(cli, ["log", "key", "--out", str(pem)]).exit_code == 0
    out = _against(own_id, "--public-key", str(pem))
    assert out.exit_code == 2 and "not by the given public key" in out.output


def test_rotation_keeps_old_heads_verifiable(store, tmp_path):
    app, _, head = store
    old = json.loads(head.read_text())["key_id"]
    rotated = runner.invoke(cli, ["log", "rotate-key"])
    assert rotated.exit_code == 0 and old in rotated.output
    newer = json.loads(_head(tmp_path, "newer.json").read_text())
    assert newer["key_id"] != old
    assert _against(head).exit_code == 0 and _against(tmp_path / "newer.json").exit_code == 0


def test_open_signing_key_is_refused(store, settings):
    key = settings.home / "keys" / "log-signing.key"
    assert oct(key.stat().st_mode & 0o777) == oct(0o600)
    os.chmod(key, 0o644)
    out = runner.invoke(cli, ["log", "head"])
    assert out.exit_code == 2 and f"log.key_file {key}: permissions 0644" in out.output.replace("\n", "")


def test_head_out_never_overwrites_a_kept_head(store):
    _, _, head = store
    before = head.read_text()
    out = runner.invoke(cli, ["log", "head", "--out", str(head)])
    assert out.exit_code == 2 and "--force" in out.output and head.read_text() == before


def test_postgres_log_extends_and_names_a_change(pg_url, home, tmp_path):
    settings = Settings(home=home, database_url=pg_url)
    with Chainproof(settings) as app:
        runs = [_run(app, x) for x in (2, 3)]
        keys, sinks = settings.log_keys(), settings.head_sinks()
        head = publish_head(app.audit.engine, keys, sinks)
        _run(app, 4)
        root = bytes.fromhex(head["root_hash"])
        assert check_against(app.audit, head["tree_size"], root).ok
        assert [x.idx for x in leaf_rows(app.audit.engine)] == list(range(len(leaf_rows(app.audit.engine))))
        step = app.audit.records_of(runs[0], "steps")[0]
        _sql(app, "UPDATE steps SET title = 'x' WHERE id = :id", id=step.id)
        result = check_against(app.audit, head["tree_size"], root, [sinks[0].leaves()])
    assert result.difference is not None and result.difference.leaf is not None
    assert (result.difference.kind, result.difference.leaf.seq) == ("differs", step.seq)


VERIFIER = Path(__file__).resolve().parents[1] / "checkpoints" / "log_verifier.py"


def test_standalone_verifier_imports_only_the_standard_library_and_cryptography():
    import ast
    import sys

    tree = ast.parse(VERIFIER.read_text())
    roots = {(n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
             for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
             for a in (n.names if isinstance(n, ast.Import) else [n])}
    assert roots - set(sys.stdlib_module_names) == {"cryptography"}


def test_prove_gives_a_proof_an_auditor_checks_with_the_public_key_alone(store, tmp_path):
    import shutil
    import subprocess
    import sys

    app, runs, head = store
    proof, pem = tmp_path / "proof.json", tmp_path / "log.pem"
    made = runner.invoke(cli, ["prove", runs[1], "--step", "2", "--head", str(head), "--out", str(proof)])
    assert made.exit_code == 0, made.output
    assert runner.invoke(cli, ["log", "key", "--out", str(pem)]).exit_code == 0
    data = json.loads(proof.read_text())
    step_records = [r for r in app.audit.records(runs[1]) if getattr(r, "step_no", None) == 2]
    assert {(r["table"], r["seq"]) for r in data["records"]} == {(r.__tablename__, r.seq) for r in step_records}
    auditor = tmp_path / "auditor"  # a folder with the one file, run in isolated mode
    auditor.mkdir()
    shutil.copy(VERIFIER, auditor / "verify.py")

    def check(path: Path, key: Path = pem) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-I", "verify.py", str(path), "--public-key", str(key)],
                              cwd=auditor, capture_output=True, text=True, timeout=60)

    ok = check(proof)
    assert ok.returncode == 0 and ok.stdout.startswith(f"OK: {len(step_records)} records of run {runs[1]} step 2")
    content = json.loads(data["records"][0]["content"])
    content["title" if "title" in content else "node"] = "edited"
    edited = {**data, "records": [{**data["records"][0], "content": json.dumps(content, sort_keys=True)},
                                  *data["records"][1:]]}
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    bad = check(tmp_path / "edited.json")
    assert bad.returncode == 1 and "does not hash to its record_hash" in bad.stdout
    moved = {**data, "records": [{**r, "leaf_index": r["leaf_index"] + 1} for r in data["records"]]}
    (tmp_path / "moved.json").write_text(json.dumps(moved))
    assert "not included at leaf" in check(tmp_path / "moved.json").stdout
    other = LogKeys(tmp_path / "o" / "k.pem", tmp_path / "o" / "pub")
    other.private_key()
    other_pem = next((tmp_path / "o" / "pub").glob("*.pub"))
    assert "not by the given public key" in check(proof, other_pem).stdout
    for claimed, why in (({"step": 9}, "its content says step_no 2, not the proof's step 9"),
                         ({"step": None}, "not the proof's step None"), ({"run_id": runs[0]}, "names another run")):
        (tmp_path / "claim.json").write_text(json.dumps({**data, **claimed}))  # the file's claim, not the records'
        wrong = check(tmp_path / "claim.json")
        assert wrong.returncode == 1 and wrong.stdout.startswith("FAIL: ") and why in wrong.stdout, wrong.stdout
    # without --head, prove signs and publishes a fresh head
    fresh = runner.invoke(cli, ["prove", runs[0], "--step", "1"])
    assert fresh.exit_code == 0 and json.loads(fresh.output)["head"]["tree_size"] == len(leaf_rows(app.audit.engine))
    assert runner.invoke(cli, ["prove", runs[0], "--step", "99"]).exit_code == 2


def test_prove_refuses_a_record_changed_after_it_was_logged(store):
    app, runs, head = store
    step = next(r for r in app.audit.records_of(runs[0], "steps") if r.step_no == 1)
    _sql(app, "UPDATE steps SET title = 'other' WHERE id = :id", id=step.id)
    out = runner.invoke(cli, ["prove", runs[0], "--step", "1", "--head", str(head)])
    assert out.exit_code == 1 and "does not hash to its record_hash" in out.output.replace("\n", " ")


TABLES = ("steps", "model_calls", "tool_calls", "approvals", "reviews", "events")


def _time_indexes(app: Chainproof) -> set[str]:
    from sqlalchemy import inspect

    found = inspect(app.audit.engine)
    return {i["name"] for t in TABLES for i in found.get_indexes(t) if i["column_names"] == ["created_at"]}


def test_migration_logs_existing_records_in_run_order(store, settings):
    from alembic import command
    from alembic.config import Config

    from chainproof.checkpoints import audit_db

    app, runs, head = store
    before = leaf_rows(app.audit.engine)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(audit_db.__file__).parent / "migrations"))
    with app.audit.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    assert _time_indexes(app) == {f"ix_{t}_created_at" for t in TABLES}  # 0004's indexes are back
    audit_db.upgrade_schema(app.audit.engine)
    assert _time_indexes(app) == {"ix_model_calls_created_at"}  # the one a query uses (spend by month)
    after = leaf_rows(app.audit.engine)
    assert after == before  # these runs ran one after another: run order is append order
    assert _against(head).exit_code == 0


@pytest.mark.parametrize("table, run_id, seq, rec_hash", [
    ("steps", "3f2a-run", 7, "ab" * 32), ("events", 'ré"\\\x00\n\u2028😀', 0, "x"), ("tool_calls", "r", True, "h"),
    ("steps", "r", "3", "h"), ("approvals", None, 1, None), ("reviews", "r", -5, "\x7f\x1b[31m")])
def test_leaf_hashes_computed_by_the_log_are_the_standalone_verifiers(table, run_id, seq, rec_hash):
    from chainproof.checkpoints.log_verifier import leaf_data, leaf_hash
    from chainproof.checkpoints.merkle_log import record_leaf

    assert record_leaf(table, run_id, seq, rec_hash) == leaf_hash(leaf_data(table, run_id, seq, rec_hash)).hex()


def test_a_sink_is_read_from_where_the_last_publication_stopped(store, settings):
    """Publishing reads only what was appended to its sink since this process last read it: the
    leaves are mirrored once each, a line cut short by a crash is skipped, and a sink file replaced
    by another (rotated away) is read again from the start and mirrored again from leaf 0."""
    app, runs, _ = store
    path = settings.home / "heads" / "heads.jsonl"

    def mirrored_rows() -> list[int]:
        return [row[0] for line in path.read_text().splitlines() if line.startswith('{"leaves"')
                for row in json.loads(line)["leaves"]]

    assert sorted(mirrored_rows()) == list(range(len(leaf_rows(app.audit.engine))))
    with open(path, "ab") as handle:
        handle.write(b'{"head": {"tree_size": 99')  # a publisher killed mid-line
    _run(app, 5)
    _run(app, 6)
    assert sorted(mirrored_rows()) == list(range(len(leaf_rows(app.audit.engine))))  # each once
    path.rename(path.with_name("heads-old.jsonl"))
    app.audit.publish_head()
    assert sorted(mirrored_rows()) == list(range(len(leaf_rows(app.audit.engine))))
    assert FileSink(path).heads()[-1]["tree_size"] == len(leaf_rows(app.audit.engine))
