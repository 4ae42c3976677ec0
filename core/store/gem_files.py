"""Gem files: import parsers (JSONL, CSV, a folder of Markdown/text files) and exporters.

Long file: the parsers and the exporters of every gem file format, which share the CSV escaping,
the size limits and the batched validation.

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
from typing import Any, Callable, Iterable, Iterator, Sequence

from core.errors import LatticeError, ValidationError
from core.store.errors import ImportIssue
from core.engine.params import STATE_DEFAULTS
from core.store.gem_records import (FIELDS, TIME_FIELDS, BadField, EdgeRecord, GemRecord, as_number, max_gem_bytes,
                                    too_large_message, validate_batch, validate_record)

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}


CSV_DANGER = "=+-@\t\r"  # a spreadsheet runs a cell that starts with one of these as a formula
_NEEDS_QUOTE = re.compile(r"'*[=+\-@\t\r]")
_QUOTED = re.compile(r"'+[=+\-@\t\r]")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def csv_safe(cell: str) -> str:
    """A CSV cell a spreadsheet will not run (OWASP: a ``'`` before a leading ``= + - @``, tab or CR).

    The rule, exactly reversed by :func:`csv_unsafe`: a cell that is (any run of ``'`` and
    then) one of :data:`CSV_DANGER` gets one more ``'`` in front; a plain number (``-0.5``)
    is left alone.
    """
    if _NEEDS_QUOTE.match(cell) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def csv_unsafe(cell: str) -> str:
    """Undo :func:`csv_safe`: a cell of ``'`` s and then a :data:`CSV_DANGER` character loses one ``'``
    (so ``'tis`` stays ``'tis``, ``'=1+1`` reads ``=1+1``, ``''=x`` reads ``'=x``)."""
    return cell[1:] if _QUOTED.match(cell) else cell


def _record(raw: dict[str, Any], path: Path, line: int, issues: list[ImportIssue],
            from_text: bool = False) -> GemRecord | None:
    """Validate one parsed row: the record, or None after adding an issue at its file and line."""
    try:
        return validate_record(raw, from_text=from_text, file=str(path), line=line)
    except BadField as bad:
        issues.append(ImportIssue(str(path), line, bad.field, bad.message))
        return None


BATCH_ROWS = 1000  # rows of a JSONL/CSV file validated together (column-wise state checks)
BATCH_CHARS = 4 * 2**20  # ... or fewer, once their text reaches this many characters (bounded memory)


class _Batch:
    """Parsed rows of one file waiting for :func:`validate_batch`; ``full`` says when to flush."""

    def __init__(self, path: Path, from_text: bool):
        self.path, self.from_text = path, from_text
        self.raws: list[dict[str, Any]] = []
        self.lines: list[int] = []
        self.chars = 0

    def add(self, raw: dict[str, Any], line: int, chars: int) -> bool:
        """Queue a row; True when the batch should be flushed."""
        self.raws.append(raw)
        self.lines.append(line)
        self.chars += chars
        return len(self.raws) >= BATCH_ROWS or self.chars >= BATCH_CHARS

    def flush(self, issues: list[ImportIssue]) -> list[GemRecord]:
        """The valid records of the queued rows (in order); an issue for each bad one."""
        out = []
        for line, rec in zip(self.lines, validate_batch(self.raws, self.lines, from_text=self.from_text,
                                                        file=str(self.path))):
            if isinstance(rec, BadField):
                issues.append(ImportIssue(str(self.path), line, rec.field, rec.message))
            else:
                out.append(rec)
        self.raws, self.lines, self.chars = [], [], 0
        return out


# ------------------------------------------------------------------ parsers
def _line_cap() -> int:
    """The longest JSONL line read: a gem at the size limit with every character escaped, and room."""
    return 8 * max_gem_bytes() + 65536


def _iter_lines(path: Path, issues: list[ImportIssue]) -> Iterator[tuple[int, str]]:
    """The file's lines, streamed (a line longer than :func:`_line_cap` is skipped unread as an issue)."""
    cap = _line_cap()
    with open(path, "rb") as f:
        no = 0
        while True:
            raw = f.readline(cap + 1)
            if not raw:
                return
            no += 1
            if len(raw) > cap and not raw.endswith(b"\n"):
                while True:  # skip the rest of this line without holding it
                    more = f.readline(1 << 20)
                    if not more or more.endswith(b"\n"):
                        break
                issues.append(ImportIssue(str(path), no, "content", f"the line is longer than {cap} bytes: "
                                          + too_large_message()))
                continue
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            try:
                yield no, raw.decode("utf-8-sig" if no == 1 else "utf-8").rstrip("\r")
            except UnicodeDecodeError:
                issues.append(ImportIssue(str(path), no, "-", "not valid UTF-8 text"))


CHAT_KEYS = ("time", "speaker", "text")  # a chat transcript row; "session" is optional
FORMATS = ("auto", "gems", "chat")  # what a JSONL file holds: detected, gem rows, a chat transcript


def _first_words(text: str, words: int = 8, limit: int = 72) -> str:
    parts = text.split()
    head = " ".join(parts[:words])
    return (head[:limit].rstrip() + "...") if len(parts) > words or len(head) > limit else head


def chat_row(raw: dict[str, Any], path: Path, line: int) -> dict[str, Any]:
    """A chat transcript row (``time``, ``speaker``, ``text``, optional ``session``) as gem fields:
    content = text, title = "speaker: first words", tags [speaker, session], source
    "FILE#session", id "session-LINE" (stable: the file's line), created_at = time.
    A session-less transcript is one session named after the file. BadField for a bad row."""
    unknown = sorted(set(raw) - {*CHAT_KEYS, "session"})
    if unknown:
        raise BadField(str(unknown[0]), "unknown field in a chat transcript row; known: time, speaker, text, session")
    for key in CHAT_KEYS:
        if raw.get(key) is None:
            raise BadField(key, "missing (every chat transcript row needs time, speaker and text)")
    labels = {}
    for key in ("speaker", "session"):
        value = raw.get(key, path.stem if key == "session" else None)
        if not isinstance(value, str) or not value.strip():
            raise BadField(key, f"expected a non-empty name, got {value!r}")
        labels[key] = value.strip()
    if not isinstance(raw["text"], str):
        raise BadField("text", f"expected text, got {type(raw['text']).__name__}")
    speaker, session = labels["speaker"], labels["session"]
    return {"id": f"{session}-{line}", "title": f"{speaker}: {_first_words(raw['text'])}", "content": raw["text"],
            "tags": [speaker, session] if speaker != session else [speaker], "source": f"{path.name}#{session}",
            "created_at": raw["time"]}


def _iter_jsonl(path: Path, issues: list[ImportIssue], fmt: str = "auto") -> Iterator[GemRecord]:
    """Gem rows, or (``fmt`` "chat", or "auto" and a first row with time, speaker and text but no
    content) the messages of a chat transcript, one gem each (:func:`chat_row`)."""
    batch = _Batch(path, from_text=False)
    chat: bool | None = {"chat": True, "gems": False}.get(fmt)
    for no, text in _iter_lines(path, issues):
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
        if chat is None:  # the first row's keys decide
            chat = set(CHAT_KEYS) <= set(raw) and "content" not in raw
        if chat:
            try:
                raw = chat_row(raw, path, no)
            except BadField as bad:
                issues.append(ImportIssue(str(path), no, bad.field, bad.message))
                continue
        if batch.add(raw, no, len(text)):
            yield from batch.flush(issues)
    yield from batch.flush(issues)


def _bad_utf8_line(path: Path) -> int:
    """The first line of ``path`` that is not UTF-8 (streamed)."""
    with open(path, "rb") as f:
        for no, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8-sig" if no == 1 else "utf-8")
            except UnicodeDecodeError:
                return no
    return 1


def _read_text(path: Path, issues: list[ImportIssue]) -> str | None:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.append(ImportIssue(str(path), data[:exc.start].count(b"\n") + 1, "-", "not valid UTF-8 text"))
        return None


def _allow_csv_cells() -> None:
    """Let the csv module read a cell as large as a gem may be (its default stops at 128 KiB)."""
    needed = 4 * max_gem_bytes() + 65536
    if csv.field_size_limit() < needed:
        csv.field_size_limit(needed)


def _iter_csv(path: Path, issues: list[ImportIssue]) -> Iterator[GemRecord]:
    """CSV rows, streamed; every cell goes through :func:`csv_unsafe` (the export's escaping undone)."""
    _allow_csv_cells()
    batch = _Batch(path, from_text=True)
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, restkey="\x00extra")
        try:
            try:
                fieldnames = reader.fieldnames
            except csv.Error as exc:
                issues.append(ImportIssue(str(path), 1, "-", f"malformed CSV ({exc})"))
                return
            if not fieldnames:
                issues.append(ImportIssue(str(path), 1, "-", "empty file: expected a header line with a 'content' column"))
                return
            if "content" not in fieldnames:
                issues.append(ImportIssue(str(path), 1, "content", f"no 'content' column in the header {fieldnames}"))
                return
            start = 2
            for row in reader:
                line = start
                start = reader.line_num + 1
                if "\x00extra" in row:
                    issues.append(ImportIssue(str(path), line, "-", "more cells than header columns"))
                    continue
                if any(v is None for v in row.values()):
                    issues.append(ImportIssue(str(path), line, "-", "fewer cells than header columns"))
                    continue
                # csv_unsafe inlined: only a cell that starts with ' can change (a call per cell cost more)
                cells = {k: v[1:] if v[:1] == "'" and _QUOTED.match(v) else v for k, v in row.items()}
                if batch.add(cells, line, sum(map(len, cells.values()))):
                    yield from batch.flush(issues)
            yield from batch.flush(issues)
        except csv.Error as exc:
            detail = too_large_message() if "field larger than field limit" in str(exc) else f"malformed CSV ({exc})"
            issues.append(ImportIssue(str(path), reader.line_num, "-", detail))
            yield from batch.flush(issues)  # the rows before the bad one, as when each was yielded at once
        except UnicodeDecodeError:
            issues.append(ImportIssue(str(path), _bad_utf8_line(path), "-", "not valid UTF-8 text"))
            yield from batch.flush(issues)


