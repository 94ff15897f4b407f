"""The ``chainproof`` command line (Typer + Rich).

Commands: ``run GRAPH``, ``submit GRAPH``, ``worker``, ``graphs``, ``approve``, ``reject``, ``edit``, ``resume``, ``pending``,
``runs``, ``watch``, ``show``, ``costs``, ``sla``, ``verify``, ``replay``, ``export``, ``cache clear``, ``db upgrade``,
``dossier build|fetch|import``, ``log head|key|rotate-key``, ``prove``, ``keys create|show``, ``approvers
add|list|remove``, ``policy import|show|set``, ``retention show|set``, ``purge``, ``correct``, ``schedule add|list|remove``,
``alerts``. Modules by area: ``_run`` (run,
submit, graphs), ``_workers`` (worker, schedule, alerts), ``_decide`` (approve, reject, edit, resume), ``_audit`` (runs, pending, show, verify, replay,
export), ``_log`` (the Merkle log: log head/key/rotate-key, prove, verify --against), ``_admin``
(costs, sla, cache, db), ``_keys`` (keys, approvers, policy), ``_retention`` (retention, purge), ``_correct`` (correct), ``_watch`` (watch), ``_dossier`` (dossier), ``_signed_pause`` (the signing steps at a pause); ``_views`` / ``_html`` render data handed to them and never query the store.

Exit codes, one handler for every command (:class:`_Group`):

* a :class:`chainproof.errors.ChainproofError` prints one line on stderr and exits with its
  ``exit_code`` (``UserError`` 2, ``RunError`` 1); a pydantic ``ValidationError`` (bad input or
  settings) prints one line naming each field and exits 2;
* Ctrl-C exits 1 (the run is recorded as failed and ``chainproof resume`` continues it);
* anything else is a bug: ``internal error: TYPE: message`` and exit 1, never passed off as bad
  input. ``CHAINPROOF_DEBUG=1`` re-raises, so the traceback shows.

``verify`` exits 1 when a chain is broken; ``replay`` 1 when it diverges, 3 when zero data
retention left steps it cannot reproduce.

Read-only commands (``runs``, ``show``, ``verify``, ``pending``, ``costs``, ``export``) open only
the settings and the audit store (:func:`read_store`: the schema is checked, not migrated) and
import neither LangGraph nor the model clients; ``bench/cli.py`` measures their start-up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from chainproof._terminal import SafeConsole

if TYPE_CHECKING:  # pragma: no cover - typing only
    from chainproof._store_settings import StoreSettings
    from chainproof.app import Chainproof
    from chainproof.checkpoints.audit_read import AuditReader
    from chainproof.settings import Settings

console = SafeConsole()  # strips control characters from what it prints (chainproof/_terminal.py)
err = SafeConsole(stderr=True)


def _one_line(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):  # pydantic: one line, "field: problem; field: problem"
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or exc.title}: {e['msg']}" for e in exc.errors())
    return str(exc).replace("\n", " ")


def report(exc: BaseException) -> int:
    """Print ``exc`` as the CLI shows it and return the exit code (contract in the module
    docstring). Notes that name a ``chainproof`` command (how to resume) are printed too."""
    from pydantic import ValidationError

    from chainproof.errors import ChainproofError

    if isinstance(exc, ChainproofError):
        code, line = exc.exit_code, f"[bold red]error:[/] {escape(_one_line(exc))}"
    elif isinstance(exc, ValidationError):
        code, line = 2, f"[bold red]error:[/] {escape(_one_line(exc))}"
    elif isinstance(exc, KeyboardInterrupt):
        code, line = 1, "[bold red]error:[/] interrupted"
    else:
        code = 1
        line = (f"[bold red]internal error:[/] {escape(type(exc).__name__)}: {escape(_one_line(exc))} "
                "(set CHAINPROOF_DEBUG=1 for the traceback)")
    err.print(line, highlight=False, soft_wrap=True)
    for note in getattr(exc, "__notes__", []):
        if "chainproof " in note:  # ours (how to resume), not LangGraph's task ids
            err.print(note, highlight=False, markup=False, soft_wrap=True)
    return code


class _Group(TyperGroup):
    """The root command group: every command (sub-groups included) runs inside :meth:`invoke`,
    so this is the one place errors become exit codes (usage errors, ``typer.Exit`` and
    ``typer.Abort`` pass through; Typer 0.29 vendors Click as ``typer._click``)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except (Exception, KeyboardInterrupt) as exc:
            if os.environ.get("CHAINPROOF_DEBUG"):
                raise
            raise typer.Exit(report(exc)) from None


app = typer.Typer(cls=_Group, add_completion=False, no_args_is_help=True,
                  help="Long-chain reasoning runs you can approve, audit and replay.")
dossier_app = typer.Typer(no_args_is_help=True, help="Dossiers: the input folders of due-diligence runs.")
cache_app = typer.Typer(no_args_is_help=True, help="The reasoning cache (model answers reused across runs).")
db_app = typer.Typer(no_args_is_help=True, help="The audit database.")
app.add_typer(dossier_app, name="dossier")
app.add_typer(cache_app, name="cache")
app.add_typer(db_app, name="db")


def _engine() -> Chainproof:
    """The application object for write commands (imports the engine: LangGraph, model clients;
    opening it migrates the audit schema). Tests replace it with a configured one."""
    from chainproof.app import Chainproof

    return Chainproof()


