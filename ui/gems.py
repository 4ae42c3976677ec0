"""Helpers of the Lattice page: the filtered gem list, edits, uploads to import, exports to
download, tags (no widgets here).

Uploads are written to a private temporary folder and handed to
``Store.import_path`` (which validates every row; all or nothing unless skip_bad). A
zip is unpacked safely (no absolute paths, no ``..``, size and count limits).
"""
from __future__ import annotations

import io
import lzma
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Protocol

import pandas as pd
import streamlit as st

from core.access import Actor
from core.engine import preset_params
from core.errors import LatticeError
from core.store import ImportFailed, ImportIssue, Store

DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv")
TEXT_SUFFIXES = (".md", ".markdown", ".txt")
UPLOAD_TYPES = ["jsonl", "ndjson", "json", "csv", "tsv", "md", "markdown", "txt", "zip"]
MAX_ZIP_FILES = 5000
MAX_ZIP_BYTES = 200 * 1024 * 1024
EDGES_SUFFIX = ".entanglements.csv"
PAGE_SIZE = 25  # gems per page of the Browse table
ARCHIVED = {"Active": False, "Archived": True, "All": None}  # the Status filter -> list_gems(archived=)
STATE_FIELDS = {"energy", "phase", "coherence", "uncertainty"}
TABLE_COLUMNS = ["id", "title", "tags", "coherence", "uncertainty", "energy", "phase", "archived", "updated_at"]


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


MAX_ZIP_DEPTH = 16  # folders deep
MAX_ZIP_NAME = 400  # characters of a member's path
_ZIP_READ = 1 << 16
# what zipfile and its decompressors raise for damaged, forged or unsupported data
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError,
               NotImplementedError, RuntimeError, KeyError, IndexError, OverflowError, struct.error,
               UnicodeDecodeError)


