"""Store fixtures: sample gems (the database fixtures ``store``, ``db_url``, ``sqlite_url``
and ``pg_url`` live in tests/conftest.py, shared with the other suites)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.access import Actor, Role

RESEARCHER = Actor("ria", Role.RESEARCHER)
VIEWER = Actor("vic", Role.VIEWER)

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
