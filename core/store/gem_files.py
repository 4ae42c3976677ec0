"""Gem files: import parsers (JSONL, CSV, a folder of Markdown/text files) and exporters.

Parsers turn a file into validated :class:`~core.store.gem_records.GemRecord` s and a
list of :class:`ImportIssue` s (file, line, field, message); they never touch the
database. The store decides: all-or-nothing (any issue fails the import) or skip bad rows.

The fields are those of :mod:`core.store.gem_records`. In CSV, ``tags`` is ``a;b`` (or a JSON list).
Entanglements travel in a side file ``source,target,weight`` (``<stem>.entanglements.csv``).
"""
from __future__ import annotations

import csv
import io as _io
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from core.errors import LatticeError
from core.store.errors import ImportIssue
from core.engine.params import STATE_DEFAULTS
from core.store.gem_records import FIELDS, BadField, EdgeRecord, GemRecord, as_number, validate_record

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}


def _add_record(raw: dict[str, Any], path: Path, line: int, out: list[GemRecord], issues: list[ImportIssue],
                from_text: bool = False) -> None:
    """Validate one parsed row: a good one goes to ``out``, a bad one becomes an issue at its file and line."""
    try:
        out.append(validate_record(raw, from_text=from_text, file=str(path), line=line))
    except BadField as bad:
        issues.append(ImportIssue(str(path), line, bad.field, bad.message))


# ------------------------------------------------------------------ parsers
def _decode_lines(path: Path, issues: list[ImportIssue]) -> list[tuple[int, str]] | None:
    lines = []
    for no, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            lines.append((no, raw.decode("utf-8-sig" if no == 1 else "utf-8").rstrip("\r")))
        except UnicodeDecodeError:
            issues.append(ImportIssue(str(path), no, "-", "not valid UTF-8 text"))
            lines.append((no, ""))
    return lines


def _parse_jsonl(path: Path, issues: list[ImportIssue]) -> list[GemRecord]:
    out = []
    for no, text in _decode_lines(path, issues):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            issues.append(ImportIssue(str(path), no, "-", f"malformed JSON ({getattr(exc, 'msg', exc)})"))
            continue
        if not isinstance(raw, dict):
            issues.append(ImportIssue(str(path), no, "-", f"expected a JSON object, got {type(raw).__name__}"))
            continue
        _add_record(raw, path, no, out, issues)
    return out


def _read_text(path: Path, issues: list[ImportIssue]) -> str | None:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.append(ImportIssue(str(path), data[:exc.start].count(b"\n") + 1, "-", "not valid UTF-8 text"))
        return None


def _parse_csv(path: Path, issues: list[ImportIssue]) -> list[GemRecord]:
    text = _read_text(path, issues)
    if text is None:
        return []
    reader = csv.DictReader(_io.StringIO(text, newline=""), restkey="\x00extra")
    if not reader.fieldnames:
        issues.append(ImportIssue(str(path), 1, "-", "empty file: expected a header line with a 'content' column"))
        return []
    if "content" not in reader.fieldnames:
        issues.append(ImportIssue(str(path), 1, "content", f"no 'content' column in the header {reader.fieldnames}"))
        return []
    out = []
    start = 2
    try:
        for row in reader:
            line = start
            start = reader.line_num + 1
            if "\x00extra" in row:
                issues.append(ImportIssue(str(path), line, "-", "more cells than header columns"))
                continue
            if any(v is None for v in row.values()):
                issues.append(ImportIssue(str(path), line, "-", "fewer cells than header columns"))
                continue
            _add_record(dict(row), path, line, out, issues, from_text=True)
    except csv.Error as exc:
        issues.append(ImportIssue(str(path), reader.line_num, "-", f"malformed CSV ({exc})"))
    return out


_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")[:60] or "section"


