"""Starting runs: ``run GRAPH`` (one command for every registered graph) and ``graphs``.

``chainproof run GRAPH [--input KEY=VALUE ...] [--inputs-file F.json|F.toml] [--FIELD VALUE ...]``:
inputs come from the file, then ``--input``, then extra ``--field-name value`` options (dashes
become underscores, so ``run due-diligence --company MMM --as-of 2018-02-08`` fills ``company``
and ``as_of``; a bare ``--flag`` is ``true``). A value is read as JSON when it parses, else kept
as text, except for a field the input model declares as ``str``, which always gets the text (so
``--company 123`` stays ``"123"``). A field the graph's input model (``spec.inputs_model``) does
not have is refused here; the values are validated by the engine (``spec.validate_inputs``: the
input model, or the graph's own checks when it has none), one line naming each field, exit 2.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

import chainproof.cli as cli
from chainproof.cli import _views as views
from chainproof.cli import app, console
from chainproof.cli._decide import finish
from chainproof.cli._signed_pause import signed_pause
from chainproof.errors import InputError


def _text_fields(model: Any) -> set[str]:
    """Fields of a pydantic model whose annotation is ``str`` or ``str | None``."""
    if model is None:
        return set()
    out = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        if ann is str or (getattr(ann, "__args__", None) and set(ann.__args__) <= {str, type(None)}):
            out.add(name)
    return out


def parse_value(raw: str, *, text: bool = False) -> Any:
    """``raw`` as JSON when it parses (``3``, ``true``, ``["a"]``), else the text itself;
    ``text=True`` always keeps the text."""
    if text:
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _read_inputs_file(path: Path) -> dict[str, Any]:
    from chainproof.tools.input_files import decode, read_bytes

    raw = decode(read_bytes(path, "--inputs-file"), path, "--inputs-file")
    try:
        data = tomllib.loads(raw) if path.suffix == ".toml" else json.loads(raw)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise InputError(f"--inputs-file {path}: not valid {kind} ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"--inputs-file {path}: expected an object of input fields, got {type(data).__name__}")
    return data


def collect_inputs(pairs: list[str], extra: list[str], file: Path | None, model: Any = None) -> dict[str, Any]:
    """The run's inputs from ``file`` (JSON or TOML object), ``pairs`` (``KEY=VALUE``) and
    ``extra`` (``--field-name value`` / ``--field-name=value`` / ``--flag`` tokens), later ones
    winning. Raises ``InputError`` naming the option and the bad item."""
    text = _text_fields(model)
    inputs = _read_inputs_file(file) if file is not None else {}
    for item in pairs:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--input {item!r}: expected KEY=VALUE (VALUE is JSON when it parses)")
        inputs[key.strip()] = parse_value(raw, text=key.strip() in text)
    i = 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--") or len(token) == 2:
            raise InputError(f"run: unexpected argument {token!r}; give inputs as --FIELD VALUE or --input KEY=VALUE")
        name, sep, raw = token[2:].partition("=")
        key = name.replace("-", "_")
        if sep:
            inputs[key] = parse_value(raw, text=key in text)
        elif i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            inputs[key] = parse_value(extra[i + 1], text=key in text)
            i += 1
        else:
            inputs[key] = True
        i += 1
    return inputs


def refuse_unknown(graph: str, model: Any, inputs: dict[str, Any]) -> None:
    """``InputError`` for a field the graph's input model does not have (listing those it has),
    so a misspelt ``--compnay`` is not silently dropped; values are checked by the engine
    (``spec.validate_inputs``, which raises ``InputError`` naming each bad field)."""
    if model is None:
        return
    known = set(model.model_fields) | {f.alias for f in model.model_fields.values() if f.alias}
    unknown = sorted(set(inputs) - known)
    if unknown:
        raise InputError(f"{', '.join(unknown)}: not an input of graph {graph}; its inputs: {', '.join(model.model_fields)}")


def _start_command(queued: bool):
    """The ``run`` command (``queued=False``: runs in this process, showing each step) or the
    ``submit`` command (enqueues the run for ``chainproof worker`` processes): one set of options."""

    def command(
        ctx: typer.Context,
        graph: Annotated[str, typer.Argument(help="The graph to run (see `chainproof graphs`).")],
        input_: Annotated[Optional[list[str]], typer.Option("--input", help="KEY=VALUE (VALUE as JSON if it parses); repeatable.")] = None,
        inputs_file: Annotated[Optional[Path], typer.Option("--inputs-file", help="A JSON or TOML file with the inputs.")] = None,
        started_by: Annotated[Optional[str], typer.Option("--as", help="Your name, recorded as who started the run.")] = None,
        department: Annotated[Optional[str], typer.Option(help="Department or project, for cost reports.")] = None,
        effort: Annotated[Optional[str], typer.Option(help="Force one effort (low|medium|high) for every step.")] = None,
        max_steps: Annotated[Optional[int], typer.Option(help="Step budget in plan steps (default: the graph's).")] = None,
        review_every: Annotated[Optional[int], typer.Option(help="Goal review every N plan steps (0 = never).")] = None,
        budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="Cost budget of this run in USD: alert at 80 %, pause before a call that would exceed it.")] = None,
        no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not use the reasoning cache in this run.")] = False,
        zdr: Annotated[bool, typer.Option("--zdr", help="Zero data retention: keep hashes and short redacted excerpts of prompts and outputs, not the text.")] = False,
        queue: Optional[str] = None,  # annotated below: an option of submit, hidden in run
    ) -> None:
        from chainproof.graphs.registry import add_paths, get_spec

        if queued:  # before the engine opens (and creates) a SQLite store
            from chainproof.workers import require_postgres

            require_postgres(cli.settings(), "submit")
        add_paths(cli.settings().graphs)  # the 'graphs' setting, as the engine sees it
        spec = get_spec(graph)  # GraphNotFound (exit 2) naming the known graphs
        model = getattr(spec, "inputs_model", None)
        extra = list(ctx.args) + (["--queue", queue] if queue is not None and not queued else [])  # run: an input field
        inputs = collect_inputs(input_ or [], extra, inputs_file, model)
        refuse_unknown(graph, model, inputs)
        options: dict[str, Any] = dict(started_by=started_by, department=department, effort=effort, max_steps=max_steps,
                                       review_every=review_every, zdr=zdr or None, budget_usd=budget_usd,
                                       cache=False if no_cache else None)
        with cli._engine() as engine:
            if queued:
                result = engine.submit(graph, inputs, queue=queue, **options)
                console.print(f"run {result.run_id} queued on {queue or engine.settings.workers.queue}; "
                              f"`chainproof worker` processes advance it (chainproof show {result.run_id})", highlight=False)
                return
            with views.LiveSteps(console) as live:
                result = engine.start(graph, inputs, on_progress=live.update, **options)
            signed = signed_pause(engine, result)
        finish(result, signed)

    command.__annotations__["queue"] = Annotated[Optional[str], typer.Option(
        hidden=not queued, help="The DBOS queue (default: workers.queue in the settings).")]
    return command


_EXTRA = {"allow_extra_args": True, "ignore_unknown_options": True}
run = app.command("run", context_settings=_EXTRA, help="""Run a graph; it shows each step live and pauses where a person must approve.

    Inputs: --FIELD VALUE (e.g. `run due-diligence --company MMM --as-of 2018-02-08`),
    --input KEY=VALUE or --inputs-file F.json|F.toml; `chainproof graphs` lists each graph's inputs.""")(_start_command(False))
