"""Store fixtures: a real SQLite file in tmp_path and a real PostgreSQL schema per test.

PostgreSQL isolation: each test gets its own schema (``lt_<random>``) selected through
``search_path`` in the URL, so concurrent test runs on the shared ``test`` database never
see each other's tables; the schema is dropped afterwards.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core.access import Actor, Role
from core.store import Store
from tests.conftest import POSTGRES_URL, skip_or_fail

RESEARCHER = Actor("ria", Role.RESEARCHER)
VIEWER = Actor("vic", Role.VIEWER)

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
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lattice.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def store(db_url):
    s = Store.open(db_url)
    yield s
    s.close()


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def sample_rows(n: int = 12) -> list[dict]:
    topics = ["waves", "memory", "clocks"]
    return [{"id": f"g{i:03d}", "title": f"Gem {i}", "content": f"Gem number {i} is about {topics[i % 3]} and decay.",
             "tags": [topics[i % 3], "sample"], "source": "test", "energy": 0.5 + i / 7,
             "phase": (i * 0.37) % 6.2, "coherence": 0.3 + (i % 7) / 10, "uncertainty": (i % 5) / 10}
            for i in range(n)]


@pytest.fixture
def sample_file(tmp_path: Path) -> Path:
    path = write_jsonl(tmp_path / "sample.jsonl", sample_rows())
    (tmp_path / "sample.entanglements.csv").write_text("source,target,weight\ng000,g001,0.5\ng002,g005,1.0\n")
    return path


@pytest.fixture
def filled(store, sample_file):
    from core.access import SYSTEM
    store.import_path("lab", sample_file, SYSTEM)
    return store
