"""Reading a wall-clock lattice's description or version writes nothing (SQLite and PostgreSQL).

``Store.info`` computes the lattice's time to now in memory and ``Store.version`` returns the
stored version; writes catch up inside their own transaction after their ``expected_version``
check, so a version a client read through ``info`` is accepted by its next write. The UI's
``StoreSource`` and the Prometheus collector read through ``load_stored`` + an in-memory evolve.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import select

from core.access import SYSTEM, Actor, Role
from core.router import build_router
from core.service import Workbench
from core.service.sources import StoreSource
from core.store.errors import ConflictError
from core.store.tables import GEM_STATES, LATTICES, TRANSACTIONS

RESEARCHER = Actor("ria", Role.RESEARCHER)
STATES = ("energy", "phase", "coherence", "uncertainty")


@pytest.fixture
def wall(store, sample_file):
    """A wall-clock lattice of the 12 sample gems (two entanglements)."""
    store.import_path("wall", sample_file, SYSTEM, clock="wall")
    return store


def _stored(store):
    """Everything a catch-up writes, read straight from the tables: the lattice row's version,
    t and anchor, every gem state row, and the log's ids."""
    with store.engine.connect() as conn:
        row = conn.execute(select(LATTICES.c.version, LATTICES.c.t, LATTICES.c.wall_anchor)
                           .where(LATTICES.c.name == "wall")).one()
        states = conn.execute(select(GEM_STATES).order_by(GEM_STATES.c.gem_pk)).all()
        log = conn.execute(select(TRANSACTIONS.c.id).order_by(TRANSACTIONS.c.id)).scalars().all()
    return tuple(row), [tuple(r) for r in states], list(log)


def _unit(store) -> float:
    return store.load_stored("wall").info.unit_seconds


def test_info_and_version_of_a_wall_lattice_write_nothing(wall):
    before = _stored(wall)
    (version, t0, anchor), _, _ = before
    for k in range(5):
        info = wall.info("wall")
        assert info.version == version and info.t >= t0
        assert wall.version("wall") == version
        assert wall.info("wall", now=anchor + (k + 1) * 3600.0).version == version
    assert _stored(wall) == before  # version, t, anchor, every gem state, the log: unchanged


def test_info_t_follows_the_clock_with_the_epoch_unchanged(wall):
    (_, t0, anchor), _, _ = _stored(wall)
    unit = _unit(wall)
    stored_epoch = wall.load_stored("wall").info.epoch
    for k in (0.0, 1.5, 10.0, 400.0):
        info = wall.info("wall", now=anchor + k * unit)  # an injected clock: k time units after the write
        assert info.t == pytest.approx(t0 + k, abs=1e-9)
        assert info.epoch.timestamp() == pytest.approx(stored_epoch.timestamp(), abs=1e-3)
    assert wall.info("wall", now=anchor - 10 * unit).t == t0  # a clock behind the anchor: as stored
    first = wall.info("wall").t  # the real clock moves it too
    assert first >= t0 and wall.info("wall").t >= first


def test_a_manual_lattice_info_is_as_stored(filled):
    info = filled.info("lab", now=time.time() + 1e6)
    assert info.clock == "manual" and info.t == filled.load_stored("lab").lattice.t


@pytest.mark.parametrize("write", ["update_params", "observe", "advance", "simulate"])
def test_an_expected_version_read_through_info_is_accepted_by_the_next_write(wall, write):
    wall.info("wall")
    version = wall.info("wall").version  # reads in between move nothing
    wall.version("wall")
    log = _stored(wall)[2]
    if write == "update_params":
        old = wall.info("wall").params
        wall.update_params("wall", {"k": old.k + 1}, RESEARCHER, expected_version=version)
    elif write == "observe":
        assert wall.observe("wall", ["g001"], RESEARCHER, expected_version=version)["version"] == version + 1
    elif write == "advance":
        wall.advance("wall", 2.0, RESEARCHER, expected_version=version)
    else:
        wall.simulate("wall", 1.0, RESEARCHER, dt=0.5, expected_version=version)
    assert wall.version("wall") == version + 1  # one write, one version (its catch-up inside it)
    entries = wall.transactions("wall", since_id=log[-1])
    assert entries["kind"].iloc[0] == "evolve" and entries["actor"].iloc[0] == "clock"  # caught up first
    assert set(entries["lattice_version"]) == {version + 1}
    with pytest.raises(ConflictError):  # the version before the write is stale now: nothing written
        wall.advance("wall", 1.0, RESEARCHER, expected_version=version)
    assert wall.version("wall") == version + 1


def test_update_params_runs_the_elapsed_time_under_the_old_parameters(wall):
    old = wall.info("wall").params
    log = _stored(wall)[2]
    wall.update_params("wall", {"lambda_": old.lambda_ * 3}, RESEARCHER)
    catch_up, change = wall.transactions("wall", since_id=log[-1]).to_dict("records")
    assert catch_up["kind"] == "evolve" and catch_up["after"]["params"]["lambda_"] == old.lambda_
    assert change["kind"] == "params" and change["after"]["params"]["lambda_"] == old.lambda_ * 3


