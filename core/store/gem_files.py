"""Import parsers (JSONL, CSV, a folder of Markdown/text files) and exporters.

Parsers turn a file into validated :class:`GemRecord` s and a list of
:class:`ImportIssue` s (file, line, field, message); they never touch the database. The
store decides: all-or-nothing (any issue fails the import) or skip bad rows.

Import fields: ``content`` (required), optional ``id``, ``title``, ``tags``, ``source``,
``energy``, ``phase``, ``coherence``, ``uncertainty``. Unknown fields are an error (a
typo must not be silently dropped). In CSV, ``tags`` is ``a;b`` (or a JSON list).
Entanglements travel in a side file ``source,target,weight`` (``<stem>.entanglements.csv``).
"""
from __future__ import annotations

import csv
import io as _io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from core.errors import LatticeError
from core.store.errors import ImportIssue

FIELDS = ("id", "title", "content", "tags", "source", "energy", "phase", "coherence", "uncertainty")
_FIELD_SET = frozenset(FIELDS)
STATE_DEFAULTS = {"energy": 1.0, "phase": 0.0, "coherence": 1.0, "uncertainty": 0.1}
TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
MAX_ID = 200
MAX_TITLE = 500


@dataclass
class GemRecord:
    """A validated gem ready to insert (``id`` None: the store assigns one)."""

    content: str
    id: str | None = None
    title: str = ""
    tags: list[str] = field(default_factory=list)
    source: str = ""
    energy: float = 1.0
    phase: float = 0.0
    coherence: float = 1.0
    uncertainty: float = 0.1
    file: str = ""
    line: int = 0


@dataclass
class EdgeRecord:
    source: str
    target: str
    weight: float
    file: str = ""
    line: int = 0


class _Bad(Exception):
    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field, self.message = field_name, message


def _number(name: str, value: Any, from_text: bool) -> float:
    if type(value) is float and math.isfinite(value):  # the common case, first
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Bad(name, f"expected a number, got {type(value).__name__} {value!r}")
    if isinstance(value, str):
        if not from_text:
            raise _Bad(name, f"expected a number, got the string {value!r}")
        try:
            value = float(value.strip())
        except ValueError:
            raise _Bad(name, f"expected a number, got {value!r}") from None
    try:
        value = float(value)
    except OverflowError:
        raise _Bad(name, "number too large") from None
    if not math.isfinite(value):
        raise _Bad(name, f"got {value!r}; must be a finite number")
    return value


def _check_state(values: dict[str, float]) -> None:
    if values["energy"] <= 0:
        raise _Bad("energy", f"got {values['energy']!r}; energy must be > 0")
    for name in ("coherence", "uncertainty"):
        if not 0.0 <= values[name] <= 1.0:
            raise _Bad(name, f"got {values[name]!r}; must be in [0, 1]")


def _text(name: str, value: Any, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise _Bad(name, f"expected text, got {type(value).__name__} {value!r}")
    if "\x00" in value:
        raise _Bad(name, "contains a NUL character")
    if not value.isascii():  # only non-ASCII text can hold a lone surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Bad(name, "contains an invalid Unicode escape (a lone surrogate)") from None
    if limit and len(value) > limit:
        raise _Bad(name, f"longer than {limit} characters")
    return value


def _tags(value: Any, from_text: bool) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if from_text and text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise _Bad("tags", f"not a valid JSON list: {text!r}") from None
        else:
            return [t.strip() for t in re.split(r"[;,]", text) if t.strip()]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise _Bad("tags", f"expected a list of strings (or 'a;b'), got {value!r}")
    return [_text("tags", t, 200).strip() for t in value if t.strip()]


def validate_record(raw: dict[str, Any], *, from_text: bool = False, file: str = "", line: int = 0) -> GemRecord:
    """Validate one raw row (a dict of import fields) into a :class:`GemRecord`.

    ``from_text``: values came from CSV cells (numbers as text, empty cell = missing).
    Raises ``_Bad(field, message)``; :func:`_add_record` turns it into an ImportIssue.
    """
    unknown = sorted(raw.keys() - _FIELD_SET)
    if unknown:
        raise _Bad(str(unknown[0]), f"unknown field; known fields are {', '.join(FIELDS)}")
    if from_text:
        raw = {k: v for k, v in raw.items() if v is not None and (not isinstance(v, str) or v.strip() != "")}
    else:
        raw = {k: v for k, v in raw.items() if v is not None}
    if "content" not in raw:
        raise _Bad("content", "missing (every gem needs its text in 'content')")
    content = _text("content", raw["content"]).strip()
    if not content:
        raise _Bad("content", "is empty")
    gid = raw.get("id")
    if gid is not None:
        if isinstance(gid, int) and not isinstance(gid, bool):
            gid = str(gid)
        gid = _text("id", gid, MAX_ID).strip()
        if not gid:
            raise _Bad("id", "is empty")
    title = _text("title", raw.get("title", ""), MAX_TITLE).strip()
    if not title:
        title = content.splitlines()[0].strip().lstrip("#").strip()[:80]
    state = {k: _number(k, raw[k], from_text) if k in raw else d for k, d in STATE_DEFAULTS.items()}
    _check_state(state)
    return GemRecord(content=content, id=gid, title=title, tags=_tags(raw.get("tags"), from_text),
                     source=_text("source", raw.get("source", ""), 500).strip(), file=file, line=line, **state)


def check_state_values(values: dict[str, Any]) -> dict[str, float]:
    """Validate a partial state edit (numbers only); raise ValidationError naming the field."""
    from core.errors import ValidationError
    out = {}
    try:
        for k, v in values.items():
            out[k] = _number(k, v, from_text=False)
        merged = {**STATE_DEFAULTS, **out}
        _check_state(merged)
    except _Bad as bad:
        raise ValidationError(bad.field, bad.message) from None
    return out


def record_or_error(raw: dict[str, Any]) -> GemRecord:
    """Validate a record given through the API; raise ValidationError naming the field."""
    from core.errors import ValidationError
    try:
        return validate_record(raw)
    except _Bad as bad:
        raise ValidationError(bad.field, bad.message) from None


def _add_record(raw: dict[str, Any], path: Path, line: int, out: list[GemRecord], issues: list[ImportIssue],
                from_text: bool = False) -> None:
    """Validate one parsed row: a good one goes to ``out``, a bad one becomes an issue at its file and line."""
    try:
        out.append(validate_record(raw, from_text=from_text, file=str(path), line=line))
    except _Bad as bad:
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
                w = _number("weight", row["weight"], True)
                if not 0.0 < w <= 1.0:
                    raise _Bad("weight", f"got {w!r}; must be in (0, 1]")
                src, dst = (row["source"] or "").strip(), (row["target"] or "").strip()
                if not src or not dst:
                    raise _Bad("source" if not src else "target", "is empty")
                if src == dst:
                    raise _Bad("target", f"a gem cannot be entangled with itself ({src!r})")
                out.append(EdgeRecord(src, dst, w, str(p), this))
            except _Bad as bad:
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
