"""Shared test configuration.

Tests that need PostgreSQL or a browser skip with a clear reason on a machine
without them, and fail instead in CI (``.ci/run`` sets LATTICE_REQUIRE_POSTGRES=1,
LATTICE_REQUIRE_BROWSER=1, LATTICE_REQUIRE_REDIS=1, ...), so CI can never pass by skipping them.
"""
from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.fakes import clock, small_world  # noqa: F401  (fixtures shared by several suites)

ROOT = Path(__file__).resolve().parent.parent

# No test may touch the user's own database (data/lattice.db): unless a test sets its
# own URL, everything in this run shares a throwaway SQLite file.
_SCRATCH = Path(tempfile.mkdtemp(prefix="lattice-tests-"))
os.environ["LATTICE_DATABASE_URL"] = f"sqlite:///{_SCRATCH / 'session.db'}"

ARTIFACTS = ROOT / "test-artifacts"
POSTGRES_URL = os.environ.get("LATTICE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CHROMIUM = os.environ.get("LATTICE_CHROMIUM", "/usr/bin/chromium")
REDIS_URL = os.environ.get("LATTICE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def skip_or_fail(reason: str, required_by: str) -> None:
    """Skip with ``reason``, or fail if the environment variable ``required_by`` is set."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason} (required here because {required_by}=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --------------------------------------------------------------------------- databases
# PostgreSQL isolation: each test gets its own schema (``lt_<random>``) selected through
# ``search_path`` in the URL, so concurrent test runs on the shared ``test`` database
# never see each other's tables; the schema is dropped afterwards.
_pg_state: dict[str, object] = {}


def _pg_admin_engine():
    if "engine" not in _pg_state:
        engine = create_engine(POSTGRES_URL, pool_size=1, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            _pg_state["engine"] = engine
        except Exception as exc:  # noqa: BLE001 - any connection failure means "not here"
            _pg_state["error"] = f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}"
            _pg_state["engine"] = None
    if _pg_state["engine"] is None:
        skip_or_fail(str(_pg_state["error"]), "LATTICE_REQUIRE_POSTGRES")
    return _pg_state["engine"]


@pytest.fixture
def pg_url():
    admin = _pg_admin_engine()
    schema = f"lt_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def redis_url():
    """The test Redis server's URL plus a key prefix of this test's own: ``(url, prefix)``.

    Every key the test writes must start with ``prefix`` (they are deleted afterwards), so
    concurrent runs on the shared server never see each other's counters.
    """
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not here"
        skip_or_fail(f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}", "LATTICE_REQUIRE_REDIS")
    prefix = f"lt-test-{uuid.uuid4().hex[:12]}"
    yield REDIS_URL, prefix
    for key in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lattice.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(db_url):
    from core.store import Store

    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture
def cli(db_url, monkeypatch, capsys):
    """``cli("import", ...)`` -> (exit code, stdout, stderr) on this test's database; ``cli.json(...)`` parses --json."""
    from core.cli import main
    monkeypatch.setenv("LATTICE_DATABASE_URL", db_url)

    def run(*args):
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    def data(*args):
        code, out, err = run(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    run.json = data
    return run
