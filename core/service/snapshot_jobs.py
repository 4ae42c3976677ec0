"""One scheduled snapshot, written and verified, as a catalog entry; and the re-verification
of a kept one.

A lattice snapshot (``Store.backup``) is re-read completely after writing with
``Store.verify_snapshot`` (every member's checksum, every gem, the state replay) and its
manifest digest compared with the one the backup reported; a database copy
(``Store.backup_database``) is re-hashed and opened read-only for ``PRAGMA integrity_check``.
Either way the whole file's sha256 goes into the catalog, and every later run re-hashes the
kept files against it: a file that changed or vanished is reported corrupt.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from core.access import Actor
from core.errors import LatticeError
from core.store import Store
from core.store.snapshot_catalog import CORRUPT, DATABASE_TARGET, FAILED, CatalogEntry, file_sha256, target_folder
from core.store.retention import OK

log = logging.getLogger("core.service.snapshots")
NODE = f"{os.uname().nodename}:{os.getpid()}"


def snapshot_path(folder: Path, target: str, slot: int, now: float) -> Path:
    """``<folder>/<target folder>/<UTC time>-s<slot>.lattice.zip`` (``.db`` for the database):
    unique per slot, so a snapshot never overwrites another one."""
    stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    suffix = ".db" if target == DATABASE_TARGET else ".lattice.zip"
    return folder / target_folder(target) / f"{stamp}-s{slot}{suffix}"


def take(store: Store, target: str, folder: Path, slot: int, now: float, actor: Actor) -> CatalogEntry:
    """Write the snapshot of ``target`` for ``slot`` and verify it; never raises for a failed
    backup (status ``failed``) or a failed verification (status ``corrupt``, the file kept)."""
    started = time.monotonic()
    path = snapshot_path(folder, target, slot, now)
    entry = CatalogEntry(target=target, slot=slot, created_at=now, status=FAILED, node=NODE,
                         file=str(path.relative_to(folder)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if target == DATABASE_TARGET:
            info = store.backup_database(path, actor)
            entry.bytes = int(info["bytes"])
        else:
            info = store.backup(target, path, actor)
            entry.manifest_sha256, entry.gems = info["sha256"], int(info["gems"])
            entry.version, entry.lattice_t = int(info["version"]), float(info["t"])
            entry.bytes = path.stat().st_size
    except Exception as exc:  # noqa: BLE001 - a failed backup is recorded and alerted on, never fatal
        if not isinstance(exc, (LatticeError, OSError)):
            log.exception("snapshot of %r: unexpected error", target)
        entry.error, entry.file = _one_line(exc), ""
        entry.seconds = time.monotonic() - started
        return entry
    entry.sha256 = file_sha256(path)
    problem = _verify_database(path, info["sha256"], entry.sha256) if target == DATABASE_TARGET else \
        _verify_lattice(path, entry.manifest_sha256, entry.gems)
    entry.status, entry.error = (CORRUPT, problem) if problem else (OK, "")
    entry.verified_at = now
    entry.seconds = time.monotonic() - started
    return entry


def _verify_lattice(path: Path, manifest_sha256: str, gems: int | None) -> str:
    """"" when the snapshot reads back whole and is the one written; else what is wrong."""
    try:
        s, _ = Store.verify_snapshot(path)
    except LatticeError as exc:
        return f"verification after writing failed: {_one_line(exc)}"
    if s.sha256 != manifest_sha256 or len(s.gems) != gems:
        return (f"verification after writing failed: the file read back holds manifest {s.sha256[:16]}… with "
                f"{len(s.gems)} gems, the backup wrote {manifest_sha256[:16]}… with {gems}")
    return ""


def _verify_database(path: Path, written_sha256: str, file_digest: str) -> str:
    if file_digest != written_sha256:
        return f"verification after writing failed: sha256 {file_digest[:16]}… differs from the copy's " \
               f"{written_sha256[:16]}…"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            check = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"verification after writing failed: not a readable SQLite file ({exc})"
    if check != "ok":
        return f"verification after writing failed: integrity_check says {check!r}"
    if not {"lattices", "gems", "alembic_version"} <= tables:
        return "verification after writing failed: the copy lacks the workbench's tables"
    return ""


def reverify(entry: CatalogEntry, folder: Path) -> str:
    """Re-hash a kept snapshot against the catalog: "" when unchanged, else what changed."""
    path = folder / entry.file
    try:
        size = path.stat().st_size
        digest = file_sha256(path) if size == entry.bytes else ""
    except FileNotFoundError:
        return f"{path} has disappeared"
    except OSError as exc:
        return f"{path} is unreadable ({exc.strerror or exc})"
    if size != entry.bytes:
        return f"{path} changed: {size} bytes, {entry.bytes} when written"
    if digest != entry.sha256:
        return f"{path} changed: sha256 {digest[:16]}… differs from {entry.sha256[:16]}… when written"
    return ""


def remove_stale_temporaries(folder: Path, targets: list[str]) -> list[Path]:
    """Temporary files a killed snapshot left in these targets' folders (only called under the
    catalog lock, when no snapshot is being written there)."""
    removed = []
    for target in targets:
        sub = folder / target_folder(target)
        if not sub.is_dir():
            continue
        for p in [*sub.glob(".*.tmp"), *sub.glob("*.db.tmp")]:
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:500]
