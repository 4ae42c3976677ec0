"""Helpers of the Admin page: snapshot bytes to download, an uploaded snapshot to verify and restore,
the scheduled snapshots with their age, size and verification status, the transaction log as a
display table and as a CSV built on demand, and the users table (the store checks the admin role
on each call)."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import pandas as pd
import streamlit as st

from core.access import Actor
from core.auth import DEMO_USERS
from core.errors import LatticeError
from core.service import SnapshotSchedule, scheduled_snapshots, snapshot_folder
from core.store import SnapshotError, Store
from ui.tables import csv_bytes

MAX_SNAPSHOT_BYTES = 500 * 1024 * 1024
LOG_TABLE_COLUMNS = ["id", "wall_time", "kind", "actor", "lattice_t", "lattice_version", "gems", "gem ids",
                     "before", "after"]
LOG_KINDS = ["create_lattice", "import", "create", "edit", "observe", "evolve", "entangle", "archive", "unarchive",
             "delete", "params", "clock", "restore"]


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def snapshot_filename(name: str, version: int) -> str:
    """``<lattice>-<UTC time>-v<version>.zip``: the download name of a snapshot."""
    return f"{name}-{_stamp()}-v{version}.zip"


def database_copy_filename() -> str:
    """``lattice-<UTC time>.db``: the download name of a whole-database copy."""
    return f"lattice-{_stamp()}.db"


def backup_bytes(store: Store, name: str, actor: Actor) -> tuple[bytes, dict]:
    """A snapshot of lattice ``name`` (``Store.backup``, admin only) as zip bytes, and its summary."""
    with tempfile.TemporaryDirectory(prefix="lattice-backup-") as d:
        info = store.backup(name, Path(d), actor)
        return Path(info["path"]).read_bytes(), info


def database_backup_supported(store: Store) -> bool:
    """A whole-database copy here is for SQLite files (PostgreSQL: pg_dump)."""
    return store.engine.dialect.name == "sqlite"


def database_backup_bytes(store: Store, actor: Actor) -> tuple[bytes | None, dict]:
    """An online copy of the whole SQLite database (``Store.backup_database``, admin only)
    as bytes, and its summary; no bytes when it is too large to hand to a browser."""
    with tempfile.TemporaryDirectory(prefix="lattice-db-backup-") as d:
        info = store.backup_database(Path(d) / "lattice.db", actor)
        data = Path(info["path"]).read_bytes() if info["bytes"] <= MAX_SNAPSHOT_BYTES else None
        return data, info


def restore_upload(store: Store, data: bytes, filename: str, actor: Actor, name: str | None = None,
                   overwrite: bool = False) -> dict:
    """Restore an uploaded snapshot (verified by the store before anything is written).

    ``overwrite``: replace an existing lattice of that name (the page passes it only when the
    admin confirmed a restore it had announced as a replacement); otherwise the store refuses.
    """
    _check_size(data, filename)
    with tempfile.TemporaryDirectory(prefix="lattice-restore-") as d:
        path = _upload_path(d, data)
        with _named(path, filename):
            info = store.restore(path, actor, name=name or None, overwrite=overwrite)
    info["path"] = filename
    return info


def _upload_path(folder: str, data: bytes) -> Path:
    """The upload as a file of a fixed name (never the browser's name: '..' is not a file name)."""
    path = Path(folder) / "snapshot.zip"
    path.write_bytes(data)
    return path


@contextmanager
def _named(path: Path, filename: str) -> Iterator[None]:
    """Errors name the uploaded file, not the server's temporary copy."""
    try:
        yield
    except SnapshotError as exc:
        raise SnapshotError(str(exc).replace(str(path), filename)) from None


def verify_upload(store: Store, data: bytes, filename: str, target: str | None = None) -> dict:
    """Verify an uploaded snapshot completely, writing nothing: the same checks as the
    restore (manifest checksums of every member, every gem, the entanglements, the state).

    Returns what the snapshot holds (lattice, gems, archived, entanglements, t, version,
    created_at, sha256, ...) and what it would replace (``target_exists``, ``target_gems``,
    ``target_version``). Raises LatticeError (SnapshotError) naming the problem.
    """
    _check_size(data, filename)
    with tempfile.TemporaryDirectory(prefix="lattice-verify-") as d:
        path = _upload_path(d, data)
        with _named(path, filename):
            s, lattice = Store.verify_snapshot(path)  # what Store.restore runs before writing
    meta = s.lattice
    name = target or meta["name"]
    info = {"file": filename, "lattice": meta["name"], "target": name, "gems": len(s.gems),
            "archived": sum(bool(g.get("archived")) for g in s.gems), "entanglements": len(s.edges),
            "t": float(meta["t"]), "time_unit": meta.get("time_unit", ""), "version": int(meta["version"]),
            "last_tx_id": int(meta.get("last_tx_id", 0)), "embedder": meta.get("embedder", ""),
            "dim": int(meta.get("dim", 0)), "created_at": s.manifest.get("created_at", ""), "sha256": s.sha256,
            "members": len(s.manifest.get("files", {})), "mean_coherence": lattice.summary()["mean_coherence"],
            "checksums_ok": True, "target_exists": store.exists(name), "target_gems": None,
            "target_version": None}
    if info["target_exists"]:
        current = store.info(name)
        info["target_gems"], info["target_version"] = current.gems, current.version
    return info


def _check_size(data: bytes, filename: str) -> None:
    if not data:
        raise LatticeError(f"{filename}: the file is empty")
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise LatticeError(f"{filename}: larger than {MAX_SNAPSHOT_BYTES // 2**20} MB")


def _head(value, items: int):
    """``value`` with every list (and dict) cut to its first ``items`` entries, and whether
    anything was cut: the start of its JSON without encoding 100k numbers to show 160 characters."""
    if isinstance(value, (list, tuple)):
        parts = [_head(v, items) for v in value[:items]]
        return [p for p, _ in parts], len(value) > items or any(c for _, c in parts)
    if isinstance(value, dict):
        parts = {k: _head(v, items) for k, v in list(value.items())[:items]}
        return {k: p for k, (p, _) in parts.items()}, len(value) > items or any(c for _, c in parts.values())
    return value, False


def _short_json(value, limit: int = 160) -> str:
    """The JSON of ``value``, cut to ``limit`` characters (``…`` marks the cut). Lists and dicts
    are cut to ``limit // 2`` entries before encoding: each entry takes at least two characters
    with its separator, so the first ``limit`` characters are the same as the full JSON's."""
    if value is None:
        return ""
    head, cut = _head(value, limit // 2)
    text = json.dumps(head, default=str)
    if len(text) <= limit and not cut:
        return text
    return text[:limit] + "…"


def log_table(log: pd.DataFrame) -> pd.DataFrame:
    """The transaction log, newest first, with the JSON payloads shortened for display."""
    if log.empty:
        return pd.DataFrame(columns=LOG_TABLE_COLUMNS)
    df = log.iloc[::-1].copy()
    ids = df["gem_ids"].map(lambda g: g or [])
    df["gems"] = ids.map(len)
    df["gem ids"] = ids.map(lambda g: ", ".join(map(str, g[:5])) + (f" (+{len(g) - 5})" if len(g) > 5 else ""))
    df["before"] = df["before"].map(_short_json)
    df["after"] = df["after"].map(_short_json)
    return df[LOG_TABLE_COLUMNS]


@st.cache_data(max_entries=16, show_spinner="Reading the transaction log…")
def log_view(_store: Store, url: str, name: str, version: int, kinds: tuple[str, ...], limit: int) -> pd.DataFrame:
    """:func:`log_table` of the ``limit`` newest entries of ``kinds`` (all when empty) of lattice
    ``name`` at ``version`` in the store at ``url``. Every write bumps the version (a restore
    too: it keeps rising), so the version is the cache key and a rerun reads nothing."""
    return log_table(_store.transactions(name, kinds=list(kinds) or None, limit=int(limit)))


def log_csv_frame(log: pd.DataFrame) -> pd.DataFrame:
    """The full log for CSV export (payloads as complete JSON)."""
    df = log.copy()
    for col in ("gem_ids", "before", "after"):
        df[col] = df[col].map(lambda v: json.dumps(v, default=str) if v is not None else "")
    return df


@st.cache_data(max_entries=4, show_spinner=False)
def _log_csv_bytes(_log: pd.DataFrame, url: str, name: str, last_id: int, kinds: tuple[str, ...], who: str,
                   limit: int) -> bytes:
    """The CSV of ``_log`` (passed unhashed: hashing the payloads would cost what building
    does), cached by log position: the store, lattice, newest log id and filters."""
    return csv_bytes(log_csv_frame(_log))


def log_csv(store: Store, name: str, kinds: Sequence[str], who: str, limit: int) -> bytes:
    """The transaction log of lattice ``name`` as CSV with complete payloads: the ``limit``
    newest entries of ``kinds`` (all when empty) whose actor contains ``who``, oldest first,
    as the log is now. Built once per log position (newest log id and filters): asking again
    before the log moves reuses it."""
    log = store.transactions(name, kinds=list(kinds) or None, limit=int(limit))
    last_id = int(log["id"].max()) if len(log) else 0  # before the actor filter: where the log's window ends
    return _log_csv_bytes(filter_actor(log, who), store.url, name, last_id, tuple(kinds), who.strip().lower(),
                          int(limit))


def log_csv_source(store: Store, name: str, kinds: Sequence[str], who: str, limit: int) -> Callable[[], bytes]:
    """What the log's download button is given: :func:`log_csv` of these filters, called only
    when the button is clicked (``st.download_button`` runs a callable then), never on a rerun."""
    kinds = tuple(kinds)
    return lambda: log_csv(store, name, kinds, who, limit)


def filter_actor(log: pd.DataFrame, who: str) -> pd.DataFrame:
    """The entries whose actor contains ``who`` (case-insensitive; all when blank)."""
    if not who.strip():
        return log
    return log[log["actor"].str.contains(who.strip(), case=False, regex=False)]


def snapshots_table(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Recorded backups and restores, newest first, without the server-side temporary paths."""
    return snapshots.iloc[::-1].drop(columns=["path"], errors="ignore")


SCHEDULED_COLUMNS = ["lattice", "taken (UTC)", "age", "size", "status", "verified (UTC)", "version", "gems", "file",
                     "problem"]


def _age(seconds: float) -> str:
    """``42 s``, ``17 min``, ``5.2 h``, ``3.0 days``: how long ago, to the unit that reads best."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}" if unit != "min" else f"{seconds / size:.0f} {unit}"
    return f"{max(0.0, seconds):.0f} s"


def _size(n: int) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _utc(seconds: float | None) -> str:
    return "" if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class ScheduledView:
    """What the Admin page shows of the scheduled snapshots: the schedule in words, its folder,
    the catalog's entries, and an error (a bad setting or an unreadable catalog) instead."""

    schedule: str
    folder: Path
    entries: list = field(default_factory=list)
    error: str = ""

    @property
    def corrupt(self) -> list:
        return [e for e in self.entries if e.status == "corrupt"]

    def failing(self) -> list[str]:
        """Targets whose newest attempt failed or did not verify."""
        newest = {}
        for e in sorted(self.entries, key=lambda e: e.created_at):
            newest[e.target] = e
        return sorted(t for t, e in newest.items() if e.status != "ok")


def scheduled_view(env: Mapping[str, str] = os.environ) -> ScheduledView:
    """The schedule of this process (``LATTICE_SNAPSHOT_EVERY``...) and the catalog of its folder
    (``LATTICE_SNAPSHOT_DIR``: also where ``python -m core backup --schedule`` writes by default)."""
    folder = snapshot_folder(env)
    try:
        schedule = SnapshotSchedule.from_env(env)
    except LatticeError as exc:
        return ScheduledView("", folder, error=f"The snapshot settings are wrong: {exc}")
    text = (f"This app takes {schedule.describe()}." if schedule else
            f"This app schedules no snapshots (set LATTICE_SNAPSHOT_EVERY, or run `python -m core backup "
            f"--schedule`); showing the catalog in {folder}.")
    try:
        return ScheduledView(text, folder, scheduled_snapshots(folder))
    except LatticeError as exc:
        return ScheduledView(text, folder, error=str(exc))


def scheduled_snapshots_table(entries: Sequence, now: float) -> pd.DataFrame:
    """Scheduled snapshots (catalog entries: core.service.scheduled_snapshots), newest first, with
    age, size and verification status (``verified``, ``CORRUPT``, ``FAILED``) and what went wrong."""
    label = {"ok": "verified", "corrupt": "CORRUPT", "failed": "FAILED"}
    rows = [{"lattice": e.target, "taken (UTC)": _utc(e.created_at), "age": _age(now - e.created_at),
             "size": _size(e.bytes) if e.file else "", "status": label.get(e.status, e.status),
             "verified (UTC)": _utc(e.verified_at), "version": e.version, "gems": e.gems, "file": e.file,
             "problem": e.error} for e in sorted(entries, key=lambda e: e.created_at, reverse=True)]
    return pd.DataFrame(rows, columns=SCHEDULED_COLUMNS)


def demo_users_table() -> pd.DataFrame:
    """The fixed users of demo mode with their roles."""
    return pd.DataFrame([{"username": u, "role": r.value} for u, r in DEMO_USERS.items()])