_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")[:60] or "section"


def _parse_text_file(path: Path, rel: str, split_headings: bool, issues: list[ImportIssue]) -> list[GemRecord]:
    size = path.stat().st_size
    if size > max_gem_bytes() * (64 if split_headings else 1) + 4096:  # not read: too large to be gems
        issues.append(ImportIssue(str(path), 1, "content", too_large_message(size)))
        return []
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
        rec = _record(raw, path, no, issues)
        if rec is not None:
            out.append(rec)
    return out


def check_path(path: str | os.PathLike) -> str:
    """The kind of an import path (``folder``, ``jsonl``, ``csv`` or ``text``); LatticeError for a
    missing path, an unsupported file type or a folder without text files."""
    p = Path(path)
    if not p.exists():
        raise LatticeError(f"{p}: no such file or folder")
    if p.is_dir():
        if not any(f.is_file() and f.suffix.lower() in TEXT_SUFFIXES for f in p.rglob("*")):
            raise LatticeError(f"{p}: no .md, .markdown or .txt files in this folder")
        return "folder"
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in TEXT_SUFFIXES:
        return "text"
    raise LatticeError(f"{p}: unsupported file type {p.suffix!r}; use .jsonl, .csv, or a folder of .md/.txt files")


def check_format(path: str | os.PathLike, fmt: str) -> str:
    """``fmt`` checked against the path: one of :data:`FORMATS`; "chat" only for a JSONL file."""
    if fmt not in FORMATS:
        raise ValidationError("format", f"got {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "chat" and check_path(path) != "jsonl":
        raise ValidationError("format", f"{path}: a chat transcript is a .jsonl file of rows with time, speaker, "
                                        "text")
    return fmt


def iter_records(path: str | os.PathLike, issues: list[ImportIssue], *,
                 split_headings: bool = False, fmt: str = "auto") -> Iterator[GemRecord]:
    """Stream the valid records of a ``.jsonl``/``.csv`` file or a folder of ``.md``/``.txt`` files
    (a bad row adds its issue to ``issues`` instead); memory does not grow with the file.
    Duplicate ids are not checked here (the importer does it in one pass over the ids).
    ``fmt``: what a JSONL file holds (:data:`FORMATS`; "auto" detects a chat transcript)."""
    p = Path(path)
    kind = check_path(p)
    check_format(p, fmt)
    if kind == "folder":
        for f in sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES):
            yield from _parse_text_file(f, f.relative_to(p).as_posix(), split_headings, issues)
    elif kind == "jsonl":
        yield from _iter_jsonl(p, issues, fmt)
    elif kind == "csv":
        yield from _iter_csv(p, issues)
    else:
        yield from _parse_text_file(p, p.name, split_headings, issues)


