"""The Admin page's scheduled snapshots: age, size and verification status from the catalog,
a corrupt snapshot shown as such (never as a good copy), and the helpers behind the table."""
from __future__ import annotations

from datetime import datetime, timezone

from core.service import RetentionPolicy, SnapshotSchedule, SnapshotScheduler
from core.store.snapshot_catalog import CatalogEntry
from tests.fakes import FakeClock
from tests.ui.helpers import app_as, texts
from ui import admin as A

ADMIN = "pages/7_Admin.py"


def scheduled_frame(at):
    return next(d.value for d in at.dataframe if "verified (UTC)" in d.value.columns)


def test_the_admin_page_lists_scheduled_snapshots_and_flags_a_corrupt_one(db, tmp_path, monkeypatch):
    folder = tmp_path / "snaps"
    monkeypatch.setenv("LATTICE_SNAPSHOT_DIR", str(folder))
    clock = FakeClock(datetime.now(timezone.utc).timestamp() - 3 * 3600)
    sched = SnapshotScheduler(db, SnapshotSchedule(folder, 3600.0, RetentionPolicy(5, 0), ("demo",)), clock=clock)
    for _ in range(3):
        sched.run_once()
        clock.advance(3600)
    oldest = sorted(sched.catalog.load().entries, key=lambda e: e.created_at)[0]
    (folder / oldest.file).write_bytes(b"damaged")  # found by the next run's re-verification
    sched.run_once()
    at = app_as("admin", ADMIN)
    assert not at.exception, at.exception
    table = scheduled_frame(at)
    assert list(table["status"]) == ["verified", "verified", "verified", "CORRUPT"]  # newest first
    assert list(table["lattice"]) == ["demo"] * 4 and (table["gems"] == 168).all()
    assert table["age"].iloc[0].endswith((" s", " min")) and table["age"].iloc[-1].endswith(" h")  # taken 3 h apart
    assert table["size"].iloc[0].endswith("kB") and "changed" in table["problem"].iloc[-1]
    assert "1 snapshot(s) failed verification" in texts(at.error)
    assert "This app schedules no snapshots" in texts(at.caption)


def test_no_catalog_yet_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("LATTICE_SNAPSHOT_DIR", str(tmp_path / "none"))
    at = app_as("admin", ADMIN)
    assert not at.exception, at.exception
    assert "No scheduled snapshots in" in texts(at.info)


def test_a_bad_setting_is_shown_on_the_tab(monkeypatch):
    view = A.scheduled_view({"LATTICE_SNAPSHOT_EVERY": "often"})
    assert "settings are wrong" in view.error and "LATTICE_SNAPSHOT_EVERY" in view.error


def test_the_table_helpers():
    now = 1_800_000_000.0
    entries = [CatalogEntry("a", 1, now - 90, "ok", file="a/1.zip", bytes=512, verified_at=now - 90),
               CatalogEntry("a", 2, now - 3 * 86400, "failed", error="disk full"),
               CatalogEntry("(database)", 3, now - 7200, "ok", file="database/3.db", bytes=3 * 2**20)]
    table = A.scheduled_snapshots_table(entries, now)
    assert list(table.columns) == A.SCHEDULED_COLUMNS
    assert list(table["age"]) == ["90 s", "2.0 h", "3.0 days"]
    assert list(table["size"]) == ["512 B", "3.0 MB", ""]
    assert list(table["status"]) == ["verified", "verified", "FAILED"]
    assert A.ScheduledView("", None, entries).failing() == []  # the newest attempt of each is fine
    assert A.ScheduledView("", None, [entries[1]]).failing() == ["a"]