def settings() -> Settings:
    """The settings (environment, ``chainproof.toml``, defaults); a bad value is a pydantic
    ``ValidationError`` naming the setting (exit 2)."""
    from chainproof.settings import Settings
    from chainproof.tools import input_files

    s = Settings()
    input_files.configure(s.input_file_max_mb)
    return s


def store_settings() -> StoreSettings:
    """The settings read-only commands need (home, storage URLs, secret patterns, budgets; sources
    and precedence as :func:`settings`). When nothing else is set (environment, TOML file), the
    models, routing, pricing and policy settings are defaults and need no validating, so they are
    not loaded; otherwise this is :func:`settings`, which reports a bad value anywhere (exit 2)."""
    from chainproof._store_settings import StoreSettings, only_store_settings_given
    from chainproof.tools import input_files

    if not only_store_settings_given():
        return settings()
    s = StoreSettings()
    input_files.configure(s.input_file_max_mb)
    return s


def open_store(s: StoreSettings, *, migrate: bool | str = "check", read_only: bool = False) -> Any:
    """The audit store of ``s`` (an ``AuditStore``; with ``read_only``, an ``AuditReader``, which
    imports no ORM). ``migrate="check"``: the schema is checked to be current, not migrated
    (``SchemaOutdated`` names ``chainproof db upgrade``); ``True``: upgraded. A URL that cannot be
    opened raises ``StorageError`` naming ``database_url``."""
    import sqlite3

    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from chainproof.errors import ChainproofError, StorageError

    url = s.resolved_database_url
    try:
        if read_only:
            from chainproof.checkpoints.audit_read import AuditReader

            return AuditReader(url, migrate=migrate,  # type: ignore[arg-type]
                               require_signature=s.approvals.require_signature, trust=s.operator_trust())
        from chainproof.checkpoints.audit import AuditStore

        return AuditStore(url, migrate=migrate, redactor=s.redactor,  # type: ignore[arg-type]
                          require_signature=s.approvals.require_signature, trust=s.operator_trust())
    except ChainproofError:
        raise
    except (OSError, sqlite3.Error, SQLAlchemyError, ArgumentError, ImportError) as exc:
        orig = getattr(exc, "orig", None)
        cause = f"{type(orig or exc).__name__}: {str(orig or exc).splitlines()[0] if str(orig or exc) else ''}"
        raise StorageError(f"database_url {url!r} (CHAINPROOF_DATABASE_URL): cannot open the audit store: "
                           f"{cause}") from exc


@contextmanager
def read_store(*, missing_is_empty: bool = False) -> Iterator[tuple[StoreSettings, AuditReader]]:
    """``(settings, audit reader)`` for a read-only command: no engine, no ORM, no migrations,
    only the settings that locate the store (:func:`store_settings`). A SQLite store that does not
    exist is never created: ``StoreMissing`` (exit 2), or, with ``missing_is_empty`` (listings:
    ``runs``, ``pending``), a note that nothing is recorded there and the command ends (exit 0)."""
    from chainproof.errors import StoreMissing

    s = store_settings()
    try:
        store: AuditReader = open_store(s, read_only=True)
    except StoreMissing as exc:
        if not missing_is_empty:
            raise
        console.print(f"No runs yet (no audit store at {escape(exc.path)}).", highlight=False)
        raise typer.Exit(0) from None
    try:
        yield s, store
    finally:
        store.close()


def get_run(store: AuditReader, run_id: str, url: str) -> Any:
    """The run header of ``run_id``; ``RunPurged`` saying when and by whom for a purged run,
    ``RunNotFound`` listing recent runs for an unknown one (as ``Chainproof`` does for write commands)."""
    from chainproof.checkpoints.purge_check import tombstone
    from chainproof.errors import RunNotFound, RunPurged

    run = store.get_run(run_id)
    stone = tombstone(store, run_id) if run is None else None
    if stone is not None:
        raise RunPurged(f"run {run_id} was purged on {stone['purged_at']:%Y-%m-%d} by {stone['purged_by']} under the "
                        f"retention ({stone['records']} records deleted, their leaves kept: chainproof verify {run_id})")
    if run is None:
        recent = ", ".join(r.run_id for r, _, _ in store.list_runs(limit=5)) or "none"
        raise RunNotFound(f"no run {run_id!r} in {url}; recent runs: {recent}")
    return run


def write_out(out: Any, text: str, what: str, *, force: bool) -> None:
    """Write ``text`` to the ``--out`` file ``out`` (a ``Path``) and say so on stderr. Raises
    ``InputError`` naming ``--out`` when the file exists and not ``force``, or cannot be written."""
    from chainproof.errors import InputError

    if out.exists() and not force:
        raise InputError(f"--out {out}: the file exists; give --force to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write the {what} ({exc.strerror or exc})") from None
    err.print(f"{what} written to {out}", highlight=False)


# the commands register themselves on `app` when imported
from chainproof.cli import (  # noqa: E402, F401
    _admin,
    _audit,
    _correct,
    _decide,
    _dossier,
    _keys,
    _log,
    _retention,
    _run,
    _trust,
    _watch,
    _web,
    _workers,
)


def main() -> None:  # pragma: no cover - console entry point
    app()


__all__ = ["app", "main", "report"]
