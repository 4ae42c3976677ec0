"""The catalog of scheduled snapshots: ``catalog.json`` next to the snapshot files, and the
folder's lock.

One folder holds the snapshots of any number of targets (lattices, and ``(database)`` for the
whole SQLite file), each in its own subfolder, and one catalog: for every snapshot its target,
slot, time, file, size, whole-file sha256, verification status (``ok`` | ``corrupt`` |
``failed``) and error; per target the schedule's interval and a failure counter that only
grows. The catalog is rewritten atomically (temporary file + rename), so readers (the Admin
page, the metrics exporter) never need the lock and never see half a file.

The lock (``.catalog.lock``, an ``flock``) is what lets several schedulers, in one process or
on several nodes sharing the folder, take each slot once: a scheduler takes it, re-reads the
catalog, skips a slot someone already took, and keeps it until its catalog is written.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

from core.errors import LatticeError
from core.store.retention import OK

CORRUPT, FAILED = "corrupt", "failed"
STATUSES = (OK, CORRUPT, FAILED)
DATABASE_TARGET = "(database)"  # a lattice name cannot start with "(" (core.store.kernel.check_name)
CATALOG_FILE, LOCK_FILE = "catalog.json", ".catalog.lock"
FORMAT, FORMAT_VERSION = "gem-lattice-snapshot-catalog", 1
KEEP_FAILED = 20  # failure records kept per target (the counter keeps counting)
_UNSAFE = re.compile(r"[^A-Za-z0-9._+@-]+")


class LockTimeout(LatticeError):
    """The catalog lock was not free in time (another scheduler is writing a snapshot)."""


@dataclass
class CatalogEntry:
    """One scheduled snapshot (or a failed attempt). Times in seconds since the Unix epoch."""

    target: str  # lattice name, or DATABASE_TARGET
    slot: int  # floor(created_at / interval): the schedule's slot this snapshot filled
    created_at: float
    status: str  # ok | corrupt | failed
    file: str = ""  # relative to the catalog's folder ("" for a failed attempt)
    bytes: int = 0
    sha256: str = ""  # of the whole file, for re-verification
    manifest_sha256: str = ""  # a lattice snapshot's manifest digest (Store.backup's "sha256")
    verified_at: float | None = None  # last check that found it intact (or found it corrupt)
    error: str = ""
    node: str = ""  # host:pid of the scheduler that took it
    version: int | None = None  # the lattice's version, its gem count and clock (lattice snapshots)
    gems: int | None = None
    lattice_t: float | None = None
    seconds: float = 0.0  # how long writing and verifying took

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CatalogEntry:
        known = {f.name for f in fields(cls)}
        entry = cls(**{k: v for k, v in raw.items() if k in known})
        if entry.status not in STATUSES:
            raise ValueError(f"unknown status {entry.status!r}")
        parts = Path(entry.file).parts
        if entry.file and (Path(entry.file).is_absolute() or ".." in parts or len(parts) != 2):
            # retention deletes catalogued files: never one outside the folder's target folders
            raise ValueError(f"file {entry.file!r} is not a snapshot inside the folder")
        return entry


@dataclass
class TargetState:
    interval_s: float = 0.0  # the schedule's interval, for the SnapshotMissed alert
    failures_total: int = 0  # failed attempts and snapshots found corrupt, since the catalog began


@dataclass
class CatalogData:
    entries: list[CatalogEntry] = field(default_factory=list)
    targets: dict[str, TargetState] = field(default_factory=dict)

    def of(self, target: str) -> list[CatalogEntry]:
        return [e for e in self.entries if e.target == target]

    def has_slot(self, target: str, slot: int) -> bool:
        return any(e.target == target and e.slot == slot for e in self.entries)

    def state(self, target: str) -> TargetState:
        return self.targets.setdefault(target, TargetState())


def target_folder(target: str) -> str:
    """A target's subfolder: a file-safe form of the name plus a short hash (names that differ
    only in unsafe characters, or are long, still get folders of their own)."""
    if target == DATABASE_TARGET:
        return "database"
    slug = _UNSAFE.sub("_", target)[:60].strip("._") or "lattice"
    return f"lattice-{slug}-{hashlib.sha256(target.encode()).hexdigest()[:8]}"


def file_sha256(path: Path) -> str:
    """sha256 of a file, read as a stream (a database copy may be large)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class SnapshotCatalog:
    """``catalog.json`` and ``.catalog.lock`` in ``folder`` (created on first write)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / CATALOG_FILE

    def load(self) -> CatalogData:
        """The catalog as written last (empty when there is none yet); LatticeError when it is
        unreadable: it is never overwritten then, an operator must look at it."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return CatalogData()
        except (OSError, ValueError) as exc:
            raise LatticeError(f"{self.path} is unreadable ({exc}); move it aside to start a new catalog "
                               "(the snapshot files next to it stay valid)") from None
        try:
            if raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
                raise ValueError("not a snapshot catalog of this version")
            return CatalogData([CatalogEntry.from_json(e) for e in raw["entries"]],
                               {k: TargetState(float(v["interval_s"]), int(v["failures_total"]))
                                for k, v in raw["targets"].items()})
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise LatticeError(f"{self.path} is not a valid snapshot catalog ({exc}); move it aside to start a new "
                               "one") from None

    def save(self, data: CatalogData) -> None:
        """Write the catalog atomically (call it while holding :meth:`locked`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        body = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "targets": {k: asdict(v) for k, v in sorted(data.targets.items())},
                "entries": [asdict(e) for e in sorted(data.entries, key=lambda e: (e.target, e.created_at))]}
        tmp = self.path.with_name(f".{CATALOG_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    @contextmanager
    def locked(self, timeout_s: float = 3600.0, stop: threading.Event | None = None) -> Iterator[CatalogData]:
        """Hold the folder's lock and yield the catalog as it is now; the caller saves it.

        Polls every 50 ms so that a stopping scheduler does not wait for another one's
        snapshot (``stop`` set: LockTimeout at once); LockTimeout after ``timeout_s``.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout_s
        # flock belongs to an open file: two opens conflict, in one process (threads) or several
        with open(self.folder / LOCK_FILE, "a+") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if (stop is not None and stop.is_set()) or time.monotonic() > deadline:
                        raise LockTimeout(f"{self.folder / LOCK_FILE} is held by another scheduler; "
                                          "nothing was written") from None
                    time.sleep(0.05)
            try:
                yield self.load()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def status(self, now: float) -> dict[str, dict[str, float]]:
        """Per target, the figures of the Prometheus gauges (core.monitoring.SnapshotCollector):
        ``last_success`` (epoch s, absent before the first), ``failures_total``,
        ``last_attempt_failed`` (0/1), ``corrupt`` and ``kept`` (snapshots), ``interval_s``,
        ``last_bytes``, ``age_s`` (of the newest verified one)."""
        data = self.load()
        out: dict[str, dict[str, float]] = {}
        for target in sorted(set(data.targets) | {e.target for e in data.entries}):
            entries = sorted(data.of(target), key=lambda e: e.created_at)
            good = [e for e in entries if e.status == OK]
            state = data.state(target)
            row = {"failures_total": float(state.failures_total), "interval_s": state.interval_s,
                   "corrupt": float(sum(e.status == CORRUPT for e in entries)), "kept": float(len(good)),
                   "last_attempt_failed": float(bool(entries) and entries[-1].status != OK)}
            if good:
                row.update(last_success=good[-1].created_at, last_bytes=float(good[-1].bytes),
                           age_s=max(0.0, now - good[-1].created_at))
            out[target] = row
        return out
