"""A gem as the store accepts it: the import fields and their validation.

Fields: ``content`` (required), optional ``id``, ``title``, ``tags``, ``source``,
``energy``, ``phase``, ``coherence``, ``uncertainty``, ``created_at`` and ``state_at``. Unknown fields are an error (a
typo must not be silently dropped). State values must be finite, energy > 0, coherence
and uncertainty in [0, 1].

``content`` is kept byte for byte (leading and trailing whitespace included; only a
content that is nothing but whitespace is refused as empty) and is at most
:func:`max_gem_bytes` bytes of UTF-8 (``LATTICE_MAX_GEM_BYTES``, default 1 MiB). ``id``,
``title``, ``tags`` and ``source`` are labels: their surrounding whitespace is stripped, and
an empty title becomes the content's first non-empty line.

``created_at`` is when the gem was created: an ISO 8601 instant *with* a time zone
(``2026-03-01T12:00:00Z``, ``...+02:00``) or a number, a lattice time ``t`` (time units).
The state values of a row are its state at ``state_at`` (same forms, or ``now``: the
state holds at the lattice's clock; default: its ``created_at``): the importer ages the gem
from then to the clock. An export writes ``state_at`` = ``now`` (it writes the state as it is
now), so its file imports back to the same states with the same ``created_at``.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

import numpy as np

from core.engine.params import STATE_DEFAULTS, STATE_SPECS
from core.errors import ValidationError

FIELDS = ("id", "title", "content", "tags", "source", "energy", "phase", "coherence", "uncertainty", "created_at",
          "state_at")
TIME_FIELDS = ("created_at", "state_at")
_FIELD_SET = frozenset(FIELDS)
MAX_ID = 200
MAX_TITLE = 500
MAX_GEM_BYTES_ENV = "LATTICE_MAX_GEM_BYTES"
DEFAULT_MAX_GEM_BYTES = 1024 * 1024


def max_gem_bytes() -> int:
    """The largest gem content accepted, in bytes of UTF-8 (``LATTICE_MAX_GEM_BYTES``, default 1 MiB)."""
    raw = os.environ.get(MAX_GEM_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_GEM_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(MAX_GEM_BYTES_ENV, f"expected a whole number of bytes, got {raw!r}") from None
    if value < 1:
        raise ValidationError(MAX_GEM_BYTES_ENV, f"must be at least 1, got {value}")
    return value


def too_large_message(size: int | None = None) -> str:
    limit = max_gem_bytes()
    got = f"{size} bytes is " if size is not None else ""
    return (f"{got}larger than the gem size limit of {limit} bytes ({MAX_GEM_BYTES_ENV}); "
            "split the text into several gems or raise the limit")


@dataclass
class GemRecord:
    """A validated gem ready to insert (``id`` None: the store assigns one)."""

    content: str
    id: str | None = None
    title: str = ""
    tags: list[str] = field(default_factory=list)
    source: str = ""
    energy: float = STATE_DEFAULTS["energy"]
    phase: float = STATE_DEFAULTS["phase"]
    coherence: float = STATE_DEFAULTS["coherence"]
    uncertainty: float = STATE_DEFAULTS["uncertainty"]
    file: str = ""
    line: int = 0
    # created_at / state_at as given: a value and whether it is an ISO instant (UTC epoch
    # seconds) or a lattice time number (time units); None = not given
    created: float | None = None
    created_iso: bool = False
    state_at: float | None = None  # math.inf: "now" (the state holds at the clock: not aged)
    state_iso: bool = False
    # resolved by the importer against the lattice's epoch: lattice time and UTC instant of creation
    created_t: float | None = None
    created_at: datetime | None = None


@dataclass
class EdgeRecord:
    source: str
    target: str
    weight: float
    file: str = ""
    line: int = 0


class BadField(Exception):
    """A raw value that is not valid for a gem field (the parsers turn it into an ImportIssue)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field, self.message = field_name, message