def parse_path(path: str | os.PathLike, *, split_headings: bool = False) -> tuple[list[GemRecord], list[ImportIssue]]:
    """Parse a whole import path into a list: the valid records and the issues (one per bad row),
    including duplicate ids within the input. Never raises for bad content; raises LatticeError
    for a missing path or an unsupported file type. (The store streams with :func:`iter_records`.)"""
    issues: list[ImportIssue] = []
    seen: dict[str, GemRecord] = {}
    unique = []
    for rec in iter_records(path, issues, split_headings=split_headings):
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
    _allow_csv_cells()
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
                src, dst = csv_unsafe((row["source"] or "").strip()), csv_unsafe((row["target"] or "").strip())
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
def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through ``write(file)`` to a temporary file beside ``path``, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _csv_tags(tags: list[str]) -> str:
    plain = not any(";" in t or "," in t for t in tags) and not (tags and tags[0].lstrip().startswith("["))
    return ";".join(tags) if plain else json.dumps(tags)


def write_gems(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    """Write gems (dicts with :data:`FIELDS`; ``created_at``/``state_at`` optional: ISO text) as
    JSONL or CSV by the file suffix.

    JSONL is the lossless format. CSV cells that a spreadsheet would run as a formula are
    escaped with a leading ``'`` (:func:`csv_safe`); the CSV importer undoes exactly that, so
    a CSV export also imports back to the same gems. Floats are written via ``repr`` (exact).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise LatticeError(f"{p}: unsupported export type {p.suffix!r}; use .jsonl or .csv")
    count = 0

    def write(f: Any) -> None:
        nonlocal count
        if suffix == ".csv":
            w = csv.writer(f, lineterminator="\r\n")  # RFC 4180; also quotes a lone CR in a cell
            w.writerow(FIELDS)
            for r in rows:
                cells = {**{k: r.get(k) if k in TIME_FIELDS else r[k] for k in FIELDS},
                         "tags": _csv_tags(r["tags"] or []), **{k: repr(float(r[k])) for k in STATE_DEFAULTS}}
                w.writerow([csv_safe("" if cells[k] is None else str(cells[k])) for k in FIELDS])
                count += 1
        else:
            for r in rows:  # the times only when known (an absent created_at: created at import)
                f.write(json.dumps({k: r[k] for k in FIELDS if k not in TIME_FIELDS or r.get(k) is not None},
                                   ensure_ascii=False) + "\n")
                count += 1

    _atomic_write(p, write)
    return count


def write_edges(path: str | os.PathLike, edges: Sequence[tuple[str, str, float]]) -> None:
    def write(f: Any) -> None:
        w = csv.writer(f, lineterminator="\r\n")  # RFC 4180; also quotes a lone CR in a cell
        w.writerow(["source", "target", "weight"])
        for a, b, wt in edges:
            w.writerow([csv_safe(a), csv_safe(b), repr(float(wt))])

    _atomic_write(Path(path), write)
