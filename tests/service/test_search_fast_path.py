"""The cached search path (the REST API's hot path: shared state, titles from the cache, rows
built without pandas) ranks exactly as the plain path (the store read of ``python -m core
search``): the same gems, scores, every term and title, in the same order; it never writes the
cached state; and the titles it shows follow edits and new gems."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.api_search import questions
from benchmarks.store import make_gems_file
from core.access import SYSTEM
from core.knowledge import get_embedder
from core.knowledge.hybrid import rank_question
from core.service import Workbench, search

QUESTIONS = questions(6) + ["jazz", "what did we say on May 2nd?"]


@pytest.fixture
def lattices(store, tmp_path):
    """Four lattices of the same 400 generated gems: the seed's rule, the memory preset (hybrid,
    floor), weighted scoring with interference (beta), and a wall-clock memory lattice."""
    path = make_gems_file(tmp_path / "gems.jsonl", 400)
    store.import_path("seed", path, SYSTEM)
    store.import_path("mem", path, SYSTEM, preset="memory")
    store.import_path("weighted", path, SYSTEM, params={"scoring": "weighted", "beta": 0.5, "min_score": 0.01})
    store.import_path("wall", path, SYSTEM, preset="memory", clock="wall")
    return store


def _both(store, wb, name, q, at=None, k=None):
    fast = search(store, name, q, at, k, lattices=wb.lattices, embedder=wb.embedder)
    plain = search(store, name, q, at, k)
    return fast, plain


def _state(wb, name):
    lat = wb.lattices.read(name).lattice
    return lat.t, lat.coherence.copy(), lat.phase.copy(), lat.energy.copy()


@pytest.mark.parametrize("name", ["seed", "mem", "weighted"])
def test_the_cached_path_ranks_as_the_store_read(lattices, name):
    wb = Workbench(lattices)
    for q in QUESTIONS:
        for at, k in ((None, None), ("7.5", 5), (None, 30)):
            fast, plain = _both(lattices, wb, name, q, at, k)
            assert fast == plain  # gems, every score term, titles and order: bit for bit
            assert all(g["title"] for g in fast["gems"])
            assert fast["gems"] or at is not None  # the seed's decay may empty a later ranking


def test_rows_are_the_rankings_frame_with_titles(lattices):
    """The rows built without pandas carry exactly the columns and values of Ranking.to_frame()."""
    wb = Workbench(lattices)
    for name in ("seed", "mem", "weighted"):
        out = search(lattices, name, QUESTIONS[0], lattices=wb.lattices, embedder=wb.embedder)
        loaded = lattices.load_stored(name)
        query = get_embedder(loaded.info.embedder).embed([QUESTIONS[0]])[0]
        from core.service.hybrid_index import store_hybrid_index
        ranking = rank_question(query, QUESTIONS[0], loaded.embeddings(), loaded.lattice, loaded.info.params,
                                lambda: store_hybrid_index(lattices, name, loaded.lattice.ids))
        records = ranking.to_frame().to_dict(orient="records")
        assert len(records) == len(out["gems"]) > 0
        for rec, row in zip(records, out["gems"]):
            assert list(row) == ["rank", "gem_id", "title"] + [c for c in rec if c not in ("rank", "gem_id")]
            assert {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()} == \
                {k: v for k, v in row.items() if k != "title"}
            assert all(type(v) in (int, float, bool, str) for v in row.values())


def test_a_later_time_is_computed_on_a_copy_never_written(lattices):
    wb = Workbench(lattices)
    search(lattices, "mem", "warm", lattices=wb.lattices, embedder=wb.embedder)
    t, c, phi, e = _state(wb, "mem")
    version = lattices.info("mem").version
    fast, plain = _both(lattices, wb, "mem", QUESTIONS[1], at="48")
    assert fast == plain and fast["t"] == 48.0
    t2, c2, phi2, e2 = _state(wb, "mem")
    assert t2 == t and np.array_equal(c2, c) and np.array_equal(phi2, phi) and np.array_equal(e2, e)
    assert lattices.info("mem").version == version  # nothing written
    near = search(lattices, "mem", QUESTIONS[1], lattices=wb.lattices, embedder=wb.embedder)
    assert [g["coherence"] for g in near["gems"]] != [g["coherence"] for g in fast["gems"]]  # 48 h of decay


def test_a_wall_clock_lattice_ranks_alike_at_a_later_time(lattices):
    wb = Workbench(lattices)
    fast, plain = _both(lattices, wb, "wall", QUESTIONS[2], at="1000")
    assert fast == plain and fast["clock"] == "wall" and fast["gems"]


def test_titles_follow_edits_new_gems_and_observations(lattices):
    wb = Workbench(lattices)
    first = search(lattices, "seed", QUESTIONS[3], lattices=wb.lattices, embedder=wb.embedder)
    assert wb.lattices.stats()["titles_fetched"] == 400  # every title once, on the first search
    top = first["gems"][0]["gem_id"]
    lattices.update_gem("seed", top, SYSTEM, title="A brand new title")
    lattices.observe("seed", [first["gems"][1]["gem_id"]], SYSTEM)
    fast, plain = _both(lattices, wb, "seed", QUESTIONS[3])
    assert fast == plain
    assert {g["gem_id"]: g["title"] for g in fast["gems"]}[top] == "A brand new title"
    lattices.update_gem("seed", top, SYSTEM, title="")  # no title: the content's first line
    content = lattices.gem_texts("seed", [top])["content"][0]
    fast, plain = _both(lattices, wb, "seed", QUESTIONS[3])
    assert fast == plain and {g["gem_id"]: g["title"] for g in fast["gems"]}[top] == content.strip()[:80]
    lattices.add_gem("seed", SYSTEM, QUESTIONS[3].rstrip("?") + " exactly.", id="new-gem", title="Fresh gem")
    fast, plain = _both(lattices, wb, "seed", QUESTIONS[3])
    assert fast == plain and fast["gems"][0]["gem_id"] == "new-gem" and fast["gems"][0]["title"] == "Fresh gem"
    assert wb.lattices.stats()["titles_fetched"] < 420  # later searches read only the changed gems' titles


def test_a_reflections_private_copy_does_not_touch_the_shared_state(lattices):
    wb = Workbench(lattices)
    search(lattices, "seed", "warm", lattices=wb.lattices, embedder=wb.embedder)
    t, c, _, _ = _state(wb, "seed")
    private = wb.lattices.get("seed").lattice
    private.evolve(10.0)
    t2, c2, _, _ = _state(wb, "seed")
    assert t2 == t and np.array_equal(c2, c)
    lattices.observe("seed", [private.ids[0]], SYSTEM)
    shared = wb.lattices.read("seed").lattice  # the observation applied to a copy, swapped in
    assert shared.coherence[0] == 1.0 and np.array_equal(np.delete(shared.coherence, 0), np.delete(c, 0))
