"""A reflection through the Workbench writes its outcome to the store, on SQLite and
PostgreSQL; two nodes (two Workbenches on one store) never serve a stale ranking."""
import numpy as np
import pytest

from core.access import SYSTEM, Actor, PermissionDenied, Role
from core.service import ensure_demo
from core.router import build_router
from core.service import Workbench

RESEARCHER = Actor("ria", Role.RESEARCHER)
VIEWER = Actor("vic", Role.VIEWER)


@pytest.fixture
def demo_store(store):
    ensure_demo(store)
    store.advance("demo", 3.0, SYSTEM)  # let coherence decay so re-coherence is visible
    return store


def offline_workbench(store):
    return Workbench(store, router=build_router("offline"))


def test_reflection_recoheres_entangles_logs_and_records(demo_store):
    before = demo_store.load("demo")
    wb = offline_workbench(demo_store)
    reflection = wb.reflect("demo", "What does the Kuramoto order parameter measure?", RESEARCHER, "s1")
    answer = "".join(reflection)
    record = reflection.record
    used = [g["gem_id"] for g in record.gems if g["included"]]
    assert record.provider == "offline" and answer == record.answer and "[sync-" in answer and len(used) >= 2

    after = demo_store.load("demo")
    assert after.version > before.version
    pos = {gid: i for i, gid in enumerate(after.lattice.ids)}
    for gid in used:  # eta = 1: fully re-cohered, uncertainty cleared
        assert after.lattice.coherence[pos[gid]] == pytest.approx(1.0)
        assert before.lattice.coherence[pos[gid]] < 1.0 and after.lattice.uncertainty[pos[gid]] == 0.0
    assert after.lattice.edge_weight(pos[used[0]], pos[used[1]]) > 0  # co-used: entangled
    kinds = set(demo_store.transactions("demo")["kind"])
    assert {"observe", "entangle"} <= kinds
    stored = demo_store.list_reflections("demo")
    assert len(stored) == 1 and stored.iloc[0]["query"].startswith("What does the Kuramoto")
    assert wb.metrics()["reflection_latency"]["count"] == 1


def test_viewer_cannot_reflect_and_nothing_changes(demo_store):
    version = demo_store.version("demo")
    with pytest.raises(PermissionDenied, match="not allowed"):
        offline_workbench(demo_store).reflect("demo", "What is a phasor?", VIEWER)
    assert demo_store.version("demo") == version and len(demo_store.list_reflections("demo")) == 0


def test_a_write_on_one_node_is_never_served_stale_by_another(demo_store):
    node_a, node_b = offline_workbench(demo_store), offline_workbench(demo_store)
    question = "How does radioactive decay relate to half-life?"
    engine, _ = node_a.engine("demo", RESEARCHER)
    first = engine.rank(question)
    engine, _ = node_a.engine("demo", RESEARCHER)
    assert engine.rank(question).to_frame().equals(first.to_frame())
    assert node_a.cache.stats().hits == 1  # same version: served from node A's cache

    top = first.gems[0].gem_id
    demo_store.update_gem("demo", top, RESEARCHER, coherence=0.0)  # a write through node B's store handle
    engine, _ = node_a.engine("demo", RESEARCHER)
    fresh = engine.rank(question)
    assert node_a.cache.stats().misses == 2  # new version: recomputed, not served stale
    assert top not in [g.gem_id for g in fresh.gems[:1]]
    assert node_b.cache.stats().hits == 0


def test_nothing_resonates_means_no_answer_and_no_state_change(demo_store):
    # the demo keeps its coherence (memory preset): a bar no gem reaches, not decay, leaves nothing
    demo_store.update_params("demo", {"min_score": 0.5}, SYSTEM)
    version = demo_store.version("demo")
    reflection = offline_workbench(demo_store).reflect("demo", "zxqv wvut qqqq", RESEARCHER)
    text = "".join(reflection)
    assert reflection.record.nothing_resonated and "nothing to answer from" in text
    assert demo_store.version("demo") == version


def test_a_reinforcing_reflection_writes_the_grown_energies(demo_store):
    """The demo's memory preset reinforces by use: the used gems' energies grow by
    1 + g (1 - c) (c just before), are stored and logged, and partners keep theirs."""
    before = demo_store.load("demo").lattice
    p = before.params
    assert p.reinforcement > 0
    engine, sink = offline_workbench(demo_store).engine("demo", RESEARCHER)
    reflection = engine.reflect("What does the Kuramoto order parameter measure?", RESEARCHER)
    "".join(reflection)
    used = [g.gem_id for g in reflection.ranking.gems]
    after = demo_store.load("demo").lattice
    idx = np.array([before.ids.index(g) for g in used])
    grown = np.minimum(before.energy[idx] * (1 + p.reinforcement * (1 - before.coherence[idx])), p.energy_cap)
    np.testing.assert_array_equal(after.energy[idx], grown)
    others = np.setdiff1d(np.arange(len(before)), idx)
    np.testing.assert_array_equal(after.energy[others], before.energy[others])
    assert sink.applied["energy_after"] and engine.lattice.energy[idx].tolist() == grown.tolist()
    entry = demo_store.transactions("demo", kinds=["observe"]).iloc[-1]
    logged = dict(zip(entry.gem_ids, entry.after["energy"]))
    assert [logged[g] for g in used] == grown.tolist()
