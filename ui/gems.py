"""Helpers of the Lattice page: uploads to import, exports to download, tags (no widgets here).

Uploads are written to a private temporary folder and handed to
``Store.import_path`` (which validates every row; all or nothing unless skip_bad). A
zip is unpacked safely (no absolute paths, no ``..``, size and count limits).
"""
from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Protocol

import pandas as pd
import streamlit as st

from core.errors import LatticeError
from core.store import ImportIssue, Store

DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv")
TEXT_SUFFIXES = (".md", ".markdown", ".txt")
UPLOAD_TYPES = ["jsonl", "ndjson", "json", "csv", "tsv", "md", "markdown", "txt", "zip"]
MAX_ZIP_FILES = 5000
MAX_ZIP_BYTES = 200 * 1024 * 1024
EDGES_SUFFIX = ".entanglements.csv"


class Upload(Protocol):  # streamlit's UploadedFile, or anything with a name and bytes
    name: str

    def getvalue(self) -> bytes: ...


@dataclass
class Staged:
    """What to import: ``path`` (a file or a folder), optional ``edges`` side file, and
    the temporary folder holding them (delete with ``cleanup()``)."""

    path: Path
    edges: Path | None
    tmp: tempfile.TemporaryDirectory
    description: str

    def cleanup(self) -> None:
        self.tmp.cleanup()


def _safe_name(name: str) -> str:
    base = PurePosixPath(str(name).replace("\\", "/")).name
    if not base or base in (".", ".."):
        raise LatticeError(f"upload {name!r}: not a usable file name")
    return base


def _unzip(data: bytes, target: Path, label: str) -> list[Path]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise LatticeError(f"{label}: not a readable zip file") from None
    members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) > MAX_ZIP_FILES:
        raise LatticeError(f"{label}: {len(members)} files is too many (at most {MAX_ZIP_FILES})")
    if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
        raise LatticeError(f"{label}: more than {MAX_ZIP_BYTES // 2**20} MB unpacked")
    out = []
    for m in members:
        parts = PurePosixPath(m.filename.replace("\\", "/")).parts
        if not parts or m.filename.startswith("/") or ".." in parts or parts[0].endswith(":"):
            raise LatticeError(f"{label}: unsafe path {m.filename!r} in the zip")
        if parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        dest = target.joinpath(*parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(zf.read(m))
        out.append(dest)
    return out


def stage_uploads(files: Iterable[Upload]) -> Staged:
    """Put uploaded files where ``Store.import_path`` can read them.

    Accepted: one JSONL/CSV file (optionally with its ``<stem>.entanglements.csv``),
    one or more Markdown/text files, or a zip of Markdown/text files (or of one
    JSONL/CSV file). Raises LatticeError for anything else; nothing is imported then.
    """
    files = list(files or [])
    if not files:
        raise LatticeError("choose at least one file to import")
    tmp = tempfile.TemporaryDirectory(prefix="lattice-import-")
    root = Path(tmp.name)
    try:
        folder = root / "upload"
        folder.mkdir()
        written: list[Path] = []
        for f in files:
            name = _safe_name(f.name)
            data = f.getvalue()
            if name.lower().endswith(".zip"):
                written += _unzip(data, folder / Path(name).stem, name)
            else:
                dest = folder / name
                if dest.exists():
                    raise LatticeError(f"two uploads are named {name!r}; rename one")
                dest.write_bytes(data)
                written.append(dest)
        edges = [p for p in written if p.name.lower().endswith(EDGES_SUFFIX)]
        data_files = [p for p in written if p.suffix.lower() in DATA_SUFFIXES and p not in edges]
        text_files = [p for p in written if p.suffix.lower() in TEXT_SUFFIXES]
        others = [p.name for p in written if p not in edges + data_files + text_files]
        if others:
            raise LatticeError(f"unsupported file(s): {', '.join(sorted(others)[:5])}; upload .jsonl, .csv, "
                               f".md/.txt files or a zip of them")
        if data_files and text_files:
            raise LatticeError("upload either one JSONL/CSV file or Markdown/text files, not both at once")
        if len(data_files) > 1:
            raise LatticeError(f"upload one JSONL/CSV file at a time (got {len(data_files)})")
        if len(edges) > 1:
            raise LatticeError("upload at most one entanglements file (<name>.entanglements.csv)")
        if data_files:
            return Staged(data_files[0], edges[0] if edges else None, tmp, data_files[0].name)
        if text_files:
            texts = root / "texts"
            texts.mkdir()
            for p in text_files:  # one flat-ish folder of text files (relative names kept)
                dest = texts / p.relative_to(folder)
                dest.parent.mkdir(parents=True, exist_ok=True)
                p.replace(dest)
            return Staged(texts, None, tmp, f"{len(text_files)} Markdown/text file(s)")
        raise LatticeError("no gems in the upload: an entanglements file needs its JSONL/CSV gems file")
    except BaseException:
        tmp.cleanup()
        raise


def issues_frame(issues: Iterable[ImportIssue], base: str | Path | None = None) -> pd.DataFrame:
    """Rejected input as a table (file shown relative to the upload folder)."""
    rows = []
    root = None if base is None else (Path(base).parent if Path(base).suffix else Path(base))
    for i in issues:
        file = str(i.file)
        if root is not None:
            try:
                file = Path(file).relative_to(root).as_posix()
            except ValueError:
                file = Path(file).name
        rows.append({"file": file, "line": i.line, "field": i.field, "problem": i.message})
    return pd.DataFrame(rows, columns=["file", "line", "field", "problem"])


def export_bytes(store: Store, name: str, fmt: str = "jsonl", include_archived: bool = False
                 ) -> tuple[bytes, bytes | None, dict]:
    """The lattice's gems as JSONL/CSV bytes, and its entanglements CSV (None if none)."""
    if fmt not in ("jsonl", "csv"):
        raise LatticeError(f"export format must be jsonl or csv, got {fmt!r}")
    with tempfile.TemporaryDirectory(prefix="lattice-export-") as d:
        out = Path(d) / f"{name}.{fmt}"
        info = store.export(name, out, include_archived=include_archived)
        edges = Path(info["entanglements_path"]).read_bytes() if info.get("entanglements_path") else None
        return out.read_bytes(), edges, info


def parse_tags(text: str) -> list[str]:
    """``"a, b; c"`` -> ``["a", "b", "c"]`` (commas or semicolons, blanks dropped)."""
    return [t.strip() for t in str(text or "").replace(";", ",").split(",") if t.strip()]


@st.cache_data(max_entries=32, show_spinner=False)
def cached_tags(url: str, name: str, version: int) -> list[str]:
    """``Store.list_tags`` of the process's store, cached per lattice version."""
    from .services import get_store
    return get_store().list_tags(name)
