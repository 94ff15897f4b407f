"""Shared fixtures: an isolated CHAINPROOF_HOME per test, settings on it, and the shared data path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from chainproof.settings import Settings
from testkit.clock import fresh_registries  # noqa: F401 - a fixture for the tests that use it
from testkit.pg import fresh_database, pg_unreachable

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SUPPORT = Path(__file__).resolve().parent / "support"
# Child processes started by tests import the test helpers (testkit) too, never the repository root.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SUPPORT), os.environ.get("PYTHONPATH")) if p)
# Stores the suite creates take the creation-time option off (`approvals.require_signature`, as an
# initdb option): most tests approve with typed `--as` names. The default (on) and everything that
# must hold under it are tested with the variable removed (`strict_home`) and with policies that set
# require_signature themselves (tests/test_signed_decisions.py, tests/test_signed_default.py).
# Child processes inherit it, as a creator's environment would.
os.environ.setdefault("CHAINPROOF_APPROVALS__REQUIRE_SIGNATURE", "false")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAINPROOF_HOME", str(tmp_path / "home"))
    for var in ("CHAINPROOF_DATABASE_URL", "CHAINPROOF_CHECKPOINT_URL", "CHAINPROOF_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture
def strict_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``home`` where a new store takes the product's default: signed decisions required."""
    monkeypatch.delenv("CHAINPROOF_APPROVALS__REQUIRE_SIGNATURE", raising=False)
    return home


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data bundle not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def fleet_operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One operator key for every ``CHAINPROOF_HOME`` of a test: the homes of a fleet sharing one
    PostgreSQL store (and their child processes, which inherit ``CHAINPROOF_TRUST__*``) trust the
    same key and write grants with it, as an operator would deploy it. Returns its folder."""
    folder = tmp_path / "operator"
    monkeypatch.setenv("CHAINPROOF_TRUST__KEY_FILE", str(folder / "operator.key"))
    monkeypatch.setenv("CHAINPROOF_TRUST__PUBLIC_KEYS_DIR", str(folder / "public"))
    return folder


@pytest.fixture
def pg_url(fleet_operator: Path) -> Iterator[str]:
    """A fresh PostgreSQL database for one test (created, then dropped), shared by the test's homes
    with one operator key (``fleet_operator``). Skips with the reason when no server is reachable."""
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_settings(request: pytest.FixtureRequest, home: Path):
    """Settings on SQLite (files under ``home``) and on PostgreSQL (a fresh database, dropped after)."""
    if request.param == "sqlite":
        yield Settings(home=home)
        return
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    with fresh_database() as url:
        yield Settings(home=home, database_url=url, checkpoint_url=url)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a long test (minutes); runs only with -m slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests run only when ``-m`` names them (``pytest -m slow``)."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow (minutes): run with pytest -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
