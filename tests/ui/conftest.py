"""AppTest fixtures: demo mode, and a private demo-data copy for tests that write."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.ui.helpers import ROOT


@pytest.fixture(autouse=True)
def demo_env(monkeypatch):
    """Demo mode, and no cookie key or credentials from the developer's machine."""
    monkeypatch.setenv("LATTICE_DEMO", "1")
    monkeypatch.delenv("LATTICE_COOKIE_KEY", raising=False)
    monkeypatch.delenv("LATTICE_CREDENTIALS", raising=False)
    monkeypatch.delenv("LATTICE_SOURCE", raising=False)
    monkeypatch.delenv("LATTICE_DEMO_DIR", raising=False)


@pytest.fixture
def private_demo(tmp_path, monkeypatch) -> Path:
    """A private copy of the demo data, so tests that advance the clock share nothing."""
    target = tmp_path / "demo"
    shutil.copytree(ROOT / "data" / "demo", target)
    monkeypatch.setenv("LATTICE_DEMO_DIR", str(target))
    return target




@pytest.fixture(autouse=True)
def fresh_database(tmp_path, monkeypatch) -> str:
    """Every AppTest gets its own SQLite database (the demo is loaded into it on first use)."""
    url = f"sqlite:///{tmp_path / 'workbench.db'}"
    monkeypatch.setenv("LATTICE_DATABASE_URL", url)
    return url


@pytest.fixture
def db(fresh_database):
    """The test's own database with the demo lattice in it."""
    from core.service import ensure_demo
    from core.store import Store
    s = Store.open(fresh_database)
    ensure_demo(s)
    yield s
    s.close()
