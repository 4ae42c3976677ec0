"""Scheduled snapshots, store side: the retention policy (a pure function) and the catalog
(catalog.json, its lock, the figures of the gauges)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from core.errors import LatticeError, ValidationError
from core.store.retention import RetentionPolicy, plan_retention
from core.store.snapshot_catalog import (DATABASE_TARGET, CatalogData, CatalogEntry, LockTimeout, SnapshotCatalog,
                                         TargetState, target_folder)

HOUR = 3600.0
NOW = datetime(2026, 3, 10, 18, 30, tzinfo=timezone.utc).timestamp()


@dataclass
class Snap:
    created_at: float
    status: str = "ok"


def hourly(hours: int, end: float = NOW) -> list[Snap]:
    """One snapshot an hour, the newest at ``end``, oldest first."""
    return [Snap(end - k * HOUR) for k in reversed(range(hours))]


def day(s: Snap) -> str:
    return datetime.fromtimestamp(s.created_at, tz=timezone.utc).date().isoformat()


def test_keep_last_plus_one_a_day():
    snaps = hourly(24 * 4)  # four days, 18:30 back to 19:30 three days before
    plan = plan_retention(snaps, RetentionPolicy(keep_last=3, keep_daily=3), NOW)
    kept = [s for s, _ in plan.keep]
    # the three newest (today), plus the newest of yesterday and of the day before
    assert kept[:3] == snaps[-3:][::-1]
    assert [day(s) for s in kept[3:]] == ["2026-03-09", "2026-03-08"]
    assert all(datetime.fromtimestamp(s.created_at, tz=timezone.utc).hour == 23 for s in kept[3:])
    assert len(plan.delete) == len(snaps) - 5 and not plan.untouched
    reasons = dict((id(s), r) for s, r in plan.keep)
    assert reasons[id(snaps[-1])] == ["last", "daily 2026-03-10"]


def test_no_daily_copies_keeps_only_the_last_n():
    snaps = hourly(10)
    plan = plan_retention(snaps, RetentionPolicy(keep_last=2, keep_daily=0), NOW)
    assert [s for s, _ in plan.keep] == snaps[-2:][::-1] and len(plan.delete) == 8


def test_a_corrupt_snapshot_is_neither_counted_nor_deleted():
    snaps = hourly(5)
    snaps[-1].status = "corrupt"  # the newest did not verify
    snaps[0].status = "failed"
    plan = plan_retention(snaps, RetentionPolicy(keep_last=2, keep_daily=0), NOW)
    # two good copies are kept: the two newest verified ones, not the corrupt one
    assert [s for s, _ in plan.keep] == [snaps[3], snaps[2]]
    assert plan.delete == [snaps[1]] and plan.untouched == [snaps[0], snaps[4]]


def test_nothing_verified_means_nothing_deleted():
    snaps = [Snap(NOW - k, "corrupt") for k in range(4)]
    plan = plan_retention(snaps, RetentionPolicy(keep_last=1, keep_daily=0), NOW)
    assert not plan.keep and not plan.delete and len(plan.untouched) == 4


def test_the_newest_verified_one_survives_old_dates():
    """Snapshots all older than the daily window: the last one is still kept."""
    snaps = hourly(6, end=NOW - 30 * 86400)
    plan = plan_retention(snaps, RetentionPolicy(keep_last=1, keep_daily=7), NOW)
    assert [s for s, _ in plan.keep] == [snaps[-1]] and len(plan.delete) == 5


@pytest.mark.parametrize("keep_last, keep_daily", [(0, 1), (-1, 0), (1, -2), (1.5, 0), (True, 0), (10**6, 0)])
def test_bad_policies_are_refused(keep_last, keep_daily):
    with pytest.raises(ValidationError):
        RetentionPolicy(keep_last, keep_daily)


# ------------------------------------------------------------------- catalog
def entry(target: str, slot: int, status: str = "ok", **kw) -> CatalogEntry:
    return CatalogEntry(target=target, slot=slot, created_at=slot * 60.0, status=status, **kw)


def test_catalog_round_trip_and_status(tmp_path):
    cat = SnapshotCatalog(tmp_path)
    assert cat.load().entries == [] and cat.status(0.0) == {}
    data = CatalogData([entry("demo", 1, file="d/a.zip", bytes=100), entry("demo", 2, file="d/b.zip", bytes=120),
                        entry("demo", 3, "corrupt", file="d/c.zip", bytes=5), entry("demo", 4, "failed", error="disk"),
                        entry(DATABASE_TARGET, 4, file="database/d.db", bytes=999)],
                       {"demo": TargetState(60.0, 2), DATABASE_TARGET: TargetState(60.0, 0)})
    cat.save(data)
    again = cat.load()
    assert again.entries == sorted(data.entries, key=lambda e: (e.target, e.created_at))
    assert again.targets["demo"] == TargetState(60.0, 2)
    st = cat.status(now=300.0)
    assert st["demo"] == {"failures_total": 2.0, "interval_s": 60.0, "corrupt": 1.0, "kept": 2.0,
                          "last_attempt_failed": 1.0, "last_success": 120.0, "last_bytes": 120.0, "age_s": 180.0}
    assert st[DATABASE_TARGET]["last_attempt_failed"] == 0.0 and st[DATABASE_TARGET]["last_success"] == 240.0


def test_an_unreadable_catalog_is_reported_and_left_alone(tmp_path):
    (tmp_path / "catalog.json").write_text("{not json")
    with pytest.raises(LatticeError, match="unreadable.*move it aside"):
        SnapshotCatalog(tmp_path).load()
    (tmp_path / "catalog.json").write_text('{"format": "something else"}')
    with pytest.raises(LatticeError, match="not a valid snapshot catalog"):
        SnapshotCatalog(tmp_path).status(0.0)
    assert (tmp_path / "catalog.json").read_text() == '{"format": "something else"}'


def test_the_lock_keeps_a_second_scheduler_out(tmp_path):
    held, release = threading.Event(), threading.Event()

    def hold():
        with SnapshotCatalog(tmp_path).locked():
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(30)
        with pytest.raises(LockTimeout, match="held by another scheduler"):
            with SnapshotCatalog(tmp_path).locked(timeout_s=0.2):
                pass
        stop = threading.Event()
        stop.set()  # a stopping scheduler gives up at once
        with pytest.raises(LockTimeout):
            with SnapshotCatalog(tmp_path).locked(stop=stop):
                pass
    finally:
        release.set()
        t.join()
    with SnapshotCatalog(tmp_path).locked(timeout_s=5) as data:  # free again
        assert data.entries == []


def test_target_folders_are_safe_and_distinct():
    names = ["demo", "de/mo", "de mo", "de:mo", "日本語", "x" * 200, "x" * 201]
    folders = [target_folder(n) for n in names]
    assert len(set(folders)) == len(names)
    assert all("/" not in f and len(f) < 100 and not f.startswith(".") for f in folders)
    assert target_folder(DATABASE_TARGET) == "database"


@pytest.mark.parametrize("file", ["/etc/passwd", "../outside/x.zip", "lattice-a/../../x.zip", "x.zip"])
def test_a_catalog_cannot_point_retention_outside_its_folder(tmp_path, file):
    cat = SnapshotCatalog(tmp_path)
    cat.save(CatalogData([entry("demo", 1, file=file)], {"demo": TargetState(60.0, 0)}))
    with pytest.raises(LatticeError, match="not a snapshot inside the folder"):
        cat.load()
