"""Fresh virtual environments for tests, made without downloading anything: the venv gets its pip
from ``ensurepip``, and its dependencies resolve through a ``.pth`` line pointing at a folder of
symlinks to this test venv's site-packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from testkit.environ import without_settings


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process of a fresh venv: no PYTHONPATH (the tests' own points at
    tests/support), no settings of the test session (but the suite's, ``testkit.environ``), pip never
    reaching an index."""
    env = {k: v for k, v in without_settings().items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1", COLUMNS="200", **extra)
    return env


@dataclass(frozen=True)
class Venv:
    """A fresh venv: its ``python``, ``bin`` folder and ``site_packages``; ``before`` holds the
    top-level names of site-packages right after it was made."""

    python: Path
    bin: Path
    site_packages: Path
    before: frozenset[str]

    def run(self, *args: str | Path, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                              env=env if env is not None else clean_env())

    def pip(self, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
        done = self.run(self.python, "-m", "pip", "--disable-pip-version-check", "--no-input", *args, cwd=cwd)
        assert done.returncode == 0, done.stdout + done.stderr
        return done


def make_venv(root: Path, *, with_this_checkout: bool) -> Venv:
    """A venv under ``root`` whose dependencies are this test venv's libraries. With
    ``with_this_checkout`` the editable ``chainproof`` of this checkout is importable in it too (a
    developer's project venv); without, it is left out (so a wheel can be installed instead)."""
    made = subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], capture_output=True, text=True,
                          env=clean_env(), timeout=300)
    assert made.returncode == 0, made.stderr
    bin_dir = root / "venv" / "bin"
    python = bin_dir / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, env=clean_env()).stdout.strip()
    site_packages = Path(purelib)
    before = frozenset(p.name for p in site_packages.iterdir())
    deps = root / "deps"
    deps.mkdir()
    here = Path(sysconfig.get_paths()["purelib"])
    for entry in here.iterdir():
        editable = entry.name.startswith(("chainproof", "__editable__", "_chainproof"))
        if entry.name.endswith(".pth") or (editable and not with_this_checkout):
            continue
        (deps / entry.name).symlink_to(entry)
    # .pth files run in name order: the path line first, then the editable finder's own .pth
    (site_packages / "00_test_dependencies.pth").write_text(f"{deps}\n")
    if with_this_checkout:
        for pth in here.glob("__editable__*chainproof*.pth"):
            shutil.copy2(pth, site_packages / pth.name)
    return Venv(python, bin_dir, site_packages, before | {"00_test_dependencies.pth"})
