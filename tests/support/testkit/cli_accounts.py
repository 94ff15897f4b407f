"""The CLI as a test drives it: one command's output (whitespace folded, exit code checked), and an
account made and signed in with ``chainproof users add`` + ``chainproof login``."""

from __future__ import annotations

from typer.testing import CliRunner

from chainproof.cli import app as cli

PASSWORD = "correct horse battery staple"
"""The password of every account a test makes (15+ characters, as the account store requires)."""

_runner = CliRunner()


def cli_out(*args: str, code: int = 0, stdin: str | None = None) -> str:
    """Run ``chainproof ARGS`` (a wide terminal); assert its exit code is ``code``; its output with
    whitespace runs folded to one space."""
    result = _runner.invoke(cli, list(args), input=stdin, env={"COLUMNS": "300"})
    out = " ".join(result.output.split())
    assert result.exit_code == code, out
    return out


def sign_in(name: str, role: str) -> None:
    """Make account ``name`` with ``role`` and store its CLI token (``chainproof login``)."""
    cli_out("users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
    cli_out("login", name, "--password-stdin", stdin=PASSWORD + "\n")
