"""Scheduled snapshots on a real store (SQLite files, and PostgreSQL through ``db_url``): slots,
verification after writing, re-verification, rotation, failures, two schedulers on one folder,
the thread, the environment settings and the Prometheus gauges."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from core.access import SYSTEM
from core.errors import LatticeError, ValidationError
from core.monitoring import WorkbenchCollector
from core.service import RetentionPolicy, SnapshotSchedule, SnapshotScheduler, start_scheduled_snapshots
from core.service.snapshot_scheduler import stop_scheduled_snapshots
from core.store import Store
from core.store.snapshot_catalog import DATABASE_TARGET, SnapshotCatalog
from tests.fakes import FakeClock

HOUR = 3600.0
START = datetime(2026, 3, 10, 0, 0, tzinfo=timezone.utc).timestamp()


def small_lattice(store: Store, name: str = "lab", gems: int = 5) -> None:
    store.create_lattice(name, SYSTEM)
    for k in range(gems):
        store.add_gem(name, SYSTEM, f"Gem {k} about waves and memory.", id=f"g{k}")


def schedule(folder: Path, every: float = 6 * HOUR, keep_last: int = 2, keep_daily: int = 0, **kw) -> SnapshotSchedule:
    kw.setdefault("lattices", ("lab",))
    return SnapshotSchedule(folder=folder, every_s=every, policy=RetentionPolicy(keep_last, keep_daily), **kw)


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.parent != folder}


def gauges(scheduler: SnapshotScheduler) -> dict[tuple[str, str], float]:
    out = {}
    for fam in WorkbenchCollector(snapshots=scheduler.status).collect():
        for s in fam.samples:
            out[(s.name, s.labels.get("lattice", ""))] = s.value
    return out


def test_a_schedule_rotates_as_the_policy_says(store, tmp_path):
    """Four days of 6-hourly snapshots, keep the last 2 plus one a day for 3 days."""
    small_lattice(store)
    clock = FakeClock(START)
    sched = SnapshotScheduler(store, schedule(tmp_path, keep_last=2, keep_daily=3), clock=clock)
    taken = []
    for k in range(16):
        if k == 9:
            store.add_gem("lab", SYSTEM, "A later gem.", id="late")
        report = sched.run_once()
        assert [e.status for e in report.taken] == ["ok"], report.taken
        taken += report.taken
        # what the catalog keeps is exactly what is on disk
        kept = SnapshotCatalog(tmp_path).load().entries
        assert {e.file for e in kept} == files(tmp_path)
        clock.advance(6 * HOUR)
    assert [e.slot for e in taken] == list(range(taken[0].slot, taken[0].slot + 16))
    kept = sorted(SnapshotCatalog(tmp_path).load().entries, key=lambda e: e.created_at)
    # the last run is day 4 (03-13) 18:00: the two newest (12:00, 18:00), and the newest of 03-12 and 03-11
    stamps = [datetime.fromtimestamp(e.created_at, tz=timezone.utc).strftime("%m-%d %H") for e in kept]
    assert stamps == ["03-11 18", "03-12 18", "03-13 12", "03-13 18"]
    assert [e.gems for e in kept] == [5, 6, 6, 6]  # the gem added before the 03-12 06:00 run
    # each kept file restores: verified when written, and still what the catalog says
    for e in kept:
        s, lattice = Store.verify_snapshot(tmp_path / e.file)
        assert s.sha256 == e.manifest_sha256 and len(lattice) == e.gems
    # Store.backup recorded each one (and audited it)
    assert (store.snapshots()["action"] == "backup").sum() == 16
    g = gauges(sched)
    assert g[("lattice_snapshot_kept", "lab")] == 4 and g[("lattice_snapshot_corrupt", "lab")] == 0
    assert g[("lattice_snapshot_last_success_timestamp_seconds", "lab")] == kept[-1].created_at
    assert g[("lattice_snapshot_interval_seconds", "lab")] == 6 * HOUR
    assert g[("lattice_snapshot_failures_total", "lab")] == 0


def test_a_slot_is_taken_once(store, tmp_path):
    small_lattice(store)
    clock = FakeClock(START + 10)
    sched = SnapshotScheduler(store, schedule(tmp_path), clock=clock)
    first = sched.run_once()
    clock.advance(60)  # same 6-hour slot
    second = sched.run_once()
    assert len(first.taken) == 1 and second.taken == [] and second.skipped == ["lab"]
    assert len(SnapshotCatalog(tmp_path).load().entries) == 1


def test_a_snapshot_that_changes_on_disk_is_reported_corrupt_not_kept_as_a_copy(sqlite_url, tmp_path, caplog):
    store = Store.open(sqlite_url)
    small_lattice(store)
    clock = FakeClock(START)
    sched = SnapshotScheduler(store, schedule(tmp_path, keep_last=2), clock=clock)
    for _ in range(3):
        sched.run_once()
        clock.advance(6 * HOUR)
    entries = sorted(SnapshotCatalog(tmp_path).load().entries, key=lambda e: e.created_at)
    assert len(entries) == 2  # the first one rotated out
    newest = tmp_path / entries[-1].file
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    newest.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR, logger="core.service.snapshots"):
        report = sched.run_once()
    assert [e.file for e in report.found_corrupt] == [entries[-1].file]
    assert any("is corrupt" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    after = {e.file: e for e in SnapshotCatalog(tmp_path).load().entries}
    bad = after[entries[-1].file]
    assert bad.status == "corrupt" and "changed: sha256" in bad.error and newest.exists()
    # the corrupt one does not count: the two verified ones (the new, and the one before it) are both kept
    good = sorted((e for e in after.values() if e.status == "ok"), key=lambda e: e.created_at)
    assert [e.file for e in good] == [entries[0].file, report.taken[0].file] and report.deleted == []
    g = gauges(sched)
    assert g[("lattice_snapshot_corrupt", "lab")] == 1 and g[("lattice_snapshot_failures_total", "lab")] == 1
    assert g[("lattice_snapshot_last_attempt_failed", "lab")] == 0  # the newest attempt itself is fine
    # a deleted file is reported too; retention never removes the corrupt one
    (tmp_path / entries[0].file).unlink()
    clock.advance(6 * HOUR)
    report = sched.run_once()
    assert [e.file for e in report.found_corrupt] == [entries[0].file]
    assert "disappeared" in report.found_corrupt[0].error and newest.exists()
    store.close()


def test_a_snapshot_that_does_not_verify_after_writing_is_corrupt(store, tmp_path, monkeypatch):
    """A snapshot this server could not restore (over LATTICE_SNAPSHOT_MAX_BYTES) fails its check."""
    small_lattice(store)
    monkeypatch.setenv("LATTICE_SNAPSHOT_MAX_BYTES", "100")
    sched = SnapshotScheduler(store, schedule(tmp_path), clock=FakeClock(START))
    report = sched.run_once()
    e = report.taken[0]
    assert e.status == "corrupt" and "verification after writing failed" in e.error
    assert "LATTICE_SNAPSHOT_MAX_BYTES" in e.error and (tmp_path / e.file).exists()
    g = gauges(sched)
    assert g[("lattice_snapshot_last_attempt_failed", "lab")] == 1 and g[("lattice_snapshot_kept", "lab")] == 0
    assert ("lattice_snapshot_last_success_timestamp_seconds", "lab") not in g


def test_a_failed_backup_is_counted_and_the_next_slot_tries_again(store, tmp_path, caplog):
    small_lattice(store)
    clock = FakeClock(START)
    sched = SnapshotScheduler(store, schedule(tmp_path, lattices=("lab", "gone")), clock=clock)
    with caplog.at_level(logging.ERROR, logger="core.service.snapshots"):
        report = sched.run_once()
    status = {e.target: e for e in report.taken}
    assert status["lab"].status == "ok" and status["gone"].status == "failed"
    assert "gone" in status["gone"].error and status["gone"].file == ""
    assert any("FAILED" in r.getMessage() for r in caplog.records)
    clock.advance(6 * HOUR)
    sched.run_once()
    g = gauges(sched)
    assert g[("lattice_snapshot_failures_total", "gone")] == 2
    assert g[("lattice_snapshot_last_attempt_failed", "gone")] == 1
    assert g[("lattice_snapshot_failures_total", "lab")] == 0


def test_the_whole_database_is_copied_and_checked(sqlite_url, tmp_path):
    import sqlite3
    store = Store.open(sqlite_url)
    small_lattice(store)
    sched = SnapshotScheduler(store, schedule(tmp_path, lattices=(), all_lattices=True, database=True),
                              clock=FakeClock(START))
    report = sched.run_once()
    assert {e.target: e.status for e in report.taken} == {"lab": "ok", DATABASE_TARGET: "ok"}
    db = next(e for e in report.taken if e.target == DATABASE_TARGET)
    with sqlite3.connect(tmp_path / db.file) as conn:
        assert conn.execute("SELECT count(*) FROM gems").fetchone()[0] == 5
    store.close()


def test_database_snapshots_on_postgresql_are_refused_clearly(pg_url, tmp_path):
    store = Store.open(pg_url)
    try:
        with pytest.raises(LatticeError, match="pg_dump"):
            SnapshotScheduler(store, schedule(tmp_path, lattices=(), database=True))
    finally:
        store.close()


def test_two_schedulers_on_one_folder_take_each_slot_once(sqlite_url, tmp_path):
    """Two nodes (two stores on the database, two schedulers on the shared folder) run every
    slot at the same moment: each slot is snapshotted once."""
    stores = [Store.open(sqlite_url) for _ in range(2)]
    small_lattice(stores[0])
    clock = FakeClock(START)
    scheds = [SnapshotScheduler(s, schedule(tmp_path, keep_last=10), clock=clock) for s in stores]
    for _ in range(5):
        barrier = threading.Barrier(2)
        reports = [None, None]

        def run(k):
            barrier.wait()
            reports[k] = scheds[k].run_once()

        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(len(r.taken) for r in reports) == [0, 1]
        assert sorted(len(r.skipped) for r in reports) == [0, 1]
        clock.advance(6 * HOUR)
    slots = [e.slot for e in SnapshotCatalog(tmp_path).load().entries]
    assert len(slots) == 5 and len(set(slots)) == 5
    for s in stores:
        s.close()


def test_the_thread_snapshots_every_interval_and_stops_cleanly(sqlite_url, tmp_path):
    store = Store.open(sqlite_url)
    small_lattice(store)
    sched = SnapshotScheduler(store, schedule(tmp_path, every=0.2, keep_last=3)).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            slots = [e.slot for e in _entries(tmp_path)]
            if len(slots) >= 3 and (tmp_path / "catalog.json").exists() and _taken_total(store) >= 5:
                break
            time.sleep(0.05)
    finally:
        sched.stop(timeout=30)
    assert not sched.running
    entries = _entries(tmp_path)
    assert _taken_total(store) >= 5 and len(entries) == 3  # rotated to the last 3
    assert all(e.status == "ok" for e in entries) and len({e.slot for e in entries}) == 3
    assert {e.file for e in entries} == files(tmp_path)
    store.close()


def _entries(folder: Path):
    try:
        return SnapshotCatalog(folder).load().entries
    except LatticeError:
        return []


def _taken_total(store: Store) -> int:
    snaps = store.snapshots()
    return 0 if snaps.empty else int((snaps["action"] == "backup").sum())


# ---------------------------------------------------------------- settings
def test_settings_from_the_environment(tmp_path):
    assert SnapshotSchedule.from_env({}) is None
    s = SnapshotSchedule.from_env({"LATTICE_SNAPSHOT_EVERY": "1h", "LATTICE_SNAPSHOT_DIR": str(tmp_path),
                                   "LATTICE_SNAPSHOT_KEEP_LAST": "24", "LATTICE_SNAPSHOT_KEEP_DAILY": "30",
                                   "LATTICE_SNAPSHOT_DATABASE": "1"})
    assert (s.every_s, s.folder, s.policy, s.all_lattices, s.database) == (3600.0, tmp_path,
                                                                           RetentionPolicy(24, 30), True, True)
    s = SnapshotSchedule.from_env({"LATTICE_SNAPSHOT_EVERY": "15min", "LATTICE_SNAPSHOT_LATTICES": "a, b"})
    assert s.lattices == ("a", "b") and not s.all_lattices and s.every_s == 900.0
    assert "a, b every 15min" in s.describe()


@pytest.mark.parametrize("env, name", [({"LATTICE_SNAPSHOT_EVERY": "0"}, "LATTICE_SNAPSHOT_EVERY"),
                                       ({"LATTICE_SNAPSHOT_EVERY": "soon"}, "LATTICE_SNAPSHOT_EVERY"),
                                       ({"LATTICE_SNAPSHOT_EVERY": "inf"}, "LATTICE_SNAPSHOT_EVERY"),
                                       ({"LATTICE_SNAPSHOT_EVERY": "1h", "LATTICE_SNAPSHOT_KEEP_LAST": "x"},
                                        "LATTICE_SNAPSHOT_KEEP_LAST"),
                                       ({"LATTICE_SNAPSHOT_EVERY": "1h", "LATTICE_SNAPSHOT_KEEP_LAST": "0"},
                                        "keep_last"),
                                       ({"LATTICE_SNAPSHOT_EVERY": "1h", "LATTICE_SNAPSHOT_DATABASE": "maybe"},
                                        "LATTICE_SNAPSHOT_DATABASE")])
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(ValidationError) as err:
        SnapshotSchedule.from_env(env)
    assert err.value.field == name


def test_the_app_starts_one_schedule_per_process(sqlite_url, tmp_path):
    store = Store.open(sqlite_url)
    small_lattice(store)
    env = {"LATTICE_SNAPSHOT_EVERY": "1h", "LATTICE_SNAPSHOT_DIR": str(tmp_path)}
    try:
        assert start_scheduled_snapshots(store, {}) is None
        first = start_scheduled_snapshots(store, env)
        assert first is start_scheduled_snapshots(store, env) and first.running
        deadline = time.monotonic() + 60
        while not _entries(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [e.target for e in _entries(tmp_path)] == ["lab"]  # the current slot, taken at start
    finally:
        stop_scheduled_snapshots()
    assert not first.running
    assert json.loads((tmp_path / "catalog.json").read_text())["targets"]["lab"]["interval_s"] == 3600.0
    store.close()
