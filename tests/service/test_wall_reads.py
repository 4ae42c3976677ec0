"""Reading a wall-clock lattice through the lattice cache writes nothing (SQLite and PostgreSQL).

A search (the API's hot path) and the ranking a reflection makes before it writes used to
write a catch-up per read (every gem state, a version bump, a reload). Now the cache keeps the
stored state and evolves a copy to now in memory; writes still catch up in their own
transaction, so a reflection observes the gems at the caught-up time and the log replays."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import numpy as np
import pytest
from sqlalchemy import select

from benchmarks.api_search import questions
from benchmarks.store import make_gems_file
from core.access import SYSTEM, Actor, Role
from core.knowledge import get_embedder
from core.knowledge.hybrid import rank_question
from core.router import build_router
from core.service import Workbench, search
from core.service.hybrid_index import store_hybrid_index
from core.store.tables import GEM_STATES, LATTICES, TRANSACTIONS

RESEARCHER = Actor("ria", Role.RESEARCHER)
QUESTIONS = questions(4)
STATES = ("energy", "phase", "coherence", "uncertainty")


@pytest.fixture
def wall(store, tmp_path):
    """A wall-clock memory lattice of 300 generated gems."""
    store.import_path("wall", make_gems_file(tmp_path / "gems.jsonl", 300), SYSTEM, preset="memory", clock="wall")
    return store


def _stored(store):
    """Everything a catch-up would write: the lattice row's clock and version, every gem state
    row, and the log's length (read straight from the tables, not through a catching-up API)."""
    with store.engine.connect() as conn:
        row = conn.execute(select(LATTICES.c.version, LATTICES.c.t, LATTICES.c.wall_anchor)
                           .where(LATTICES.c.name == "wall")).one()
        states = conn.execute(select(GEM_STATES).order_by(GEM_STATES.c.gem_pk)).all()
        log = conn.execute(select(TRANSACTIONS.c.id).order_by(TRANSACTIONS.c.id)).scalars().all()
    return tuple(row), [tuple(r) for r in states], list(log)


def _unit(store) -> float:
    return store.load_stored("wall").info.params.time_unit_seconds


def test_searches_of_a_wall_lattice_write_nothing(wall):
    wb = Workbench(wall)
    before = _stored(wall)
    for q in QUESTIONS * 3:
        out = search(wall, "wall", q, lattices=wb.lattices, embedder=wb.embedder)
        assert out["gems"] and out["clock"] == "wall"
    assert _stored(wall) == before  # version, clock, every gem state row, the log: unchanged
    stats = wb.lattices.stats()
    assert stats["builds"] == 1 and stats["hits"] == len(QUESTIONS) * 3 - 1  # no reload after the first read
    assert stats["state_reloads"] == 0
    # a reflection's ranking (the private view) writes nothing either
    wb.engine("wall", RESEARCHER)[0].rank(QUESTIONS[0])
    assert _stored(wall) == before


def test_the_cached_ranking_equals_the_read_only_store_search(wall):
    wb = Workbench(wall)
    search(wall, "wall", "warm", lattices=wb.lattices, embedder=wb.embedder)
    info = wall.load_stored("wall").info
    for hours in (1.0, 30.0, 400.0):  # explicit instants ahead of now: both paths rank at the same time
        at = repr(info.lattice_time(datetime.now(timezone.utc)) + hours)
        for q in QUESTIONS:
            fast = search(wall, "wall", q, at, lattices=wb.lattices, embedder=wb.embedder)
            plain = search(wall, "wall", q, at)  # python -m core search: the stored state evolved in memory
            assert fast == plain and fast["gems"] and fast["t"] == float(at)
    near = search(wall, "wall", QUESTIONS[0], lattices=wb.lattices, embedder=wb.embedder)
    far = search(wall, "wall", QUESTIONS[0], "1e4", lattices=wb.lattices, embedder=wb.embedder)
    assert [g["coherence"] for g in near["gems"]] != [g["coherence"] for g in far["gems"]]  # decay is computed


