"""Issue 13's first promise, end to end: a history imported with its own timestamps, a question
about something said months ago. Under the memory preset the Workbench answers from it; under
the seed preset the seed's formulas hold and the answer names decay as the cause."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from core.access import SYSTEM
from core.router import build_router
from core.service import Workbench
from core.store import Store

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def history(tmp_path):
    rows = [{"id": "lighthouse", "content": "My grandfather was the lighthouse keeper on Skerry Island; he kept "
                                            "the lamp burning through the great storm of 1953.",
             "created_at": (NOW - timedelta(days=120)).isoformat()}]
    rows += [{"id": f"chat-{i}", "content": f"Today we talked about the weather, lunch and the bus number {i}.",
              "created_at": (NOW - timedelta(days=20 - i)).isoformat()} for i in range(20)]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'memory.db'}")
    yield s
    s.close()


QUESTION = "What did my grandfather do at the lighthouse on Skerry Island?"


def test_a_memory_from_four_months_ago_answers_under_the_memory_preset(store, tmp_path):
    store.import_path("agent", history(tmp_path), SYSTEM, preset="memory")
    wb = Workbench(store, router=build_router("offline"))
    reflection = wb.reflect("agent", QUESTION, SYSTEM)
    answer = "".join(reflection)
    cited = [g["gem_id"] for g in reflection.record.gems if g["included"]]
    # decayed to c ~ 1e-5 over four months, it keeps a floor share of its similarity: reordered
    # behind fresher gems at most, never dropped (the most similar gem is always returned)
    assert "lighthouse" in cited and "lighthouse" in answer
    c = store.load("agent").lattice.coherence[0]
    assert c == pytest.approx(1.0)  # the reflection re-cohered it...
    assert store.gem_times("agent", ["lighthouse"])["observations"].iloc[0] == 1


def test_the_same_history_under_the_seed_preset_forgets_it_and_says_why(store, tmp_path):
    store.import_path("seed", history(tmp_path), SYSTEM, preset="seed")
    lat = store.load("seed").lattice
    assert lat.coherence[0] == 0.0  # exp(-2880 h / 1): the seed's formula, underflowed
    wb = Workbench(store, router=build_router("offline"))
    reflection = wb.reflect("seed", QUESTION, SYSTEM)
    "".join(reflection)
    gems = reflection.record.gems
    assert "lighthouse" not in [g["gem_id"] for g in gems if g["included"]]  # dropped for its age alone
    for g in gems:  # the seed's rule, term by term: r = s * c^alpha
        assert g["score"] == pytest.approx(g["similarity"] * g["coherence"])
    store.advance("seed", 24.0, SYSTEM)  # a day later every gem of the history has decayed
    reflection = wb.reflect("seed", QUESTION, SYSTEM)
    "".join(reflection)
    record = reflection.record
    assert record.nothing_resonated and not record.gems
    assert "decay" in record.answer and "half-life" in record.answer  # the real cause, and what to change