def _parse_text_file(path: Path, rel: str, split_headings: bool, issues: list[ImportIssue]) -> list[GemRecord]:
    text = _read_text(path, issues)
    if text is None:
        return []
    lines = text.splitlines()
    sections: list[tuple[int, str | None, list[str]]] = [(1, None, [])]  # (line, heading, body)
    in_fence = False
    for no, line in enumerate(lines, start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
        m = None if in_fence or path.suffix == ".txt" else _HEADING.match(line)
        if m and split_headings:
            sections.append((no, m.group(1), []))
        else:
            sections[-1][2].append(line)
    stem_id = rel.rsplit(".", 1)[0]
    if not split_headings or len(sections) == 1:  # no heading: the whole file is one gem
        heading = next((m.group(1) for m in map(_HEADING.match, lines) if m), None) if path.suffix != ".txt" else None
        sections = [(1, heading or path.stem, lines)]
        ids = [stem_id]
    else:
        if not "\n".join(sections[0][2]).strip():
            sections = sections[1:]
        seen: dict[str, int] = {}
        ids = []
        for _, heading, _ in sections:
            slug = _slug(heading) if heading else "intro"
            seen[slug] = seen.get(slug, 0) + 1
            ids.append(f"{stem_id}#{slug}" + (f"-{seen[slug]}" if seen[slug] > 1 else ""))
    out = []
    if not sections:
        issues.append(ImportIssue(str(path), 1, "content", "file is empty"))
    for (no, heading, body), gid in zip(sections, ids):
        raw = {"id": gid, "title": heading or path.stem, "content": "\n".join(body).strip(), "source": rel}
        if not raw["content"]:
            issues.append(ImportIssue(str(path), no, "content", "file is empty" if not split_headings else
                                      f"section {heading!r} has no text"))
            continue
        _add_record(raw, path, no, out, issues)
    return out


def parse_path(path: str | os.PathLike, *, split_headings: bool = False) -> tuple[list[GemRecord], list[ImportIssue]]:
    """Parse a ``.jsonl``/``.csv`` file or a folder of ``.md``/``.txt`` files.

    Returns the valid records and the issues (one per bad row), including duplicate ids
    within the input. Never raises for bad content; raises LatticeError for a missing path
    or an unsupported file type.
    """
    p = Path(path)
    if not p.exists():
        raise LatticeError(f"{p}: no such file or folder")
    issues: list[ImportIssue] = []
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise LatticeError(f"{p}: no .md, .markdown or .txt files in this folder")
        records = []
        for f in files:
            records += _parse_text_file(f, f.relative_to(p).as_posix(), split_headings, issues)
    elif p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        records = _parse_jsonl(p, issues)
    elif p.suffix.lower() in (".csv", ".tsv"):
        records = _parse_csv(p, issues)
    elif p.suffix.lower() in TEXT_SUFFIXES:
        records = _parse_text_file(p, p.name, split_headings, issues)
    else:
        raise LatticeError(f"{p}: unsupported file type {p.suffix!r}; use .jsonl, .csv, or a folder of .md/.txt files")
    seen: dict[str, GemRecord] = {}
    unique = []
    for rec in records:
        if rec.id is not None and rec.id in seen:
            first = seen[rec.id]
            issues.append(ImportIssue(rec.file, rec.line, "id", f"duplicate id {rec.id!r} (first at line {first.line})"))
            continue
        if rec.id is not None:
            seen[rec.id] = rec
        unique.append(rec)
    issues.sort(key=lambda i: (i.file, i.line))
    return unique, issues


def edges_path_for(path: str | os.PathLike) -> Path:
    """The entanglement side file of an export/import file: ``<stem>.entanglements.csv``."""
    p = Path(path)
    return p.with_name(p.stem + ".entanglements.csv")


def parse_edges(path: str | os.PathLike) -> tuple[list[EdgeRecord], list[ImportIssue]]:
    """Parse ``source,target,weight`` rows (weights in (0, 1])."""
    p = Path(path)
    if not p.exists():
        raise LatticeError(f"{p}: no such entanglement file")
    issues: list[ImportIssue] = []
    text = _read_text(p, issues)
    out: list[EdgeRecord] = []
    if text is None:
        return out, issues
    reader = csv.DictReader(_io.StringIO(text, newline=""))
    missing = {"source", "target", "weight"} - set(reader.fieldnames or [])
    if missing:
        return out, [ImportIssue(str(p), 1, sorted(missing)[0], "column missing; expected source,target,weight")]
    line = 2
    try:
        for row in reader:
            this, line = line, reader.line_num + 1
            try:
                w = as_number("weight", row["weight"], True)
                if not 0.0 < w <= 1.0:
                    raise BadField("weight", f"got {w!r}; must be in (0, 1]")
                src, dst = (row["source"] or "").strip(), (row["target"] or "").strip()
                if not src or not dst:
                    raise BadField("source" if not src else "target", "is empty")
                if src == dst:
                    raise BadField("target", f"a gem cannot be entangled with itself ({src!r})")
                out.append(EdgeRecord(src, dst, w, str(p), this))
            except BadField as bad:
                issues.append(ImportIssue(str(p), this, bad.field, bad.message))
    except csv.Error as exc:
        issues.append(ImportIssue(str(p), reader.line_num, "-", f"malformed CSV ({exc})"))
    return out, issues


# ----------------------------------------------------------------- exporters
def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    os.replace(tmp, path)


def write_gems(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Write gems (dicts with :data:`FIELDS`) as JSONL or CSV by the file suffix."""
    p = Path(path)
    rows = list(rows)
    if p.suffix.lower() == ".csv":
        buf = _io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(FIELDS), lineterminator="\n")
        w.writeheader()
        for r in rows:
            # floats via repr: exact round trip
            tags = r["tags"] or []
            plain = not any(";" in t or "," in t for t in tags) and not (tags and tags[0].lstrip().startswith("["))
            w.writerow({**{k: r[k] for k in FIELDS}, "tags": ";".join(tags) if plain else json.dumps(tags),
                        **{k: repr(float(r[k])) for k in STATE_DEFAULTS}})
        _atomic_write(p, buf.getvalue())
    elif p.suffix.lower() in (".jsonl", ".ndjson"):
        _atomic_write(p, "".join(json.dumps({k: r[k] for k in FIELDS}, ensure_ascii=False) + "\n" for r in rows))
    else:
        raise LatticeError(f"{p}: unsupported export type {p.suffix!r}; use .jsonl or .csv")
    return len(rows)


def write_edges(path: str | os.PathLike, edges: Sequence[tuple[str, str, float]]) -> None:
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["source", "target", "weight"])
    for a, b, wt in edges:
        w.writerow([a, b, repr(float(wt))])
    _atomic_write(Path(path), buf.getvalue())
