"""Snapshot files: one zip with a manifest of sha256 checksums.

Members: ``lattice.json`` (parameters, clock, t, version, the log position
``last_tx_id``), ``gems.jsonl`` (every gem, archived ones too, in seq order, floats
exact), ``embeddings.npy`` (float32, same order), ``entanglements.jsonl``, and
``manifest.json`` (format marker, and sha256 + size of every other member). Reading a
snapshot verifies everything *before* anything is written: a truncated, corrupted or
foreign file raises :class:`SnapshotError`.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.store import faults
from core.store.errors import SnapshotError

FORMAT = "gem-lattice-snapshot"
FORMAT_VERSION = 1
MEMBERS = ("lattice.json", "gems.jsonl", "embeddings.npy", "entanglements.jsonl")


@dataclass
class Snapshot:
    """The verified content of a snapshot file."""

    manifest: dict[str, Any]
    lattice: dict[str, Any]
    gems: list[dict[str, Any]]
    embeddings: np.ndarray  # (N, dim) float32
    edges: list[dict[str, Any]]
    sha256: str  # of the manifest: identifies the snapshot


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_snapshot(path: str | os.PathLike, lattice: dict, gems: list[dict], embeddings: np.ndarray,
                   edges: list[dict], created_at: str) -> tuple[Path, str]:
    """Write the snapshot atomically (temp file + rename); return (path, manifest sha256)."""
    p = Path(path)
    if p.is_dir():
        p = p / f"{lattice['name']}-v{lattice['version']}.lattice.zip"
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(embeddings, dtype="<f4"), allow_pickle=False)
    blobs = {
        "lattice.json": json.dumps(lattice, indent=1, sort_keys=True).encode(),
        "gems.jsonl": "".join(json.dumps(g, ensure_ascii=False) + "\n" for g in gems).encode(),
        "embeddings.npy": buf.getvalue(),
        "entanglements.jsonl": "".join(json.dumps(e) + "\n" for e in edges).encode(),
    }
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "lattice": lattice["name"],
                "created_at": created_at, "gems": len(gems),
                "files": {n: {"sha256": sha256(b), "bytes": len(b)} for n, b in blobs.items()}}
    mbytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", mbytes)
        for name, b in blobs.items():
            zf.writestr(name, b)
            faults.checkpoint("backup.member")
    os.replace(tmp, p)  # atomic: a crash before this leaves only the hidden temporary file
    return p, sha256(mbytes)


def read_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read and verify a snapshot; raise SnapshotError naming the problem."""
    p = Path(path)
    if not p.is_file():
        raise SnapshotError(f"{p}: no such snapshot file")
    try:
        with zipfile.ZipFile(p) as zf:
            names = set(zf.namelist())
            if "manifest.json" not in names:
                raise SnapshotError(f"{p}: not a lattice snapshot (no manifest.json)")
            data = {n: zf.read(n) for n in names}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise SnapshotError(f"{p}: not a readable snapshot (truncated or corrupted zip: {exc})") from None
    except zipfile.error as exc:  # pragma: no cover - alias of BadZipFile on most versions
        raise SnapshotError(f"{p}: corrupted snapshot ({exc})") from None
    try:
        manifest = json.loads(data["manifest.json"])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SnapshotError(f"{p}: manifest.json is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SnapshotError(f"{p}: not a lattice snapshot (manifest format is not {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(f"{p}: snapshot format version {manifest.get('format_version')!r} is not supported "
                            f"(this code reads version {FORMAT_VERSION})")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != set(MEMBERS) or set(data) != set(MEMBERS) | {"manifest.json"}:
        raise SnapshotError(f"{p}: snapshot members do not match the manifest (expected {', '.join(MEMBERS)})")
    for name in MEMBERS:
        blob, meta = data[name], files[name]
        if not isinstance(meta, dict) or len(blob) != meta.get("bytes") or sha256(blob) != meta.get("sha256"):
            raise SnapshotError(f"{p}: checksum mismatch for {name}: the snapshot is corrupted; nothing was restored")
    try:
        lattice = json.loads(data["lattice.json"])
        gems = [json.loads(line) for line in data["gems.jsonl"].decode().splitlines() if line.strip()]
        edges = [json.loads(line) for line in data["entanglements.jsonl"].decode().splitlines() if line.strip()]
        emb = np.load(io.BytesIO(data["embeddings.npy"]), allow_pickle=False)
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise SnapshotError(f"{p}: snapshot content is unreadable ({exc})") from None
    if emb.ndim != 2 or emb.shape[0] != len(gems) or emb.shape[1] != lattice.get("dim"):
        raise SnapshotError(f"{p}: embeddings shape {emb.shape} does not match {len(gems)} gems of dimension "
                            f"{lattice.get('dim')}")
    return Snapshot(manifest, lattice, gems, emb.astype(np.float32, copy=False), edges,
                    sha256(data["manifest.json"]))


def sqlite_online_copy(db_path: str | os.PathLike, out: str | os.PathLike, stamp: str) -> tuple[Path, int, str]:
    """Copy a live SQLite database with SQLite's online backup API; returns (path, bytes, sha256).

    One backup step: the copy is the state of one read transaction, and in WAL mode
    writers go on meanwhile (a stepwise copy restarts whenever another process writes,
    so under steady writes it might never finish). ``out`` is a file or a folder (then
    ``lattice-<stamp>.db`` in it). Written to a temporary file, checked with
    ``PRAGMA integrity_check``, then renamed into place: never a half-written backup.
    """
    import sqlite3

    src_path = Path(db_path).resolve()
    p = Path(out)
    if p.is_dir():
        p = p / f"lattice-{stamp}.db"
    if p.resolve() == src_path:
        raise SnapshotError(f"{p} is the database itself; choose another file")
    tmp = p.with_name(p.name + ".tmp")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(src_path)  # only read; SQLite's backup takes a read transaction
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained single file
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()
    if check != "ok":
        tmp.unlink(missing_ok=True)
        raise SnapshotError(f"the copy of {src_path} failed SQLite's integrity check ({check}); nothing was kept")
    with tmp.open("rb") as f:  # hashed as a stream: the database may be large
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    size = tmp.stat().st_size
    os.replace(tmp, p)
    return p, size, digest
