"""Scheduled snapshots: every lattice (or some) and the whole SQLite database, every interval,
verified after writing, rotated by a retention policy, run in the app process or as a service.

Slots: time is cut into slots of ``every_s`` seconds from the Unix epoch (``slot =
floor(now / every_s)``: hourly slots start on the hour, UTC), so every node agrees on them.
Each run takes, for each target without a catalog entry for the current slot, one snapshot
(core.service.snapshot_jobs: written, re-read, verified), then re-hashes the kept ones (a
changed file becomes ``corrupt``, logged at ERROR) and applies the retention policy
(core.store.retention: only verified snapshots are counted or deleted, never the newest).
All of it happens under the folder's catalog lock, so several schedulers sharing a folder (two
app processes, two nodes on a shared volume, the app and ``python -m core backup --schedule``)
take each slot once.

In the app: :func:`start_scheduled_snapshots` starts one daemon thread per process when
``LATTICE_SNAPSHOT_EVERY`` is set (:meth:`SnapshotSchedule.from_env` lists the variables).
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from core.access import SYSTEM, Actor
from core.errors import LatticeError, ValidationError
from core.paths import DATA_DIR
from core.service.snapshot_jobs import reverify, remove_stale_temporaries, take
from core.store import Store
from core.store.retention import OK, RetentionPolicy, plan_retention
from core.store.snapshot_catalog import (CORRUPT, DATABASE_TARGET, FAILED, KEEP_FAILED, CatalogData, CatalogEntry,
                                         LockTimeout, SnapshotCatalog)

log = logging.getLogger("core.service.snapshots")
MIN_EVERY_S = 0.1
ENV = {"every": "LATTICE_SNAPSHOT_EVERY", "dir": "LATTICE_SNAPSHOT_DIR", "keep_last": "LATTICE_SNAPSHOT_KEEP_LAST",
       "keep_daily": "LATTICE_SNAPSHOT_KEEP_DAILY", "lattices": "LATTICE_SNAPSHOT_LATTICES",
       "database": "LATTICE_SNAPSHOT_DATABASE"}
DEFAULT_DIR = DATA_DIR / "snapshots"


def parse_every(text: str | float, name: str = "every") -> float:
    """An interval in seconds from ``"1h"``, ``"15min"``, ``"0.2s"``, ``"1d"`` or a number of
    seconds; at least 0.1 s and finite (ValidationError naming ``name`` otherwise)."""
    from core.engine.durations import parse_duration
    seconds = parse_duration(text, "second", name)
    if not math.isfinite(seconds) or seconds < MIN_EVERY_S:
        raise ValidationError(name, f"got {text!r}; give an interval of at least {MIN_EVERY_S} s, e.g. 1h or 15min")
    return seconds


def snapshot_folder(env: Mapping[str, str] = os.environ) -> Path:
    """``LATTICE_SNAPSHOT_DIR``, default ``data/snapshots``."""
    raw = env.get(ENV["dir"], "").strip()
    return Path(raw) if raw else DEFAULT_DIR


def _whole(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(ENV[key], "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValidationError(ENV[key], f"got {raw!r}; must be a whole number")
    return int(raw)


@dataclass(frozen=True)
class SnapshotSchedule:
    """What to snapshot, how often, where, and what to keep.

    ``lattices``: names, or empty with ``all_lattices`` (every lattice at each run, new ones
    included); ``database``: also the whole SQLite file. ``every_s``: seconds (>= 0.1).
    """

    folder: Path
    every_s: float
    policy: RetentionPolicy = field(default_factory=RetentionPolicy)
    lattices: tuple[str, ...] = ()
    all_lattices: bool = False
    database: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.every_s, (int, float)) and math.isfinite(self.every_s)
                and self.every_s >= MIN_EVERY_S):
            raise ValidationError("every", f"got {self.every_s!r}; must be at least {MIN_EVERY_S} s")
        if not (self.lattices or self.all_lattices or self.database):
            raise LatticeError("a snapshot schedule needs something to snapshot: name lattices (--lattice NAME), "
                               "all of them (--all) and/or the whole database (--database)")
        if self.lattices and self.all_lattices:
            raise LatticeError("give either lattice names or --all, not both")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SnapshotSchedule | None:
        """The app's schedule, None when ``LATTICE_SNAPSHOT_EVERY`` is unset. Variables:
        ``LATTICE_SNAPSHOT_EVERY`` (e.g. 1h), ``LATTICE_SNAPSHOT_DIR`` (default data/snapshots),
        ``LATTICE_SNAPSHOT_KEEP_LAST`` (7), ``LATTICE_SNAPSHOT_KEEP_DAILY`` (7),
        ``LATTICE_SNAPSHOT_LATTICES`` (comma-separated names; default every lattice),
        ``LATTICE_SNAPSHOT_DATABASE`` (1: also the whole SQLite database)."""
        raw = env.get(ENV["every"], "").strip()
        if not raw:
            return None
        names = tuple(n.strip() for n in env.get(ENV["lattices"], "").split(",") if n.strip())
        database = env.get(ENV["database"], "").strip().lower()
        if database not in ("", "0", "1", "true", "false", "yes", "no"):
            raise ValidationError(ENV["database"], f"got {database!r}; use 1 or 0")
        return cls(folder=snapshot_folder(env), every_s=parse_every(raw, ENV["every"]),
                   policy=RetentionPolicy(_whole(env, "keep_last", 7), _whole(env, "keep_daily", 7)),
                   lattices=names, all_lattices=not names, database=database in ("1", "true", "yes"))

    def describe(self) -> str:
        what = ", ".join(self.lattices) if self.lattices else "every lattice" if self.all_lattices else ""
        what = " and ".join(w for w in (what, "the whole database" if self.database else "") if w)
        return f"{what} every {_seconds(self.every_s)} into {self.folder}; {self.policy.describe()}"


def _seconds(s: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size and s % size == 0:
            return f"{int(s // size)}{unit}"
    return f"{s:g}s"


@dataclass
class RunReport:
    """One run: the slot, the snapshots taken, the targets skipped (slot already taken), the
    snapshots retention deleted and those found corrupt on re-verification."""

    slot: int
    taken: list[CatalogEntry] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deleted: list[CatalogEntry] = field(default_factory=list)
    found_corrupt: list[CatalogEntry] = field(default_factory=list)


class SnapshotScheduler:
    """Runs a :class:`SnapshotSchedule` on a store: :meth:`run_once` (one slot), :meth:`run`
    (until a stop event), :meth:`start`/:meth:`stop` (a daemon thread).

    ``clock``: seconds since the epoch (injectable for tests); ``on_report``: called with each
    run's :class:`RunReport` (the CLI prints its lines from it).
    """

    def __init__(self, store: Store, schedule: SnapshotSchedule, *, clock: Callable[[], float] = time.time,
                 actor: Actor = SYSTEM, on_report: Callable[[RunReport], None] | None = None):
        if schedule.database and store.engine.dialect.name != "sqlite":
            raise LatticeError("--database snapshots copy a SQLite file; this database is "
                               f"{store.engine.dialect.name}: back it up with pg_dump (README, Backup and restore) "
                               "and schedule lattice snapshots only")
        self.store, self.schedule, self.clock, self.actor = store, schedule, clock, actor
        self.catalog = SnapshotCatalog(schedule.folder)
        self.on_report = on_report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ slots
    def slot(self, now: float) -> int:
        return math.floor(now / self.schedule.every_s)

    def targets(self) -> list[str]:
        """The targets of this run: the named lattices (a missing one fails, and is alerted on),
        or every lattice now, then the database."""
        names = list(self.schedule.lattices) or (self.store.lattice_names() if self.schedule.all_lattices else [])
        return names + ([DATABASE_TARGET] if self.schedule.database else [])

    # ------------------------------------------------------------------- runs
    def run_once(self, stop: threading.Event | None = None) -> RunReport:
        """Take the current slot's snapshots that nobody took yet, re-verify, rotate."""
        stop = stop or self._stop
        slot = self.slot(self.clock())
        report = RunReport(slot)
        folder = self.schedule.folder
        targets = self.targets()
        with self.catalog.locked(stop=stop) as data:
            remove_stale_temporaries(folder, targets)
            for target in targets:
                data.state(target).interval_s = self.schedule.every_s
                if data.has_slot(target, slot):  # taken by another scheduler, or by this one already
                    report.skipped.append(target)
                    continue
                if stop.is_set():  # stopping: finish the snapshot under way, start no new one
                    break
                entry = take(self.store, target, folder, slot, self.clock(), self.actor)
                data.entries.append(entry)
                report.taken.append(entry)
                if entry.status != OK:
                    data.state(target).failures_total += 1
                _log_entry(entry, folder)
            for target in targets:
                self._reverify(data, target, report)
                self._rotate(data, target, report)
            self.catalog.save(data)
        if self.on_report is not None:
            self.on_report(report)
        return report

    def _reverify(self, data: CatalogData, target: str, report: RunReport) -> None:
        now = self.clock()
        for entry in data.of(target):
            if entry.status != OK or any(entry is t for t in report.taken):
                continue
            problem = reverify(entry, self.schedule.folder)
            entry.verified_at = now
            if problem:
                entry.status, entry.error = CORRUPT, f"re-verification failed: {problem}"
                data.state(target).failures_total += 1
                report.found_corrupt.append(entry)
                log.error("snapshot of %r slot %d is corrupt: %s; it is kept for inspection and no longer counts "
                          "as a good copy", target, entry.slot, entry.error)

    def _rotate(self, data: CatalogData, target: str, report: RunReport) -> None:
        plan = plan_retention(data.of(target), self.schedule.policy, self.clock())
        for entry in plan.delete:
            (self.schedule.folder / entry.file).unlink(missing_ok=True)
            data.entries.remove(entry)
            report.deleted.append(entry)
            log.info("retention: deleted the snapshot of %r slot %d (%s; %s)", target, entry.slot, entry.file,
                     self.schedule.policy.describe())
        failed = sorted((e for e in data.of(target) if e.status == FAILED), key=lambda e: e.created_at)
        for entry in failed[:-KEEP_FAILED]:  # the record of old failures; the counter keeps them
            data.entries.remove(entry)

    def run(self, stop: threading.Event | None = None) -> None:
        """Run every slot until ``stop`` is set (a snapshot under way is finished first)."""
        stop = stop or self._stop
        log.info("scheduled snapshots: %s", self.schedule.describe())
        while not stop.is_set():
            slot = self.slot(self.clock())
            try:
                slot = self.run_once(stop).slot
            except LockTimeout:
                if stop.is_set():  # stopping while another scheduler holds the folder: nothing to finish
                    break
                log.error("scheduled snapshots: the folder's lock stayed taken; this slot was skipped")
            except LatticeError as exc:  # e.g. an unreadable catalog: reported each slot, never fatal
                log.error("scheduled snapshots: this run failed: %s", exc)
            except Exception:  # noqa: BLE001 - the thread must outlive a bug in one run
                log.exception("scheduled snapshots: this run failed")
            # until the next slot after the one just served: at once if the run outlasted its slot
            stop.wait(max(0.0, (slot + 1) * self.schedule.every_s - self.clock()))

    def start(self) -> SnapshotScheduler:
        """Run in a daemon thread (the app process); :meth:`stop` ends it."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self.run, name="lattice-snapshots", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, dict[str, float]]:
        """The catalog's figures per target (for the Prometheus collector)."""
        return self.catalog.status(self.clock())


