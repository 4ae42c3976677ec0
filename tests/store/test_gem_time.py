"""Gem time in the store (issue 13): migration 0005 in place, the lattice epoch and its clock
invariant, presets at creation, gem_times, snapshots carrying the times, restore without --force."""
from __future__ import annotations

import json
import math
import time
import zipfile
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import inspect, text

from core.access import SYSTEM
from core.engine import LatticeParams, preset_params
from core.errors import LatticeError, ValidationError
from core.store import Store, db
from core.store.records import epoch_seconds
from tests.store.conftest import sample_rows, write_jsonl

HOUR = 3600.0


def test_upgrade_from_0004_fills_epoch_and_gem_time_in_place(db_url):
    """A 0004 database (a manual and a wall lattice with gems) upgrades in place: epoch of the wall
    lattice = wall_anchor - t * unit, of the manual one its created_at; gem states get created_t
    NULL, observed_at NULL, observations 0; everything else is kept; the downgrade removes them."""
    engine = db.create_db_engine(db_url)
    try:
        db.upgrade(engine, "0004")
        params = json.dumps(LatticeParams().to_dict())
        with engine.begin() as conn:
            for lid, name, clock, t, anchor in ((1, "manual", "manual", 2.5, None), (2, "wall", "wall", 10.0, 1.8e9)):
                conn.execute(text(
                    "INSERT INTO lattices (id, name, params, embedder, dim, time_unit, clock, t, wall_anchor, version, "
                    "created_at, updated_at) VALUES (:i, :n, :p, 'hashing-v1', 256, 'hour', :c, :t, :a, 3, "
                    "'2026-01-02 03:04:05', '2026-01-02 03:04:05')"),
                    {"i": lid, "n": name, "p": params, "c": clock, "t": t, "a": anchor})
                conn.execute(text(
                    "INSERT INTO gems (pk, lattice_id, gem_id, seq, title, content, tags, source, embedding, created_at, "
                    "updated_at, archived, version) VALUES (:i, :i, 'g', 1, 'T', 'content', '[]', '', :e, "
                    "'2026-01-02 03:04:05', '2026-01-02 03:04:05', false, 1)"), {"i": lid, "e": bytes(4 * 256)})
                conn.execute(text("INSERT INTO gem_states (gem_pk, energy, phase, coherence, uncertainty, "
                                  "last_observed, version) VALUES (:i, 2.0, 0.5, 0.75, 0.25, 1.5, 4)"), {"i": lid})
        assert db.upgrade(engine, "0005") == "0005"  # this test is about 0005 (later revisions add tables)
        with engine.connect() as conn:
            epochs = dict(conn.execute(text("SELECT name, epoch FROM lattices")).all())
            states = conn.execute(text("SELECT created_t, observed_at, observations, energy, coherence, "
                                       "last_observed, version FROM gem_states ORDER BY gem_pk")).all()
        created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()
        assert epochs == {"manual": created, "wall": 1.8e9 - 10.0 * HOUR}
        assert [tuple(r) for r in states] == [(None, None, 0, 2.0, 0.75, 1.5, 4)] * 2
        with Store.open(db_url) as store:
            info = store.load_stored("manual").info
            assert info.epoch == datetime.fromtimestamp(created, tz=timezone.utc) and info.preset == "seed"
            times = store.gem_times("manual")
            assert times["gem_id"].tolist() == ["g"] and math.isnan(times["created_t"][0])
            assert times["last_observed_t"].tolist() == [1.5] and times["observations"].tolist() == [0]
            assert times["created_at"][0] == pd.Timestamp("2026-01-02 03:04:05", tz="UTC")
            assert pd.isna(times["observed_at"][0])
            assert store.get_gem("manual", "g")["observations"] == 0
        assert db.downgrade(engine, "0004") == "0004"
        assert "epoch" not in {c["name"] for c in inspect(engine).get_columns("lattices")}
        assert not {"created_t", "observed_at", "observations"} & {c["name"] for c in inspect(engine).get_columns("gem_states")}
        db.upgrade(engine)  # and up again on the same file
    finally:
        engine.dispose()