def _zip_members(zf: zipfile.ZipFile, label: str) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """The members to unpack, with their checked path parts (no file is written yet)."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_FILES:
        raise LatticeError(f"{label}: {len(infos)} entries is too many (at most {MAX_ZIP_FILES})")
    out, files, folders = [], set(), set()
    for m in infos:
        name = m.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if not parts or name.startswith("/") or ".." in parts or parts[0].endswith(":"):
            raise LatticeError(f"{label}: unsafe path {m.filename!r} in the zip")
        if len(parts) > MAX_ZIP_DEPTH or len(name) > MAX_ZIP_NAME:
            raise LatticeError(f"{label}: path {m.filename[:80]!r} is too deep or too long (at most "
                               f"{MAX_ZIP_DEPTH} folders, {MAX_ZIP_NAME} characters)")
        folders.update(parts[:k] for k in range(1, len(parts)))
        if m.is_dir():
            folders.add(parts)
            continue
        if parts in files:
            raise LatticeError(f"{label}: {m.filename!r} is in the zip twice")
        files.add(parts)
        if m.flag_bits & 0x1:
            raise LatticeError(f"{label}: {m.filename!r} is encrypted; upload an unencrypted zip")
        if m.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
            raise LatticeError(f"{label}: {m.filename!r} uses an unsupported compression (method "
                               f"{m.compress_type}); use deflate")
        if parts[0] == "__MACOSX" or parts[-1].startswith("."):
            continue
        out.append((m, parts))
    clash = sorted(files & folders)
    if clash:
        raise LatticeError(f"{label}: {'/'.join(clash[0])!r} is both a file and a folder in the zip")
    return out


def _unzip(data: bytes, target: Path, label: str) -> list[Path]:
    """Unpack a zip upload into ``target`` safely: paths checked first, sizes counted while
    reading (declared sizes are not trusted); any damage is a LatticeError."""
    out = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = _zip_members(zf, label)
            total = 0
            for m, parts in members:
                dest = target.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(dest, "xb") as sink:
                    while chunk := src.read(_ZIP_READ):
                        total += len(chunk)
                        if total > MAX_ZIP_BYTES:
                            raise LatticeError(f"{label}: more than {MAX_ZIP_BYTES // 2**20} MB unpacked")
                        sink.write(chunk)
                out.append(dest)
    except LatticeError:
        raise
    except _ZIP_ERRORS as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise LatticeError(f"{label}: not a readable zip file ({detail})") from None
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
    from ui.services import get_store
    return get_store().list_tags(name)


def find_gems(store: Store, name: str, tag: str, text: str, coherence: tuple[float, float], status: str,
              page: int, page_size: int = PAGE_SIZE) -> tuple[pd.DataFrame, int, int]:
    """One page of the gems matching the Browse filters (``tag`` "(any)": every tag; ``coherence``
    (min, max) on [0, 1]; ``status`` a key of :data:`ARCHIVED`). When the filter shrank the result
    below ``page``, page 1 instead. Returns ``(gems, total matches, page shown)``."""
    query = dict(tag=None if tag == "(any)" else tag, text=text.strip() or None,
                 coherence_min=coherence[0] if coherence[0] > 0 else None,
                 coherence_max=coherence[1] if coherence[1] < 1 else None,
                 archived=ARCHIVED[status], page_size=page_size)
    df, total = store.list_gems(name, page=page, **query)
    if df.empty and page > 1:
        page = 1
        df, total = store.list_gems(name, page=page, **query)
    return df, total, page


@st.cache_data(max_entries=64, show_spinner=False)
def cached_find_gems(_store: Store, url: str, name: str, version: int, tag: str, text: str,
                     coherence: tuple[float, float], status: str, page: int) -> tuple[pd.DataFrame, int, int]:
    """:func:`find_gems` of the lattice at ``version`` (every write bumps it): a rerun with the
    same filters and page asks the database nothing (at 1M gems the count alone takes 0.5 s)."""
    return find_gems(_store, name, tag, text, tuple(coherence), status, page)


def page_count(total: int, page_size: int = PAGE_SIZE) -> int:
    """Pages of ``page_size`` for ``total`` gems (at least 1)."""
    return max(1, -(-total // page_size))


def page_span(total: int, page: int, page_size: int = PAGE_SIZE) -> tuple[int, int]:
    """``(first, last)`` 1-based positions of the gems on ``page`` among ``total`` ((0, 0): none)."""
    first = (page - 1) * page_size + 1 if total else 0
    return first, min(page * page_size, total)


def browse_table(df: pd.DataFrame) -> pd.DataFrame:
    """The Browse table: the listed gems with their tags joined by commas."""
    tags = df["tags"].map(lambda t: ", ".join(t) if isinstance(t, (list, tuple)) else "")
    return df.assign(tags=tags)[TABLE_COLUMNS]


def save_edit(store: Store, name: str, gem: dict, actor: Actor, new: dict) -> list[str]:
    """Write the fields of ``new`` that differ from ``gem``; the content is checked against the
    version shown, state values against the state version shown. Returns the changed field
    names ([]: nothing changed, nothing written)."""
    changes = {k: v for k, v in new.items() if v != gem[k]}
    if changes:
        state_edit = bool(set(changes) & STATE_FIELDS)
        store.update_gem(name, gem["id"], actor, expected_version=gem["version"],
                         expected_state_version=gem["state_version"] if state_edit else None, **changes)
    return list(changes)


def import_uploads(store: Store, files: Iterable[Upload], target: str, actor: Actor, split_headings: bool,
                   skip_bad: bool, progress=None, preset: str | None = None) -> dict:
    """Stage the uploads and import them into lattice ``target`` (``Store.import_path``).

    ``preset`` (seed, memory, archive) sets the parameters of a lattice the import creates
    (``core.engine.preset_params``); an existing lattice keeps its own.

    Returns the report the Import tab shows: ``kind`` (success, warning or error), ``message``
    and ``issues`` (the rejected rows as a table, or None). A refused import wrote nothing.
    """
    staged = None
    try:
        params = None if preset is None else preset_params(preset)
        staged = stage_uploads(files)
        rep = store.import_path(target, staged.path, actor, split_headings=split_headings, skip_bad=skip_bad,
                                edges=staged.edges, progress=progress, params=params)
    except ImportFailed as exc:
        return {"kind": "error", "issues": issues_frame(exc.issues, staged.path if staged else None),
                "message": f"**Import refused, nothing was written**: {len(exc.issues)} problem(s) in "
                           f"{staged.description if staged else 'the upload'}. Fix them, or tick *Skip bad "
                           f"rows* to import the rest."}
    except LatticeError as exc:
        return {"kind": "error", "issues": None, "message": f"Import refused, nothing was written: {exc}"}
    else:
        msg = (f"Imported **{rep.imported}** gem(s) and {rep.edges} entanglement(s) from "
               f"{staged.description} into lattice **{rep.lattice}** (version {rep.version}).")
        if preset is not None:
            msg += f" The new lattice uses the **{preset}** preset (half-life at E = 1: {params.half_life_text()})."
        if rep.skipped:
            msg += f" **{len(rep.skipped)} bad row(s) were skipped** (listed below)."
        return {"kind": "warning" if rep.skipped else "success", "message": msg,
                "issues": issues_frame(rep.skipped, staged.path) if rep.skipped else None}
    finally:
        if staged is not None:
            staged.cleanup()
