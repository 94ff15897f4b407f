"""The Merkle log's commands: ``log head``, ``log key``, ``log rotate-key``, ``prove``, and the
check behind ``verify --against HEAD.json``.

They read the audit store only (:func:`chainproof.cli.read_store`: no ORM, no engine); a head is
signed with the key of the settings' ``log`` section and published to its head sinks
(``checkpoints/log_heads.py``); the proofs are RFC 9162's (``checkpoints/merkle.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

import chainproof.cli as cli
from chainproof.cli import app, console
from chainproof.errors import InputError

log_app = typer.Typer(no_args_is_help=True, help="The audit store's Merkle log: signed tree heads and keys.")
app.add_typer(log_app, name="log")

PROOF_FORMAT = "chainproof-inclusion-proof/1"


def read_head(path: Path) -> dict[str, Any]:
    """A tree head from a file written by ``log head --out`` (or one ``{"head": …}`` sink line).
    Raises ``InputError`` naming the file when it cannot be read as JSON."""
    from chainproof.tools.input_files import read_text

    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a readable tree head (JSON): {exc}") from None
    return data["head"] if isinstance(data, dict) and isinstance(data.get("head"), dict) else data


def _trusted(settings: Any, head: Any, public_key: Path | None, where: str) -> dict[str, Any]:
    from chainproof.checkpoints.log_heads import checked_head, load_public_key
    from chainproof.checkpoints.log_verifier import HEAD_FIELDS
    from chainproof.errors import HeadRefused

    if not isinstance(head, dict):
        raise HeadRefused(f"{where}: not a tree head (expected a JSON object with {', '.join(HEAD_FIELDS)}, signature)")
    missing = [k for k in (*HEAD_FIELDS, "signature") if head.get(k) in (None, "")]
    if missing:
        raise HeadRefused(f"{where}: not a tree head: no {', '.join(missing)} (expected the fields "
                          f"{', '.join(HEAD_FIELDS)}, signature of a head from `chainproof log head --out`)")
    kid = head.get("key_id")
    key = load_public_key(public_key) if public_key is not None else settings.log_keys().public_key(kid)
    return checked_head(head, key, where)


@log_app.command("head")
def head(
    out: Annotated[Optional[Path], typer.Option(help="Also write the head to this file (keep it outside the database's reach).")] = None,
    force: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Sign the audit log's current tree head (tree size, root hash, time, key id) and publish it
    to the head sinks; print it as JSON."""
    from chainproof.checkpoints.log_heads import publish_head

    with cli.read_store() as (s, store):
        signed = publish_head(store.engine, s.log_keys(), s.head_sinks())
    text = json.dumps(signed, indent=2) + "\n"
    if out is not None:
        cli.write_out(out, text, "tree head", force=force)
    console.print_json(text)


@log_app.command("key")
def key(out: Annotated[Optional[Path], typer.Option(help="Write the public key (PEM) to this file.")] = None) -> None:
    """Print the signing key's id and its public key (PEM), which auditors verify heads and proofs with."""
    from cryptography.hazmat.primitives import serialization

    from chainproof.checkpoints.log_verifier import key_id

    public = cli.store_settings().log_keys().private_key().public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    if out is not None:
        cli.write_out(out, pem, "public key", force=True)
    console.print(f"key id {key_id(public)}", highlight=False)
    console.print(pem, highlight=False, markup=False, end="")


@log_app.command("rotate-key")
def rotate_key() -> None:
    """Replace the signing key by a new one; heads signed with the old key still verify (its public
    key stays in log.public_keys_dir)."""
    old, new = cli.store_settings().log_keys().rotate()
    console.print(f"signing key rotated: {old} -> {new} (the public key of {old} is kept for verification)",
                  highlight=False)


def verify_against(head_file: Path, public_key: Path | None) -> bool:
    """``verify --against``: check the head's signature, then that the current log extends it;
    print the outcome and return whether it holds."""
    from rich.markup import escape

    from chainproof.checkpoints.merkle_log import check_against
    from chainproof.checkpoints.purge_check import store_purge_problems

    with cli.read_store() as (s, store):
        signed = _trusted(s, read_head(head_file), public_key, str(head_file))
        mirrors = [sink.leaves() for sink in s.head_sinks()]
        result = check_against(store, signed["tree_size"], bytes.fromhex(signed["root_hash"]), mirrors)
        purges = store_purge_problems(store)  # a purge keeps leaves, a tombstone and an auth event that must agree
    for problem in purges:
        console.print(f"[bold red]purge record broken[/]: {escape(problem)}", highlight=False, soft_wrap=True)
    if result.ok and purges:
        return False
    return _report(result, signed, str(head_file))


