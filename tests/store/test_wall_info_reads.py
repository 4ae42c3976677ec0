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


# ------------------------------------------- get_gem / list_gems / export: read only, as of now
def _setup_gem_reads(store, coupling: float) -> float:
    """Coupling K (0: closed form per gem; > 0: the phases of the two entangled pairs couple),
    one archived gem, then 30 hours of wall time pass unwritten. Returns the wall anchor."""
    store.update_params("wall", {"K": coupling}, SYSTEM)
    store.archive_gem("wall", "g011", SYSTEM)
    _age_anchor(store, 30.0)
    return _stored(store)[0][2]


def _stored_states(store) -> dict[str, dict[str, float]]:
    """Every gem's stored state (archived ones too), by id."""
    df, _ = store.list_gems("wall", archived=None, page_size=100, now=0.0)  # an instant before the anchor: as stored
    return {r["id"]: {s: r[s] for s in STATES} for r in df.to_dict("records")}


def _catch_up_at(store, monkeypatch, instant: float) -> None:
    """A write's catch-up (the real one, its own transaction) with the clock reading ``instant``."""
    import core.store.state as state_module

    class _Clock:
        @staticmethod
        def time() -> float:
            return instant

    monkeypatch.setattr(state_module, "time", _Clock)
    store._catch_up("wall")
    monkeypatch.undo()


@pytest.mark.parametrize("coupling", [0.0, 0.8])
def test_gem_reads_and_export_of_a_wall_lattice_write_nothing(wall, coupling, tmp_path):
    _setup_gem_reads(wall, coupling)
    before = _stored(wall)
    version = before[0][0]
    first = wall.get_gem("wall", "g003")
    for k in range(4):
        g = wall.get_gem("wall", "g003")
        assert g["state_version"] == first["state_version"] and g["coherence"] <= first["coherence"]
        page, total = wall.list_gems("wall", archived=None, page_size=5, page=1 + k % 3)
        assert total == 12 and len(page) == (5 if k % 3 < 2 else 2)
        wall.list_gems("wall", coherence_min=0.2, coherence_max=0.9)
        assert wall.export("wall", tmp_path / f"out{k}.jsonl", include_archived=True)["gems"] == 12
        assert wall.version("wall") == version
    assert _stored(wall) == before  # lattice row, every gem state row, the log: unchanged


@pytest.mark.parametrize("coupling", [0.0, 0.8])
def test_gem_reads_equal_what_a_catch_up_at_that_instant_stores(wall, coupling, tmp_path, monkeypatch):
    anchor = _setup_gem_reads(wall, coupling)
    stored = _stored_states(wall)
    instant = anchor + 30.0 * 3600.0  # now, by the injected clock
    one = wall.get_gem("wall", "g000", now=instant)
    listed = {r["id"]: r for r in wall.list_gems("wall", archived=None, page_size=100, now=instant)[0]
              .to_dict("records")}
    wall.export("wall", tmp_path / "now.jsonl", include_archived=True, now=instant)
    exported = {r["id"]: r for r in map(__import__("json").loads, (tmp_path / "now.jsonl").read_text().splitlines())}
    assert listed["g000"]["coherence"] < stored["g000"]["coherence"]  # 30 hours of decay, computed
    assert {s: listed["g011"][s] for s in STATES} == stored["g011"]  # the archived gem stays frozen

    _catch_up_at(wall, monkeypatch, instant)
    caught = _stored_states(wall)
    assert wall.load_stored("wall").info.t == pytest.approx(wall.info("wall", now=instant).t, abs=1e-9)
    for gid, values in caught.items():
        for s in STATES:  # bit for bit what the write stored
            assert listed[gid][s] == values[s], (gid, s)
            assert exported[gid][s] == values[s], (gid, s)
    assert {s: one[s] for s in STATES} == caught["g000"]


@pytest.mark.parametrize("encrypted", [False, True])
def test_coherence_filters_of_a_wall_lattice_use_the_present_values(db_url, sample_file, encrypted):
    from core.store import Store
    from core.store.crypto import generate_key

    with Store.open(db_url, keys=[generate_key()] if encrypted else None) as store:
        store.import_path("wall", sample_file, SYSTEM, clock="wall")
        anchor = _setup_gem_reads(store, 0.0)
        instant = anchor + 30.0 * 3600.0
        stored = _stored_states(store)
        present = {r["id"]: r["coherence"] for r in store.list_gems("wall", page_size=100, now=instant)[0]
                   .to_dict("records")}
        threshold = float(np.median(list(present.values())))
        assert sum(stored[g]["coherence"] >= threshold for g in present) > sum(c >= threshold for c in present.values())
        for lo, hi in ((threshold, None), (None, threshold), (threshold * 0.5, threshold)):
            expected = [g for g, c in present.items() if (lo is None or c >= lo) and (hi is None or c <= hi)]
            pages, total = [], None
            for page in (1, 2, 3, 4):
                df, total = store.list_gems("wall", coherence_min=lo, coherence_max=hi, page=page, page_size=2,
                                            now=instant)
                pages += df["id"].tolist()
                assert df["coherence"].tolist() == [present[g] for g in df["id"]]  # returned as of now too
            assert total == len(expected) and pages == expected[:8], (lo, hi)
        # with a text filter (SQL, or after decryption when encrypted) the same present values apply
        df, total = store.list_gems("wall", text="gem", coherence_min=threshold, page_size=100, now=instant)
        assert set(df["id"]) <= {g for g, c in present.items() if c >= threshold} and total == len(df)
        # a manual lattice filters its stored values in SQL, as before
        store.set_clock("wall", "manual", SYSTEM)
        frozen = {r["id"]: r["coherence"] for r in store.list_gems("wall", page_size=100)[0].to_dict("records")}
        df, total = store.list_gems("wall", coherence_min=threshold, page_size=100, now=instant + 1e6)
        assert df["id"].tolist() == [g for g, c in frozen.items() if c >= threshold]


def test_update_gem_with_a_state_version_read_through_get_gem_succeeds(wall):
    _age_anchor(wall, 30.0)
    before = _stored(wall)
    read = wall.get_gem("wall", "g004")
    stored_version = dict(wall.list_gems("wall", now=0.0)[0].set_index("id")["state_version"])["g004"]
    assert read["state_version"] == stored_version and _stored(wall) == before  # the stored one, nothing written
    out = wall.update_gem("wall", "g004", RESEARCHER, expected_state_version=read["state_version"],
                          expected_version=read["version"], coherence=0.5)
    assert out["coherence"] == pytest.approx(0.5, rel=1e-6)  # (read back as of now: a few ms of decay)
    kinds = wall.transactions("wall", since_id=before[2][-1])["kind"].tolist()
    assert kinds == ["evolve", "edit"]  # the write caught up inside its own transaction, after the check
    with pytest.raises(ConflictError):  # the catch-up moved every state version: the old read is stale
        wall.update_gem("wall", "g004", RESEARCHER, expected_state_version=read["state_version"], coherence=0.4)
