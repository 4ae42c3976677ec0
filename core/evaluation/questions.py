"""Evaluation sets: questions with the time they are asked and the gems that answer them.

Format (JSONL, one object per line; docs in the README, "Evaluating retrieval"):

    {"id": "emily-q1", "question": "What painters did you recommend to me?",
     "asked_at": "2023-05-07T12:00:00Z", "evidence": ["Emily-20230429-02"],
     "category": "recommendation", "scope": "Emily", "answer": "..."}

``question`` (text) and ``asked_at`` (ISO 8601 with a time zone, or a number: lattice time)
and ``evidence`` (list of gem ids, may be empty: such a question is reported but kept out
of the averages) are required; ``id`` (default ``q<line>``), ``category`` (default
``all``), ``scope`` (a tag: only gems carrying it are candidates) and ``answer`` are optional.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

from core.errors import ValidationError

MAX_QUESTIONS = 100_000
MAX_LINE_BYTES = 1 << 20
_FIELDS = {"id", "question", "asked_at", "evidence", "category", "scope", "answer"}


@dataclass(frozen=True)
class EvalQuestion:
    """One question of an evaluation set. ``asked_at`` is a timezone-aware datetime or a
    lattice time (float, in the lattice's time unit)."""

    id: str
    question: str
    asked_at: datetime | float
    evidence: tuple[str, ...]
    category: str = "all"
    scope: str | None = None
    answer: str | None = None


@dataclass(frozen=True)
class QuestionSet:
    """A validated evaluation set and the sha256 of its canonical form (for reproducible runs)."""

    questions: tuple[EvalQuestion, ...]
    sha256: str
    source: str = ""

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self):
        return iter(self.questions)

    @property
    def categories(self) -> list[str]:
        return sorted({q.category for q in self.questions})


def parse_time(value: Any, where: str) -> datetime | float:
    """An ISO 8601 instant with a zone, or a finite number (lattice time); ValidationError otherwise."""
    if isinstance(value, bool):
        raise ValidationError("asked_at", f"{where}: got {value!r}; give an ISO 8601 time with a zone or a number")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValidationError("asked_at", f"{where}: got {value!r}; must be a finite lattice time")
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("asked_at", f"{where}: got {value!r}; give an ISO 8601 time with a zone "
                                          "(2023-05-07T12:00:00Z) or a lattice time number")
    text = value.strip()
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise ValidationError("asked_at", f"{where}: {value!r} is not an ISO 8601 time "
                                          "(for example 2023-05-07T12:00:00Z)") from None
    if when.tzinfo is None:
        raise ValidationError("asked_at", f"{where}: {value!r} has no time zone; add Z (UTC) or +hh:mm")
    return when


def _question(raw: Any, line: int, source: str) -> EvalQuestion:
    where = f"{source}:{line}"
    if not isinstance(raw, dict):
        raise ValidationError("question", f"{where}: each line must be a JSON object")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ValidationError(unknown[0], f"{where}: unknown field; known fields are {', '.join(sorted(_FIELDS))}")
    text = raw.get("question")
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("question", f"{where}: the question text is missing or empty")
    if "asked_at" not in raw:
        raise ValidationError("asked_at", f"{where}: missing; when is the question asked?")
    evidence = raw.get("evidence")
    if not isinstance(evidence, list) or not all(isinstance(e, str) and e for e in evidence):
        raise ValidationError("evidence", f"{where}: must be a list of gem ids (strings; [] when nothing answers it)")
    for name in ("id", "category", "scope", "answer"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise ValidationError(name, f"{where}: must be a string")
    return EvalQuestion(id=raw.get("id") or f"q{line}", question=text.strip(),
                        asked_at=parse_time(raw["asked_at"], where), evidence=tuple(dict.fromkeys(evidence)),
                        category=raw.get("category") or "all", scope=raw.get("scope") or None,
                        answer=raw.get("answer"))


def question_set(rows: Iterable[dict], source: str = "questions") -> QuestionSet:
    """Validate question objects (as a JSONL file holds them) into a :class:`QuestionSet`."""
    return _build([(line, _question(raw, line, source)) for line, raw in enumerate(rows, start=1)], source)


def _build(numbered: list[tuple[int, EvalQuestion]], source: str) -> QuestionSet:
    if not numbered:
        raise ValidationError("questions", f"{source}: no questions")
    if len(numbered) > MAX_QUESTIONS:
        raise ValidationError("questions", f"{source}: more than {MAX_QUESTIONS} questions; split the set")
    seen: set[str] = set()
    for line, q in numbered:
        if q.id in seen:
            raise ValidationError("id", f"{source}:{line}: duplicate question id {q.id!r}")
        seen.add(q.id)
    questions = [q for _, q in numbered]
    canonical = json.dumps([[q.id, q.question, q.asked_at.isoformat() if isinstance(q.asked_at, datetime)
                             else q.asked_at, list(q.evidence), q.category, q.scope] for q in questions],
                           sort_keys=True, ensure_ascii=False)
    return QuestionSet(tuple(questions), hashlib.sha256(canonical.encode()).hexdigest(), source)


def load_questions(path: str | Path) -> QuestionSet:
    """Read and validate an evaluation set (JSONL). ValidationError names the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError("questions", f"{path}: no such file")
    rows: list[Any] = []
    with path.open("rb") as fh:
        for line, raw in enumerate(fh, start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise ValidationError("questions", f"{path}:{line}: line longer than {MAX_LINE_BYTES} bytes")
            text = raw.strip()
            if not text:
                rows.append(None)
                continue
            try:
                rows.append(json.loads(text.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValidationError("questions", f"{path}:{line}: not a JSON object ({exc})") from None
    # blank lines are skipped but keep the numbering of the file's lines
    return _build([(i, _question(r, i, str(path))) for i, r in enumerate(rows, start=1) if r is not None], str(path))


def _as_row(q: EvalQuestion) -> dict:
    return {"id": q.id, "question": q.question, "evidence": list(q.evidence), "category": q.category,
            "scope": q.scope, "answer": q.answer,
            "asked_at": q.asked_at.isoformat() if isinstance(q.asked_at, datetime) else q.asked_at}


def question_rows(questions: Sequence[EvalQuestion]) -> list[dict]:
    """The questions as JSON-ready objects (the file format)."""
    return [_as_row(q) for q in questions]