def _report(result: Any, signed: dict[str, Any], where: str) -> bool:
    """Print the outcome of :func:`check_against` for the head ``signed`` (read from ``where``);
    return whether the log extends it (a stray unlogged record after the head is printed, and fails)."""
    from rich.markup import escape

    if result.ok:
        console.print(f"[green]log consistent[/]: the head of {result.head_size} leaves signed by key "
                      f"{signed['key_id']} at {signed['timestamp']} is a prefix of the current log of {result.size} "
                      f"leaves (consistency proof of {len(result.proof)} hashes verified)", highlight=False)
        return True
    diff = result.difference
    assert diff is not None
    console.print(f"[bold red]log NOT consistent with {escape(where)}[/]: {diff.kind}: {escape(diff.detail)}",
                  highlight=False, soft_wrap=True)
    return False


def verify_published(settings: Any, store: Any) -> bool:
    """Plain ``verify`` (a run or ``--all``): check the current log against the latest head of each
    configured head sink, as ``verify --against`` does with a kept head, so truncation and deleted
    runs that a run's own chain cannot show are named (first missing leaf). Prints the outcome (or
    that no head was published) and returns whether every such head holds."""
    from chainproof.checkpoints.merkle_log import check_against
    from chainproof.errors import HeadRefused, SigningKeyError

    sinks = settings.head_sinks()
    mirrors = [sink.leaves() for sink in sinks]
    ok, checked = True, 0
    for sink in sinks:
        heads = sink.heads()
        if not heads:
            continue
        where = f"the latest head published in {sink.path}"
        checked += 1
        try:
            signed = _trusted(settings, heads[-1], None, where)
        except (HeadRefused, SigningKeyError) as exc:
            console.print(f"[bold red]log NOT checked[/]: {exc}", highlight=False, soft_wrap=True, markup=False)
            ok = False
            continue
        result = check_against(store, signed["tree_size"], bytes.fromhex(signed["root_hash"]), mirrors)
        ok = _report(result, signed, where) and ok
    if not checked:
        paths = ", ".join(str(sink.path) for sink in sinks) or "none configured (log.head_sinks)"
        console.print(f"no signed tree head published yet (head sinks: {paths}): truncation of the log or deleted "
                      "runs cannot be detected until one is (`chainproof log head`)", highlight=False, soft_wrap=True)
    return ok


@app.command()
def prove(
    run_id: str,
    step: Annotated[int, typer.Option(help="The step whose records to prove.")],
    head_file: Annotated[Optional[Path], typer.Option("--head", help="Prove under this signed head (default: sign one now).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Write the proof to this file (default: standard output).")] = None,
    force: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """An inclusion proof of one step's records under a signed tree head, which an auditor checks
    with the log's public key alone (checkpoints/log_verifier.py, see the README)."""
    from chainproof.checkpoints.log_heads import publish_head
    from chainproof.checkpoints.log_verifier import proof_problem, root_of
    from chainproof.checkpoints.merkle_log import inclusion, leaf_rows
    from chainproof.checkpoints.purge_check import tombstone
    from chainproof.errors import LogInconsistent, RunPurged

    with cli.read_store() as (s, store):
        stone = tombstone(store, run_id)
        if stone is not None:
            raise RunPurged(f"--step {step}: run {run_id} was purged on {stone['purged_at']:%Y-%m-%d} by "
                            f"{stone['purged_by']}: the content of its {stone['records']} records is gone, so there is "
                            "nothing to prove; their leaf hashes are kept (chainproof verify --against HEAD.json)")
        cli.get_run(store, run_id, s.resolved_database_url)
        keys = s.log_keys()
        if head_file is not None:
            signed = _trusted(s, read_head(head_file), None, str(head_file))
            size = signed["tree_size"]
            stored = [bytes.fromhex(x.leaf_hash) for x in leaf_rows(store.engine)[:size]]
            if len(stored) < size or root_of(stored).hex() != signed["root_hash"]:
                raise LogInconsistent(f"the store's log no longer holds the tree of {head_file}; run "
                                      f"`chainproof verify --against {head_file}`")
        else:
            signed = publish_head(store.engine, keys, s.head_sinks())
        try:
            records = inclusion(store, run_id, step, signed["tree_size"])
        except LookupError as exc:
            raise InputError(f"--step {step}: {exc}") from None
    proof = {"format": PROOF_FORMAT, "head": signed, "run_id": run_id, "step": step, "records": records}
    problem = proof_problem(proof, keys.public_key(signed["key_id"]))
    if problem:  # a record changed after it was logged: its content no longer matches its leaf
        raise LogInconsistent(f"run {run_id} step {step}: {problem}; run `chainproof verify {run_id}`")
    text = json.dumps(proof, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    cli.write_out(out, text, "inclusion proof", force=force)