def test_set_clock_to_manual_stops_the_lattice_at_now(wall):
    (_, t0, anchor), _, _ = _stored(wall)
    started = time.time()
    info = wall.set_clock("wall", "manual", RESEARCHER)
    finished = time.time()
    unit = _unit(wall)
    assert info.clock == "manual"
    assert t0 + (started - anchor) / unit <= info.t <= t0 + (finished - anchor) / unit
    assert wall.info("wall", now=time.time() + 1e6).t == info.t  # manual now: the clock stays


def test_a_write_after_reads_logs_its_catch_up_and_replays(wall, tmp_path):
    wall.backup("wall", tmp_path / "snap.zip", SYSTEM)
    for _ in range(3):
        wall.info("wall")
        wall.version("wall")
    (version, t0, anchor), _, log = _stored(wall)
    started = time.time()
    out = wall.observe("wall", ["g000", "g002"], RESEARCHER)
    finished = time.time()
    (version2, t1, anchor2), _, _ = _stored(wall)
    assert out["version"] == version2 == version + 1
    unit = _unit(wall)
    assert t0 + (started - anchor) / unit <= t1 <= t0 + (finished - anchor) / unit
    assert started <= anchor2 <= finished
    entries = wall.transactions("wall", since_id=log[-1])
    assert entries["kind"].tolist()[:2] == ["evolve", "observe"]
    assert entries["lattice_t"].iloc[1] == t1  # observed at the caught-up time
    live = wall.load_stored("wall").lattice
    replayed = wall.replay_to("wall", tmp_path / "snap.zip", t1)
    for s in STATES:
        np.testing.assert_array_equal(getattr(replayed, s), getattr(live, s), err_msg=s)


@pytest.mark.parametrize("cached", [False, True])
def test_the_ui_source_reads_a_wall_lattice_at_now_writing_nothing(wall, cached):
    wb = Workbench(wall, router=build_router("offline"))
    source = StoreSource(wall, wb.lattices if cached else None)
    before = _stored(wall)
    (version, t0, _), _, _ = before
    views = [source.load("wall") for _ in range(4)]
    assert _stored(wall) == before
    assert all(v.version == version for v in views)
    ts = [v.lattice.t for v in views]
    assert ts[0] >= t0 and ts == sorted(ts)  # each load evolved to its own now, in memory
    stored = wall.load_stored("wall").lattice
    expected = stored.copy().evolve(views[-1].lattice.t - stored.t)
    np.testing.assert_allclose(views[-1].lattice.coherence, expected.coherence, rtol=1e-9)
    assert views[-1].gems["id"].tolist() == list(stored.ids)


@pytest.mark.parametrize("kept", [False, True])
def test_the_prometheus_collector_reads_a_wall_lattice_at_now_writing_nothing(wall, kept):
    wb = Workbench(wall, router=build_router("offline"))
    if kept:
        wb.lattices.get("wall")  # kept in the cache: the collector reads its private view
    before = _stored(wall)
    (_, t0, _), _, _ = before
    collector = wb.collector()
    figures = [collector.lattices()["wall"] for _ in range(3)]
    list(collector.collect())
    assert _stored(wall) == before
    assert figures[0]["t"] >= t0 and [f["t"] for f in figures] == sorted(f["t"] for f in figures)
    assert figures[-1]["gems"] == 12


def _age_anchor(store, hours: float) -> None:
    """Move the lattice's wall anchor ``hours`` into the past: as if that much wall time had passed
    since its last write (nothing else changes)."""
    with store.engine.begin() as conn:
        conn.execute(LATTICES.update().where(LATTICES.c.name == "wall")
                     .values(wall_anchor=LATTICES.c.wall_anchor - hours * 3600.0))


@pytest.mark.parametrize("write", ["add_gem", "update_gem", "import"])
def test_writes_to_a_wall_lattice_happen_now_not_at_the_stored_time(wall, write, tmp_path):
    _age_anchor(wall, 48.0)
    present = wall.info("wall").t  # computed, not written
    stored_t = wall.load_stored("wall").info.t
    assert present > stored_t + 47.0 * 3600.0 / _unit(wall)
    if write == "add_gem":
        wall.add_gem("wall", SYSTEM, content="a gem added after two days", id="late")
    elif write == "update_gem":
        first = wall.gem_texts("wall")["id"].iloc[0]
        wall.update_gem("wall", first, SYSTEM, title="retitled after two days")
    else:
        path = tmp_path / "late.jsonl"
        path.write_text('{"id": "late", "content": "imported after two days"}\n')
        wall.import_path("wall", path, SYSTEM)
    after = wall.load_stored("wall").info.t
    assert after >= present - 1e-6  # the write caught the clock up first, in its own transaction
    kinds = [k for k in wall.transactions("wall", limit=3)["kind"]]
    assert "evolve" in kinds
    if write != "update_gem":
        created = wall.gem_times("wall").set_index("gem_id").loc["late", "created_t"]
        assert created >= present - 1e-6  # the new gem starts now, not two days ago