def test_a_private_view_is_evolved_to_the_cache_clock_and_the_shared_one_is_as_stored(wall):
    wb = Workbench(wall)
    row, _, _ = _stored(wall)
    _, t0, anchor = row
    wb.lattices.clock = lambda: anchor + 5 * _unit(wall)  # five time units after the last write
    private = wb.lattices.get("wall")
    shared = wb.lattices.read("wall")
    assert shared.lattice.t == t0 and shared.info.t == t0
    assert private.lattice.t == pytest.approx(t0 + 5.0) and private.info.t == private.lattice.t
    assert private.info.epoch == shared.info.epoch  # the same clock, read at another instant
    expected = wall.load_stored("wall").lattice.copy().evolve(private.lattice.t - t0)
    for s in STATES:
        np.testing.assert_array_equal(getattr(private.lattice, s), getattr(expected, s), err_msg=s)
    assert _stored(wall)[0] == row


def test_the_resonance_cache_does_not_serve_a_ranking_of_an_earlier_now(wall):
    wb = Workbench(wall)
    _, t0, anchor = _stored(wall)[0]
    stored = wall.load_stored("wall")
    query = get_embedder(stored.info.embedder).embed([QUESTIONS[1]])[0]
    seen = []
    for hours in (1.0, 1.0, 200.0):
        wb.lattices.clock = lambda h=hours: anchor + h * _unit(wall)
        engine = wb.engine("wall", RESEARCHER)[0]
        got = engine.rank(QUESTIONS[1])
        lat = stored.lattice.copy().evolve(engine.lattice.t - t0)
        want = rank_question(query, QUESTIONS[1], stored.embeddings(), lat, stored.info.params,
                             lambda: store_hybrid_index(wall, "wall", lat.ids))
        assert got.to_frame().equals(want.to_frame())  # the ranking at this engine's now, not a cached one
        seen.append(got.to_frame()["coherence"].tolist())
    assert seen[0] == seen[1] and seen[2] != seen[0]
    assert wb.cache.stats().hits >= 1  # the same now is served from the cache


def test_a_reflection_after_reads_writes_at_the_caught_up_time_and_the_log_replays(wall, tmp_path):
    wall.backup("wall", tmp_path / "snap.zip", SYSTEM)
    wb = Workbench(wall, router=build_router("offline"))
    for q in QUESTIONS:
        search(wall, "wall", q, lattices=wb.lattices, embedder=wb.embedder)
    (version, t0, anchor), _, log = _stored(wall)
    started = time.time()
    reflection = wb.reflect("wall", QUESTIONS[0], RESEARCHER)
    "".join(reflection)
    finished = time.time()
    assert reflection.record.gems
    (version2, t1, anchor2), _, log2 = _stored(wall)
    assert version2 > version and len(log2) > len(log)  # the write moved the clock and the version
    entries = wall.transactions("wall", since_id=log[-1])
    kinds = entries["kind"].tolist()
    assert kinds[0] == "evolve" and "observe" in kinds  # caught up inside the write, then observed
    unit = _unit(wall)
    assert t0 + (started - anchor) / unit <= t1 <= t0 + (finished - anchor) / unit
    assert started <= anchor2 <= finished
    observe = entries[entries["kind"] == "observe"].iloc[0]
    assert observe["lattice_t"] == t1  # the observation at the caught-up time
    live = wall.load_stored("wall").lattice
    replayed = wall.replay_to("wall", tmp_path / "snap.zip", t1)
    for s in STATES:
        np.testing.assert_array_equal(getattr(replayed, s), getattr(live, s), err_msg=s)
    after = wb.lattices.read("wall")  # the cache follows the write (the observed gems' stored values)
    assert after.version == version2 and after.lattice.t == t1
    for s in STATES:
        np.testing.assert_array_equal(getattr(after.lattice, s), getattr(live, s), err_msg=s)
