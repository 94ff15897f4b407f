"""Answering and continuing runs: ``approve``, ``reject``, ``edit``, ``resume`` (write commands:
they open the engine, which migrates the audit schema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

import chainproof.cli as cli
from chainproof.cli import _views as views
from chainproof.cli import app, console
from chainproof.cli._signed_pause import signed_pause
from chainproof.errors import InputError

if TYPE_CHECKING:  # typing only: the CLI imports the engine when a command runs
    from chainproof.graphs.approval import ApprovalAction

As = Annotated[Optional[str], typer.Option("--as", help="Your name, recorded as the approver (after `chainproof login`: "
                                               "the signed-in account is, and --as may be left out).")]
KeyOpt = Annotated[Optional[Path], typer.Option("--key", help="Your private key (from `chainproof keys create`); the "
                                                "decision is signed with it. Default: ~/.config/chainproof/keys/approver.key "
                                                "when it exists.")]
RequestOpt = Annotated[Optional[str], typer.Option("--request", help="Request id (optional when only one is pending).")]


def finish(result: Any, signing: list[str] | None = None) -> None:
    """Print where a run stands after a call: the pause (how to continue; ``signing``: what is
    still missing to sign, :func:`chainproof.cli._signed_pause.signed_pause`), its completion, or
    that a worker continues it (a submitted run)."""
    if result.status == "queued":
        console.print(f"recorded; run {result.run_id} is queued and a `chainproof worker` continues it "
                      f"(chainproof show {result.run_id})", highlight=False)
    elif result.status == "paused":
        views.print_pause(console, result, signing=signing)
    else:
        views.print_completed(console, result)


def _signer(key: Path | None) -> Any:
    """The signer of ``--key``, else of the default key file when it exists, else None."""
    from chainproof.checkpoints._approver_keys import KeySigner, default_key_path

    if key is not None:
        return KeySigner.from_file(key)
    default = default_key_path()
    return KeySigner.from_file(default, "key") if default.exists() else None


def _decide(run_id: str, action: ApprovalAction, approver: str | None, comment: str | None, request: str | None,
            key: Path | None = None, **edit: Any) -> None:
    from chainproof.cli._web import stored_principal

    signer = _signer(key)  # a bad key file is refused before anything is opened
    principal = stored_principal()  # the token `chainproof login` stored, when there is one
    if principal is None and approver is None and signer is None:
        raise InputError("--as: your name is required (or sign in once with `chainproof login USERNAME`, "
                         "or sign with --key)")
    with cli._engine() as engine, views.LiveSteps(console) as live:
        result = engine.decide(run_id, action=action, approver=approver, principal=principal, comment=comment,
                               request_id=request, on_progress=live.update, signer=signer, **edit)
        signed = signed_pause(engine, result)
    finish(result, signed)


@app.command()
def approve(
    run_id: str,
    approver: As = None,
    comment: Annotated[Optional[str], typer.Option(help="Optional comment, kept in the audit trail.")] = None,
    request: RequestOpt = None,
    key: KeyOpt = None,
) -> None:
    """Approve the pending decision of a paused run and resume it."""
    _decide(run_id, "approve", approver, comment, request, key)


@app.command()
def reject(
    run_id: str,
    comment: Annotated[str, typer.Option(help="Why you reject it (required).")],
    approver: As = None,
    request: RequestOpt = None,
    key: KeyOpt = None,
) -> None:
    """Reject the pending decision of a paused run (with a reason) and resume it."""
    _decide(run_id, "reject", approver, comment, request, key)


def read_json_object(path: Path, option: str) -> dict[str, Any]:
    """The JSON object in ``path``. Raises ``InputError`` naming ``option`` and the file when it
    cannot be read, is not JSON, or is not an object."""
    from chainproof.tools.input_files import read_text

    try:
        data = json.loads(read_text(path, option))
    except json.JSONDecodeError as exc:
        raise InputError(f"{option} {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{option} {path}: expected a JSON object, got {type(data).__name__}")
    return data


@app.command()
def edit(
    run_id: str,
    approver: As = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="FIELD=VALUE (VALUE as JSON if it parses); repeatable.")] = None,
    file: Annotated[Optional[Path], typer.Option(help="A JSON file with the whole replacement proposal.")] = None,
    comment: Annotated[Optional[str], typer.Option(help="Optional comment, kept in the audit trail.")] = None,
    request: RequestOpt = None,
    key: KeyOpt = None,
) -> None:
    """Replace (part of) the pending proposal, checked against its schema, approve it and resume."""
    if not set_ and file is None:
        raise InputError("edit: give --set FIELD=VALUE (repeatable) and/or --file proposal.json")
    edited = read_json_object(file, "--file") if file is not None else None
    _decide(run_id, "edit", approver, comment, request, key, edited=edited, changes=set_ or None)


@app.command()
def resume(
    run_id: str,
    max_steps: Annotated[Optional[int], typer.Option(help="New step budget (plan steps) for a run stopped at its budget.")] = None,
    budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="New cost budget (USD) for a run paused at its cost budget.")] = None,
    by: Annotated[Optional[str], typer.Option("--as", help="Your name, recorded with the extension.")] = None,
) -> None:
    """Continue a run: after its step budget (with a larger --max-steps), at its cost budget (with a
    larger --budget-usd, or after raising the department's budget in the settings), after a failure,
    or to apply a decision that was recorded but never reached the run."""
    with cli._engine() as engine, views.LiveSteps(console) as live:
        result = engine.resume(run_id, max_steps=max_steps, budget_usd=budget_usd, by=by, on_progress=live.update)
        signed = signed_pause(engine, result)
    finish(result, signed)


@app.command()
def fork(
    run_id: str,
    at: Annotated[int, typer.Option("--at", help="Start from the run's checkpoint at or before this step (see chainproof show).")],
    by: Annotated[Optional[str], typer.Option("--as", help="Your name, recorded as who started the fork.")] = None,
) -> None:
    """Time travel: start a new run from RUN_ID's checkpoint at or before step --at. The fork has
    its own run id, is linked to its parent, asks every approval after that point again, and
    leaves the parent's record untouched."""
    with cli._engine() as engine, views.LiveSteps(console) as live:
        result = engine.fork(run_id, at, started_by=by, on_progress=live.update)
        signed = signed_pause(engine, result)
    console.print(f"fork {result.run_id} of run {run_id}", highlight=False)
    finish(result, signed)
