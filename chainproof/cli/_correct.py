"""``correct``: append a correction of a recorded step (``checkpoints/corrections.py``), and how
``show`` lists corrections. Who may: a signed-in account with the ``admin`` or ``approver`` role."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

import chainproof.cli as cli
from chainproof.cli import app, console
from chainproof.errors import NotPermitted


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def print_corrections(out: Console, corrections: list[Any], step_no: int | None = None) -> None:
    """The corrections of a run (or of step ``step_no``): corrected value, original, who, when, why."""
    shown = [c for c in corrections if step_no is None or c.step_no == step_no]
    if not shown:
        return
    table = Table("step", "field", "corrected to", "original", "by", "time (UTC)", "reason",
                  title="corrections (✎: shown corrected; the records keep the original)")
    for c in shown:
        table.add_row(*(Text(cell) for cell in (str(c.step_no), c.field, _short(c.value)[:200], _short(c.original)[:200],
                                                c.by, f"{c.at:%Y-%m-%d %H:%M:%S}", c.reason)))
    out.print(table)


@app.command()
def correct(
    run_id: str,
    step: Annotated[int, typer.Option(help="The step whose record to correct (its final execution).")],
    field: Annotated[str, typer.Option(help="A step column (title, status, output, …) or a path such as output.summary.")],
    value: Annotated[str, typer.Option(help="The corrected value: text for title, status, effort, effort_reason, model; else JSON when it parses, else text.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the correction).")],
    by: Annotated[Optional[str], typer.Option("--as", help="Your account name (must be the signed-in account).")] = None,
) -> None:
    """Append a correction of one field of a recorded step (admin or approver, signed in); the
    original record stays untouched, `show` marks the corrected value, exports carry both."""
    from chainproof.checkpoints.corrections import parse_value
    from chainproof.cli._web import stored_principal

    principal = stored_principal()
    if principal is not None and by is not None and by.strip().casefold() != principal.username.casefold():
        raise NotPermitted(f"--as: signed in as {principal.username!r}, not {by!r}; a correction is recorded under "
                           "the signed-in account")
    with cli._engine() as engine:
        rec = engine.correct(run_id, step=step, field=field, value=parse_value(value, field), reason=reason, principal=principal)
    d = rec.detail
    console.print(f"correction recorded: run {run_id} step {step} {field} = {_short(d['value'])[:120]} (was "
                  f"{_short(d['original'])[:120]}); correction seq {rec.seq}, corrects seq {d['corrects']['seq']} "
                  f"({d['corrects']['record_hash'][:12]}…)", highlight=False, markup=False)