submit = app.command("submit", context_settings=_EXTRA, help="""Enqueue a run of a graph for `chainproof worker` processes (DBOS queue in PostgreSQL).

    The same inputs and options as `run`; prints the run id at once. Needs CHAINPROOF_DATABASE_URL and CHAINPROOF_CHECKPOINT_URL on PostgreSQL and the workers extra.""")(_start_command(True))


def describe_inputs(model: Any) -> str:
    """One line per field of an input model: ``name: type (required | default VALUE)``."""
    if model is None:
        return "(no input model: a dict checked by the graph)"
    lines = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        kind = getattr(ann, "__name__", None) if not getattr(ann, "__args__", None) else None
        kind = kind or str(ann).replace("typing.", "")
        need = "required" if field.is_required() else f"default {field.get_default(call_default_factory=True)!r}"
        lines.append(f"{name}: {kind} ({need})")
    return "\n".join(lines)


@app.command()
def graphs() -> None:
    """List the graphs Chainproof can run: description, where each came from, its inputs; and
    graphs that failed to load, with their error."""
    table = Table("graph", "description", "source", "inputs", show_lines=True)
    from chainproof.graphs.registry import add_paths, list_graphs

    add_paths(cli.settings().graphs)
    infos = list_graphs()
    for info in infos:
        if info.error:
            table.add_row(*views._cells(info.name, f"cannot be loaded: {info.error}", info.source, "-"))
        else:
            first = (info.description or "").strip().splitlines()
            table.add_row(*views._cells(info.name, first[0] if first else "-", info.source, describe_inputs(info.inputs_model)))
    console.print(table if infos else "No graphs registered.")
