"""Shared test configuration.

Tests that need PostgreSQL or a browser skip with a clear reason on a machine
without them, and fail instead in CI (``.ci/run`` sets LATTICE_REQUIRE_POSTGRES=1 and
LATTICE_REQUIRE_BROWSER=1), so CI can never pass by skipping them.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# No test may touch the user's own database (data/lattice.db): unless a test sets its
# own URL, everything in this run shares a throwaway SQLite file.
_SCRATCH = Path(tempfile.mkdtemp(prefix="lattice-tests-"))
os.environ["LATTICE_DATABASE_URL"] = f"sqlite:///{_SCRATCH / 'session.db'}"

ARTIFACTS = ROOT / "test-artifacts"
POSTGRES_URL = os.environ.get("LATTICE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CHROMIUM = os.environ.get("LATTICE_CHROMIUM", "/usr/bin/chromium")


def skip_or_fail(reason: str, required_by: str) -> None:
    """Skip with ``reason``, or fail if the environment variable ``required_by`` is set."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason} (required here because {required_by}=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