def as_number(name: str, value: Any, from_text: bool) -> float:
    if type(value) is float and math.isfinite(value):  # the common case, first
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadField(name, f"expected a number, got {type(value).__name__} {value!r}")
    if isinstance(value, str):
        if not from_text:
            raise BadField(name, f"expected a number, got the string {value!r}")
        try:
            value = float(value.strip())
        except ValueError:
            raise BadField(name, f"expected a number, got {value!r}") from None
    try:
        value = float(value)
    except OverflowError:
        raise BadField(name, "number too large") from None
    if not math.isfinite(value):
        raise BadField(name, f"got {value!r}; must be a finite number")
    return value


_TIME_HELP = "give an ISO 8601 instant with a time zone (2026-03-01T12:00:00Z) or a lattice time number"


def parse_time(name: str, value: Any, from_text: bool = False) -> tuple[float, bool]:
    """A ``created_at``/``state_at`` value as ``(value, is_iso)``: an ISO 8601 instant with a time
    zone gives its UTC epoch seconds and True; a number (a JSON number, or a CSV cell that reads
    as one) gives that lattice time and False. BadField for a naive time, garbage or non-finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadField(name, f"expected a time, got {type(value).__name__} {value!r}; {_TIME_HELP}")
    if isinstance(value, str):
        text = value.strip()
        if from_text and _PLAIN_NUMBER.fullmatch(text):
            value = text
        else:
            try:
                when = datetime.fromisoformat(text)
            except (ValueError, OverflowError):
                raise BadField(name, f"{value[:80]!r} is not a time; {_TIME_HELP}") from None
            if when.tzinfo is None or when.utcoffset() is None:
                raise BadField(name, f"{value[:80]!r} has no time zone; add Z (UTC) or +hh:mm, as in "
                                     "2026-03-01T12:00:00Z")
            try:
                seconds = when.timestamp()
            except (OverflowError, ValueError, OSError):
                raise BadField(name, f"{value[:80]!r} is out of range; {_TIME_HELP}") from None
            return seconds, True
    return as_number(name, value, from_text=True), False


_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _check_state(values: dict[str, float]) -> None:
    for name, spec in STATE_SPECS.items():
        if spec.invalid(values[name]):
            raise BadField(name, f"got {values[name]!r}; {name} {spec.rule()}")


def _text(name: str, value: Any, limit: int | None = None) -> str:
    if not isinstance(value, str):
        raise BadField(name, f"expected text, got {type(value).__name__} {value!r}")
    if "\x00" in value:
        raise BadField(name, "contains a NUL character")
    if not value.isascii():  # only non-ASCII text can hold a lone surrogate
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadField(name, "contains an invalid Unicode escape (a lone surrogate)") from None
    if limit and len(value) > limit:
        raise BadField(name, f"longer than {limit} characters")
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
                raise BadField("tags", f"not a valid JSON list: {text!r}") from None
        else:
            return [t.strip() for t in re.split(r"[;,]", text) if t.strip()]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise BadField("tags", f"expected a list of strings (or 'a;b'), got {value!r}")
    return [_text("tags", t, 200).strip() for t in value if t.strip()]


def validate_record(raw: dict[str, Any], *, from_text: bool = False, file: str = "", line: int = 0,
                    limit: int | None = None, check_state: bool = True) -> GemRecord:
    """Validate one raw row (a dict of import fields) into a :class:`GemRecord`.

    ``from_text``: values came from CSV cells (numbers as text, empty cell = missing).
    Raises ``BadField(field, message)``; the file parsers turn it into an ImportIssue.
    ``limit``: :func:`max_gem_bytes` if already known; ``check_state=False`` leaves the state
    range check to the caller (:func:`validate_batch` does it for a whole batch at once).
    """
    unknown = sorted(raw.keys() - _FIELD_SET)
    if unknown:
        raise BadField(str(unknown[0]), f"unknown field; known fields are {', '.join(FIELDS)}")
    if from_text:
        raw = {k: v for k, v in raw.items() if v is not None and (not isinstance(v, str) or v.strip() != "")}
    else:
        raw = {k: v for k, v in raw.items() if v is not None}
    if "content" not in raw:
        raise BadField("content", "missing (every gem needs its text in 'content')")
    content = _text("content", raw["content"])
    limit = max_gem_bytes() if limit is None else limit
    if len(content) * 4 > limit and len(content.encode("utf-8")) > limit:  # UTF-8: at most 4 bytes a character
        raise BadField("content", too_large_message(len(content.encode("utf-8"))))
    if not content.strip():
        raise BadField("content", "is empty")
    gid = raw.get("id")
    if gid is not None:
        if isinstance(gid, int) and not isinstance(gid, bool):
            gid = str(gid)
        gid = _text("id", gid, MAX_ID).strip()
        if not gid:
            raise BadField("id", "is empty")
    title = _text("title", raw.get("title", ""), MAX_TITLE).strip()
    if not title:
        first = next((line for line in content.splitlines() if line.strip()), "")
        title = first.strip().lstrip("#").strip()[:80]
    state = {k: as_number(k, raw[k], from_text) if k in raw else d for k, d in STATE_DEFAULTS.items()}
    if check_state:
        _check_state(state)
    times: dict[str, Any] = {}
    if "created_at" in raw:
        times["created"], times["created_iso"] = parse_time("created_at", raw["created_at"], from_text)
    if "state_at" in raw:
        if "created_at" not in raw:
            raise BadField("state_at", "needs created_at (the state of a gem is aged from state_at to the clock)")
        value = raw["state_at"]
        if isinstance(value, str) and value.strip().lower() == "now":
            times["state_at"] = math.inf
        else:
            times["state_at"], times["state_iso"] = parse_time("state_at", value, from_text)
            if times["state_iso"] != times["created_iso"]:
                raise BadField("state_at", "give it in the form of created_at (both ISO 8601 instants or both "
                                           "lattice time numbers), or now")
    return GemRecord(content=content, id=gid, title=title, tags=_tags(raw.get("tags"), from_text),
                     source=_text("source", raw.get("source", ""), 500).strip(), file=file, line=line, **state,
                     **times)


def validate_batch(raws: Sequence[dict[str, Any]], lines: Sequence[int], *, from_text: bool = False,
                   file: str = "") -> list[GemRecord | BadField]:
    """Validate a batch of raw rows: per row a :class:`GemRecord`, or the ``BadField`` that
    :func:`validate_record` raises for it (the same message, field and choice of first error).

    The state range checks run column-wise, one :meth:`StateSpec.invalid` over the batch per
    field (per row they cost as much as all the other checks together), and the size limit
    is read once. A row that fails anything is validated again on its own by
    :func:`validate_record`, so its error is exactly the one-row error.
    """
    try:
        limit: int | None = max_gem_bytes()
    except ValidationError:
        limit = None  # a bad setting: each row raises it where validate_record reads it
    out: list[GemRecord | BadField] = []
    for raw, line in zip(raws, lines):
        try:
            out.append(validate_record(raw, from_text=from_text, file=file, line=line, limit=limit,
                                       check_state=False))
        except BadField as bad:
            out.append(bad)
    valid = [k for k, r in enumerate(out) if isinstance(r, GemRecord)]
    flagged = np.zeros(len(valid), dtype=bool)
    for name, spec in STATE_SPECS.items():
        values = np.fromiter((getattr(out[k], name) for k in valid), dtype=np.float64, count=len(valid))
        flagged |= spec.invalid(values)
    again = sorted([k for k, r in enumerate(out) if isinstance(r, BadField)]
                   + [valid[j] for j in np.flatnonzero(flagged)])
    for k in again:  # the one-row path names the first failing field, in its own order
        try:
            out[k] = validate_record(raws[k], from_text=from_text, file=file, line=lines[k], limit=limit)
        except BadField as bad:
            out[k] = bad
    return out


def check_state_values(values: dict[str, Any]) -> dict[str, float]:
    """Validate a partial state edit (numbers only); raise ValidationError naming the field."""
    out = {}
    try:
        for k, v in values.items():
            out[k] = as_number(k, v, from_text=False)
        merged = {**STATE_DEFAULTS, **out}
        _check_state(merged)
    except BadField as bad:
        raise ValidationError(bad.field, bad.message) from None
    return out


def record_or_error(raw: dict[str, Any]) -> GemRecord:
    """Validate a record given through the API; raise ValidationError naming the field."""
    try:
        return validate_record(raw)
    except BadField as bad:
        raise ValidationError(bad.field, bad.message) from None
