"""The public face: `chainproof.__all__` is the contract, every name resolves, importing it is cheap,
and the errors module has the two roots with their exit codes."""

from __future__ import annotations

import subprocess
import sys

import chainproof
from chainproof import errors


def test_every_public_name_resolves_and_all_matches_the_export_table():
    assert chainproof.__all__ == ["__version__", "errors", *chainproof._EXPORTS]
    for name in chainproof.__all__:
        assert getattr(chainproof, name) is not None, name


def test_importing_chainproof_does_not_load_langgraph_or_langchain():
    code = ("import sys, chainproof, chainproof.errors; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('langgraph', 'langchain_core', 'openai')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_error_has_one_of_two_roots_with_its_exit_code():
    classes = [getattr(errors, n) for n in errors.__all__]
    assert {c.__name__ for c in classes if not issubclass(c, (errors.UserError, errors.RunError))} == {"ChainproofError"}
    assert all(c.exit_code == 2 for c in classes if issubclass(c, errors.UserError))
    assert all(c.exit_code == 1 for c in classes if issubclass(c, errors.RunError))
    assert issubclass(errors.GraphNotFound, LookupError) and issubclass(errors.InputError, ValueError)
