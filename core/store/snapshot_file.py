"""Snapshot files: one zip with a manifest of sha256 checksums.

Members: ``lattice.json`` (parameters, clock, t, version, the log position
``last_tx_id``), ``gems.jsonl`` (every gem, archived ones too, in seq order, floats
exact), ``embeddings.npy`` (float32, same order), ``entanglements.jsonl``, and
``manifest.json`` (format marker, and sha256 + size of every other member). Reading a
snapshot verifies everything *before* anything is written: a truncated, corrupted or
foreign file raises :class:`SnapshotError`, and a hostile one (a zip bomb, unexpected or
duplicate members, a forged size) is refused before it is unpacked (:func:`read_snapshot`).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import LatticeError
from core.store import faults
from core.store.errors import SnapshotError

FORMAT = "gem-lattice-snapshot"
FORMAT_VERSION = 1
MEMBERS = ("lattice.json", "gems.jsonl", "embeddings.npy", "entanglements.jsonl")
DEFAULT_MAX_BYTES = 2 * 2**30  # all members unpacked; LATTICE_SNAPSHOT_MAX_BYTES overrides
MAX_MANIFEST_BYTES = 2**20
CHUNK = 2**20
# what damaged zip data raises inside zipfile/zlib (a CRC mismatch is BadZipFile)
_UNREADABLE = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
               NotImplementedError, RuntimeError, KeyError, IndexError, struct.error, OverflowError, MemoryError)


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


def max_bytes() -> int:
    """The most a snapshot may unpack to, all members together: ``LATTICE_SNAPSHOT_MAX_BYTES``
    (default 2 GiB)."""
    raw = os.environ.get("LATTICE_SNAPSHOT_MAX_BYTES", "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise LatticeError(f"LATTICE_SNAPSHOT_MAX_BYTES={raw!r} is not a positive whole number of bytes")
    return value


def _members(p: Path, infos: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """The zip directory checked before anything is unpacked: exactly the expected names, once
    each, plain files, not encrypted, stored or deflated."""
    names = [i.filename for i in infos]
    if "manifest.json" not in names:
        raise SnapshotError(f"{p}: not a lattice snapshot (no manifest.json); nothing was restored")
    expected = {*MEMBERS, "manifest.json"}
    twice = sorted({n for n in names if names.count(n) > 1})
    unexpected = sorted(set(names) - expected)
    missing = sorted(expected - set(names))
    if twice or unexpected or missing:
        what = (f"member {twice[0]!r} appears twice" if twice else f"unexpected member {unexpected[0]!r}"
                if unexpected else f"member {missing[0]!r} is missing")
        raise SnapshotError(f"{p}: snapshot members do not match the format ({what}; expected exactly "
                            f"manifest.json, {', '.join(MEMBERS)}); nothing was restored")
    for i in infos:
        if i.flag_bits & 0x1:
            raise SnapshotError(f"{p}: member {i.filename} is encrypted; snapshots are never encrypted as zips; "
                                "nothing was restored")
        if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise SnapshotError(f"{p}: member {i.filename} uses an unsupported compression (method "
                                f"{i.compress_type}); nothing was restored")
    return {i.filename: i for i in infos}


def _read_member(p: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, why: str,
                 digest: str | None = None) -> bytearray:
    """Unpack one member in chunks, hashing as it goes; stop as soon as it passes ``limit``."""
    if info.file_size > limit:
        raise SnapshotError(f"{p}: member {info.filename} unpacks to {info.file_size} bytes, more than {why} "
                            f"({limit}); nothing was restored")
    out, h = bytearray(), hashlib.sha256()
    try:
        with zf.open(info) as f:
            while chunk := f.read(CHUNK):
                if len(out) + len(chunk) > limit:
                    raise SnapshotError(f"{p}: member {info.filename} unpacks to more than {why} ({limit} bytes): "
                                        "corrupted or forged; nothing was restored")
                h.update(chunk)
                out += chunk
    except _UNREADABLE as exc:
        raise SnapshotError(f"{p}: not a readable snapshot (member {info.filename} is truncated or corrupted: "
                            f"{_first_line(exc)}); nothing was restored") from None
    if digest is not None and (len(out) != limit or h.hexdigest() != digest):
        raise SnapshotError(f"{p}: checksum mismatch for {info.filename}: the snapshot is corrupted; "
                            "nothing was restored")
    return out


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _manifest(p: Path, raw: bytes, cap: int) -> dict[str, Any]:
    try:
        manifest = json.loads(raw)
    except (ValueError, RecursionError):
        raise SnapshotError(f"{p}: manifest.json is not valid JSON; nothing was restored") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SnapshotError(f"{p}: not a lattice snapshot (manifest format is not {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(f"{p}: snapshot format version {manifest.get('format_version')!r} is not supported "
                            f"(this code reads version {FORMAT_VERSION})")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != set(MEMBERS):
        raise SnapshotError(f"{p}: snapshot members do not match the manifest (expected {', '.join(MEMBERS)}); "
                            "nothing was restored")
    for name, meta in files.items():
        size = meta.get("bytes") if isinstance(meta, dict) else None
        digest = meta.get("sha256") if isinstance(meta, dict) else None
        if type(size) is not int or size < 0 or not isinstance(digest, str) or len(digest) != 64:
            raise SnapshotError(f"{p}: the manifest's entry for {name} is malformed (needs bytes and sha256); "
                                "nothing was restored")
    total = sum(meta["bytes"] for meta in files.values())
    if total > cap:
        raise SnapshotError(f"{p}: the snapshot unpacks to {total} bytes, more than LATTICE_SNAPSHOT_MAX_BYTES "
                            f"({cap}); raise that limit to restore it; nothing was restored")
    return manifest


def _embeddings(p: Path, raw: bytearray) -> np.ndarray:
    """The .npy member: a 2-D little-endian float32 array whose header matches its size
    (the header is checked before any array is allocated)."""
    f = io.BytesIO(raw)
    try:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f, max_header_size=10_000)
    except (ValueError, TypeError, SyntaxError, OSError) as exc:
        raise SnapshotError(f"{p}: embeddings.npy is unreadable ({_first_line(exc)}); nothing was restored") from None
    if dtype != np.dtype("<f4") or fortran or len(shape) != 2 or shape[0] * shape[1] * 4 != len(raw) - f.tell():
        raise SnapshotError(f"{p}: embeddings.npy must hold a 2-D float32 array matching its size (got {dtype}, "
                            f"shape {shape}); nothing was restored")
    return np.frombuffer(raw, dtype="<f4", offset=f.tell()).reshape(shape)


def _lines(p: Path, name: str, raw: bytearray) -> list[Any]:
    """One JSON value per line (split on newlines only: U+2028 or NEL inside a text are not lines)."""
    try:
        return [json.loads(line) for line in raw.decode("utf-8").split("\n") if line.strip()]
    except (ValueError, RecursionError) as exc:
        raise SnapshotError(f"{p}: {name} is unreadable ({_first_line(exc)}); nothing was restored") from None


def read_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read and verify a snapshot; raise SnapshotError naming the problem.

    Bounded: the zip directory is checked first (member names, encryption, compression), then
    the manifest (at most 1 MiB) whose declared sizes must agree with the directory and stay
    under :func:`max_bytes`; each member is unpacked in chunks, hashed while read, and refused
    as soon as it grows past its declared size. Any damage gives a SnapshotError.
    """
    p = Path(path)
    if not p.is_file():
        raise SnapshotError(f"{p}: no such snapshot file")
    cap = max_bytes()
    try:
        with zipfile.ZipFile(p) as zf:
            infos = _members(p, zf.infolist())
            mbytes = bytes(_read_member(p, zf, infos["manifest.json"], MAX_MANIFEST_BYTES, "a manifest may"))
            manifest = _manifest(p, mbytes, cap)
            data = {}
            for name in MEMBERS:
                meta = manifest["files"][name]
                if infos[name].file_size != meta["bytes"]:
                    raise SnapshotError(f"{p}: member {name} is {infos[name].file_size} bytes in the zip directory "
                                        f"but {meta['bytes']} in the manifest: corrupted or forged; nothing was "
                                        "restored")
                data[name] = _read_member(p, zf, infos[name], meta["bytes"], "its size in the manifest",
                                          meta["sha256"])
    except SnapshotError:
        raise
    except _UNREADABLE as exc:
        raise SnapshotError(f"{p}: not a readable snapshot (truncated or corrupted zip: {_first_line(exc)}); "
                            "nothing was restored") from None
    try:
        lattice = json.loads(data["lattice.json"])
    except (ValueError, RecursionError) as exc:
        raise SnapshotError(f"{p}: lattice.json is unreadable ({_first_line(exc)}); nothing was restored") from None
    gems = _lines(p, "gems.jsonl", data["gems.jsonl"])
    edges = _lines(p, "entanglements.jsonl", data["entanglements.jsonl"])
    emb = _embeddings(p, data["embeddings.npy"])
    if not isinstance(lattice, dict) or emb.shape[0] != len(gems) or emb.shape[1] != lattice.get("dim"):
        raise SnapshotError(f"{p}: embeddings shape {emb.shape} does not match {len(gems)} gems of dimension "
                            f"{lattice.get('dim') if isinstance(lattice, dict) else '?'}; nothing was restored")
    return Snapshot(manifest, lattice, gems, emb, edges, sha256(mbytes))


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