def test_a_new_lattice_starts_its_time_line_at_creation(store):
    before = time.time()
    info = store.create_lattice("m", SYSTEM)
    assert before - 1 <= info.epoch.timestamp() <= time.time() + 1
    assert info.lattice_time(info.epoch + timedelta(hours=3)) == pytest.approx(3.0)
    assert info.wall_time(2.0) == info.epoch + timedelta(hours=2)
    assert info.lattice_time(info.wall_time(123.25)) == pytest.approx(123.25)
    with pytest.raises(ValidationError, match="time zone"):
        info.lattice_time(datetime(2026, 1, 1))  # naive
    with pytest.raises(ValidationError, match="finite"):
        info.wall_time(math.inf)
    with pytest.raises(ValidationError, match="beyond the calendar"):
        info.wall_time(1e12)
    store.create_lattice("far", SYSTEM, clock="wall")
    store.advance("far", 1e11, SYSTEM, step=1e11)  # lattice time far beyond wall time: no epoch, no crash
    assert store.info("far").epoch is None and store.info("far").to_dict()["epoch"] is None
    assert info.to_dict()["epoch"] == info.epoch.isoformat() and info.to_dict()["preset"] == "seed"


def test_the_epoch_follows_the_clock_without_a_second_column(store):
    """Wall lattice: epoch = wall_anchor - t * unit (derived, so the catch-up keeps it); switching
    clocks keeps lattice time and wall time in step; a manual lattice keeps its stored epoch."""
    store.create_lattice("w", SYSTEM, clock="wall", params={"time_unit": "minute"})
    info = store.info("w")
    assert abs(info.epoch.timestamp() - time.time()) < 5 and info.preset == "memory"
    time.sleep(0.05)
    later = store.info("w")  # caught up: t moved, the epoch did not
    assert later.t > info.t and later.epoch.timestamp() == pytest.approx(info.epoch.timestamp(), abs=1e-3)
    store.advance("w", 100.0, SYSTEM)  # lattice time ran ahead of wall time (100 min): its epoch moves back
    ahead = store.info("w")
    assert ahead.epoch.timestamp() == pytest.approx(info.epoch.timestamp() - 6000.0, abs=0.5)
    manual = store.set_clock("w", "manual", SYSTEM)
    assert manual.epoch.timestamp() == pytest.approx(ahead.epoch.timestamp(), abs=0.5)
    store.advance("w", 50.0, SYSTEM)
    assert store.info("w").epoch == store.info("w").epoch == manual.epoch  # manual: stored, fixed
    wall = store.set_clock("w", "wall", SYSTEM)  # wall again: lattice time t is now
    assert wall.wall_time(wall.t).timestamp() == pytest.approx(time.time(), abs=1.0)


def test_epoch_seconds_of_a_row():
    row = {"clock": "wall", "wall_anchor": 1000.0, "t": 2.0, "time_unit": "minute", "epoch": 5.0}
    assert epoch_seconds(row) == 1000.0 - 120.0
    assert epoch_seconds({**row, "clock": "manual"}) == 5.0
    assert epoch_seconds({"clock": "manual", "t": 0.0, "time_unit": "hour", "epoch": None,
                          "created_at": datetime(1970, 1, 1, 0, 1, tzinfo=timezone.utc)}) == 60.0


def test_presets_at_creation(store):
    assert store.create_lattice("seed", SYSTEM).params == LatticeParams()
    assert store.create_lattice("live", SYSTEM, clock="wall").params == preset_params("memory")
    arch = store.create_lattice("arch", SYSTEM, preset="archive", params={"k": 3})
    assert arch.params == preset_params("archive", LatticeParams(k=3)) and arch.preset == "archive"
    # a partial dict goes over the clock's default preset; a complete LatticeParams is kept
    mine = store.create_lattice("mine", SYSTEM, clock="wall", params={"k": 2, "time_unit": "day"})
    assert mine.params == preset_params("memory", time_unit="day").replace(k=2)
    assert mine.params.half_life() == pytest.approx(7.0)  # days: the preset's week in the lattice's unit
    assert store.create_lattice("kept", SYSTEM, clock="wall", params=LatticeParams(k=4)).params == LatticeParams(k=4)
    with pytest.raises(ValidationError, match="seed, memory, archive") as err:
        store.create_lattice("bad", SYSTEM, preset="fast")
    assert err.value.field == "preset" and not store.exists("bad")