def _log_entry(entry: CatalogEntry, folder: Path) -> None:
    if entry.status == OK:
        log.info("snapshot of %r slot %d: verified, %d bytes, sha256 %s…, %.2f s -> %s", entry.target, entry.slot,
                 entry.bytes, entry.sha256[:16], entry.seconds, folder / entry.file)
    else:
        log.error("snapshot of %r slot %d %s: %s", entry.target, entry.slot,
                  "FAILED" if entry.status == FAILED else "is CORRUPT", entry.error)


_running: dict[tuple[str, str], SnapshotScheduler] = {}
_running_lock = threading.Lock()


def start_scheduled_snapshots(store: Store, env: Mapping[str, str] = os.environ) -> SnapshotScheduler | None:
    """Start the schedule of the environment (:meth:`SnapshotSchedule.from_env`) once per
    process and store; None when ``LATTICE_SNAPSHOT_EVERY`` is unset. A bad setting raises
    LatticeError naming the variable (nothing started)."""
    schedule = SnapshotSchedule.from_env(env)
    if schedule is None:
        return None
    key = (store.url, str(schedule.folder.resolve()))
    with _running_lock:
        if key not in _running or not _running[key].running:
            _running[key] = SnapshotScheduler(store, schedule).start()
        return _running[key]


def stop_scheduled_snapshots(timeout: float | None = 30.0) -> None:
    """Stop every schedule :func:`start_scheduled_snapshots` started (a snapshot under way finishes)."""
    with _running_lock:
        running = list(_running.values())
        _running.clear()
    for scheduler in running:
        scheduler.stop(timeout)


def scheduled_snapshot_status(folder: str | os.PathLike, now: float | None = None) -> dict[str, dict[str, float]]:
    """The catalog figures of a snapshot folder (as the scheduler's :meth:`~SnapshotScheduler.status`),
    for a process that only reports (the app's exporter while a CLI service takes the snapshots)."""
    return SnapshotCatalog(folder).status(time.time() if now is None else now)


def snapshot_status_source(env: Mapping[str, str] = os.environ) -> Callable[[], dict[str, dict[str, float]]] | None:
    """What the app's exporter reads for the snapshot gauges: the catalog of the configured
    folder when snapshots are scheduled here (``LATTICE_SNAPSHOT_EVERY``) or by a service into
    ``LATTICE_SNAPSHOT_DIR``; None when neither is set."""
    if not (env.get(ENV["every"], "").strip() or env.get(ENV["dir"], "").strip()):
        return None
    folder = snapshot_folder(env)
    return lambda: scheduled_snapshot_status(folder)


def scheduled_snapshots(folder: str | os.PathLike) -> list[CatalogEntry]:
    """Every snapshot in a folder's catalog, oldest first (for the Admin page)."""
    return sorted(SnapshotCatalog(folder).load().entries, key=lambda e: e.created_at)
