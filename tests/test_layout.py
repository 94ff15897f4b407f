"""Module sizes: every module of the installed ``chainproof`` package stays readable (<= 400 lines)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

MAX_LINES = 400
PACKAGES = ("chainproof", "chainproof.agents", "chainproof.tools", "chainproof.graphs", "chainproof.checkpoints")


def _modules() -> dict[str, Path]:
    """``{"package/relative/path.py": file}`` for every module of the five packages, found where
    they are installed (the card's folders are mapped by setuptools' package-dir)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        for folder in map(Path, spec.submodule_search_locations):
            for file in folder.rglob("*.py"):
                found[f"{package}/{file.relative_to(folder).as_posix()}"] = file
    return found


def test_the_packages_are_found():
    modules = _modules()
    assert "chainproof.agents/local_llm.py" in modules and "chainproof.tools/dossier.py" in modules


def test_no_module_exceeds_400_lines():
    too_long = {}
    for name, file in sorted(_modules().items()):
        lines = len(file.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            too_long[name] = lines
    assert not too_long, f"modules over {MAX_LINES} lines (split them by responsibility): {too_long}"