def test_gem_times_reads_the_times_column_wise(store, tmp_path):
    rows = sample_rows(30)
    store.import_path("lab", write_jsonl(tmp_path / "s.jsonl", rows), SYSTEM)
    store.advance("lab", 2.0, SYSTEM)
    store.add_gem("lab", SYSTEM, "a later gem", id="late")
    df = store.gem_times("lab")
    assert list(df.columns) == ["gem_id", "created_t", "created_at", "last_observed_t", "observed_at", "observations"]
    assert df["gem_id"].tolist() == [r["id"] for r in rows] + ["late"]
    assert df["created_t"].tolist() == [0.0] * 30 + [2.0]
    assert isinstance(df["created_at"].dtype, pd.DatetimeTZDtype) and str(df["created_at"].dt.tz) == "UTC"
    assert df["observations"].dtype == np.int64
    assert df["last_observed_t"].isna().all()
    store.archive_gem("lab", "g003", SYSTEM)
    assert "g003" not in store.gem_times("lab")["gem_id"].tolist()
    picked = store.gem_times("lab", ["late", "g003", "g001"])  # any gems, in the order asked
    assert picked["gem_id"].tolist() == ["late", "g003", "g001"] and picked["created_t"].tolist() == [2.0, 0.0, 0.0]
    with pytest.raises(LatticeError, match="'nope'"):
        store.gem_times("lab", ["nope"])
    store.observe("lab", ["g001"], SYSTEM)  # state.py counts direct observations (not partners)
    seen = store.gem_times("lab", ["g001", "g002"])
    assert seen["observations"].tolist() == [1, 0] and seen["last_observed_t"][0] == 2.0
    assert abs((seen["observed_at"][0] - pd.Timestamp.now(tz="UTC")).total_seconds()) < 60
    assert pd.isna(seen["observed_at"][1])


def _timed_lattice(store, tmp_path):
    now = datetime.now(timezone.utc)
    rows = [{"id": f"h{i}", "content": f"history {i}", "created_at": (now - timedelta(days=30 - i)).isoformat()}
            for i in range(5)]
    store.import_path("hist", write_jsonl(tmp_path / "h.jsonl", rows), SYSTEM, preset="memory")
    return store.gem_times("hist")


def test_snapshots_carry_and_restore_the_gem_times(store, tmp_path):
    before = _timed_lattice(store, tmp_path)
    info = store.info("hist")
    snap = store.backup("hist", tmp_path / "snap.zip", SYSTEM)
    with zipfile.ZipFile(snap["path"]) as zf:
        gem = json.loads(zf.read("gems.jsonl").decode().splitlines()[0])
        lattice = json.loads(zf.read("lattice.json"))
    assert {"created_t", "observed_at", "observations"} <= set(gem) and lattice["epoch"] == info.epoch.timestamp()
    store.restore(snap["path"], SYSTEM, name="copy")
    pd.testing.assert_frame_equal(store.gem_times("copy"), before)
    assert store.info("copy").epoch == info.epoch


def test_an_old_snapshot_without_times_restores_them_as_unknown(store, tmp_path):
    _timed_lattice(store, tmp_path)
    snap = store.backup("hist", tmp_path / "snap.zip", SYSTEM)
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(snap["path"]) as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    gems = [json.loads(line) for line in members["gems.jsonl"].decode().splitlines()]
    for g in gems:
        for key in ("created_t", "observed_at", "observations"):
            del g[key]
    lattice = json.loads(members["lattice.json"])
    del lattice["epoch"]
    members["gems.jsonl"] = "".join(json.dumps(g) + "\n" for g in gems).encode()
    members["lattice.json"] = json.dumps(lattice).encode()
    manifest = json.loads(members["manifest.json"])
    import hashlib
    for n in ("gems.jsonl", "lattice.json"):
        manifest["files"][n] = {"sha256": hashlib.sha256(members[n]).hexdigest(), "bytes": len(members[n])}
    members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(old, "w") as zout:
        for n, b in members.items():
            zout.writestr(n, b)
    store.restore(old, SYSTEM, name="old")
    times = store.gem_times("old")
    assert times["created_t"].isna().all() and times["observations"].tolist() == [0] * 5
    assert times["observed_at"].isna().all()
    assert times["created_at"].tolist() == store.gem_times("hist")["created_at"].tolist()  # kept as saved
    assert abs(store.info("old").epoch.timestamp() - time.time()) < 60  # unknown: the restore's instant


def test_restore_never_replaces_a_lattice_without_overwrite(store, tmp_path):
    _timed_lattice(store, tmp_path)
    snap = store.backup("hist", tmp_path / "snap.zip", SYSTEM)
    store.advance("hist", 1.0, SYSTEM)
    version = store.version("hist")
    log = len(store.transactions("hist"))
    with pytest.raises(LatticeError, match="--force") as err:
        store.restore(snap["path"], SYSTEM)
    assert "nothing was written" in str(err.value)
    assert store.version("hist") == version and len(store.transactions("hist")) == log
    out = store.restore(snap["path"], SYSTEM, overwrite=True)
    assert out["t"] == store.info("hist").t != 1.0 + out["t"]
