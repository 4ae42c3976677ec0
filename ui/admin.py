"""Helpers of the Admin page: snapshot bytes to download, an uploaded snapshot to verify and restore,
the transaction log as a display table, and the users table (the store checks the admin role on
each call)."""
from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pandas as pd

from core.access import Actor
from core.auth import DEMO_USERS
from core.errors import LatticeError
from core.store import SnapshotError, Store

MAX_SNAPSHOT_BYTES = 500 * 1024 * 1024
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


def restore_upload(store: Store, data: bytes, filename: str, actor: Actor, name: str | None = None) -> dict:
    """Restore an uploaded snapshot (verified by the store before anything is written)."""
    _check_size(data, filename)
    with tempfile.TemporaryDirectory(prefix="lattice-restore-") as d:
        path = _upload_path(d, data)
        with _named(path, filename):
            info = store.restore(path, actor, name=name or None)
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


def _short_json(value, limit: int = 160) -> str:
    if value is None:
        return ""
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def log_table(log: pd.DataFrame) -> pd.DataFrame:
    """The transaction log, newest first, with the JSON payloads shortened for display."""
    if log.empty:
        return pd.DataFrame(columns=["id", "wall_time", "kind", "actor", "lattice_t", "lattice_version", "gems",
                                     "gem ids", "before", "after"])
    df = log.iloc[::-1].copy()
    ids = df["gem_ids"].map(lambda g: list(g or []))
    df["gems"] = ids.map(len)
    df["gem ids"] = ids.map(lambda g: ", ".join(map(str, g[:5])) + (f" (+{len(g) - 5})" if len(g) > 5 else ""))
    df["before"] = df["before"].map(_short_json)
    df["after"] = df["after"].map(_short_json)
    return df[["id", "wall_time", "kind", "actor", "lattice_t", "lattice_version", "gems", "gem ids", "before",
               "after"]]


def log_csv_frame(log: pd.DataFrame) -> pd.DataFrame:
    """The full log for CSV export (payloads as complete JSON)."""
    df = log.copy()
    for col in ("gem_ids", "before", "after"):
        df[col] = df[col].map(lambda v: json.dumps(v, default=str) if v is not None else "")
    return df


def filter_actor(log: pd.DataFrame, who: str) -> pd.DataFrame:
    """The entries whose actor contains ``who`` (case-insensitive; all when blank)."""
    if not who.strip():
        return log
    return log[log["actor"].str.contains(who.strip(), case=False, regex=False)]


def snapshots_table(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Recorded backups and restores, newest first, without the server-side temporary paths."""
    return snapshots.iloc[::-1].drop(columns=["path"], errors="ignore")


def demo_users_table() -> pd.DataFrame:
    """The fixed users of demo mode with their roles."""
    return pd.DataFrame([{"username": u, "role": r.value} for u, r in DEMO_USERS.items()])
