"""The built wheel in a fresh virtual environment: only ``chainproof`` lands at the top level of
site-packages, and it keeps working next to a package that owns a top-level ``agents`` and in a
working directory with its own ``tools/`` folder (the clashes of the old four top-level packages).

Nothing is downloaded: the wheel is built without build isolation, the fresh venv gets its pip from
``ensurepip``, and its dependencies resolve through a ``.pth`` line pointing at a copy of this
test venv's site-packages made of symlinks, with this checkout's editable ``chainproof`` left out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit.dd_answers import responder
from testkit.fake_openai import FakeOpenAI
from testkit.venvs import Venv, clean_env, make_venv

REPO = Path(__file__).resolve().parents[1]
# What the wheel is built from (pyproject's package-dir folders plus the metadata files).
SOURCES = ("pyproject.toml", "README.md", "chainproof", "agents", "tools", "graphs", "checkpoints")


@dataclass(frozen=True)
class FreshVenv:
    wheel: Path
    venv: Venv

    def __getattr__(self, name: str):  # python, bin, site_packages, before, run, pip
        return getattr(self.venv, name)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshVenv]:
    root = tmp_path_factory.mktemp("packaging")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:  # a copy, so the build leaves no build/ or egg-info in the checkout
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    dist = root / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(dist), str(src)],
                           capture_output=True, text=True, cwd=root, env=clean_env(), timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("chainproof-*.whl")

    fresh = FreshVenv(wheel, make_venv(root, with_this_checkout=False))
    fresh.pip("install", "--no-deps", "--no-index", wheel, cwd=root)
    yield fresh


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A user's project folder with a ``tools`` package of its own."""
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "__init__.py").write_text("MINE = 'the user project tools'\n")
    return tmp_path


def _top_level(names: set[str]) -> set[str]:
    return {n.split("/", 1)[0] for n in names}


def test_the_wheel_installs_only_chainproof_at_the_top_level(venv: FreshVenv):
    with zipfile.ZipFile(venv.wheel) as whl:
        files = set(whl.namelist())
    (dist_info,) = _top_level(files) - {"chainproof"}
    assert re.fullmatch(r"chainproof-[\w.]+\.dist-info", dist_info), _top_level(files)
    # every folder of the card is inside the one namespace, with its data files
    for sub in ("agents", "tools", "graphs", "checkpoints"):
        assert f"chainproof/{sub}/__init__.py" in files
    assert any(f.startswith("chainproof/tools/dossiers/") for f in files)
    assert any(f.startswith("chainproof/checkpoints/migrations/versions/") for f in files)
    # the web pages' templates and static files (package data of chainproof.web)
    assert {"chainproof/web/templates/base.html", "chainproof/web/templates/trace.html",
            "chainproof/web/static/live.js", "chainproof/web/static/app.css"} <= files

    added = {p.name for p in venv.site_packages.iterdir()} - venv.before - {"__pycache__"}
    assert added == {"chainproof", dist_info}


def test_chainproof_works_next_to_another_agents_package_and_a_local_tools_folder(venv: FreshVenv, workdir: Path,
                                                                                   tmp_path_factory: pytest.TempPathFactory):
    other = tmp_path_factory.mktemp("other-agents")
    (other / "agents").mkdir()
    (other / "agents" / "__init__.py").write_text("OWNER = 'other-agents'\n")
    (other / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "other-agents"\nversion = "1.0"\n\n[tool.setuptools]\npackages = ["agents"]\n')
    venv.pip("install", "--no-deps", "--no-index", "--no-build-isolation", other, cwd=other)
    try:
        owner = venv.run(venv.python, "-c", "import agents, tools; print(agents.OWNER, '|', tools.MINE)", cwd=workdir)
        assert owner.stdout.strip() == "other-agents | the user project tools", owner.stderr

        home = workdir / "home"
        runs = venv.run(venv.bin / "chainproof", "runs", cwd=workdir, env=clean_env(CHAINPROOF_HOME=str(home)))
        assert runs.returncode == 0, runs.stdout + runs.stderr

        # `python -m` puts the working directory first on sys.path, next to its own tools/ package.
        with FakeOpenAI(responder) as server:
            env = clean_env(CHAINPROOF_HOME=str(home), CHAINPROOF_MODEL__PROVIDER="openai",
                             CHAINPROOF_MODEL__MODEL="fake-model", CHAINPROOF_MODEL__BASE_URL=server.base_url,
                             CHAINPROOF_MODEL__API_KEY="sk-test-0123456789")
            started = venv.run(venv.python, "-m", "chainproof.cli", "run", "due-diligence", "--company", "MMM",
                               "--as-of", "2018-02-08", "--as", "Ana Analyst", cwd=workdir, env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        approve = re.search(r"chainproof approve (\w+) --as", started.stdout)
        assert approve, started.stdout
        run_id = approve.group(1)
    finally:
        venv.pip("uninstall", "-y", "other-agents", cwd=workdir)

    # Uninstalling the other package leaves chainproof whole, and the paused run is still there.
    gone = venv.run(venv.python, "-c", "import agents", cwd=workdir)
    assert gone.returncode != 0 and "No module named 'agents'" in gone.stderr
    runs = venv.run(venv.bin / "chainproof", "runs", cwd=workdir, env=clean_env(CHAINPROOF_HOME=str(home)))
    assert runs.returncode == 0, runs.stdout + runs.stderr
    assert run_id in runs.stdout and "paused" in runs.stdout
    located = venv.run(venv.python, "-c", "import chainproof.agents as a; print(a.__file__)", cwd=workdir)
    assert located.stdout.strip().startswith(str(venv.site_packages / "chainproof" / "agents")), located.stderr
