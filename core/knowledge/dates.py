"""Calendar dates a question names, matched against the day each gem was created.

A question such as "What did we talk about on May 2nd?" asks for the gems of one day, and no
word of theirs says so: neither BM25 nor an embedding can find them (on the shipped
MemoryBank set 35 of 100 questions name a date, and they were BM25's weakest category).
The hybrid retriever adds a date term: 1 for a gem created on a day the question names, 0
otherwise (and 0 everywhere when it names none).

Recognised: a month name or its three-letter abbreviation with a day, either order, an
optional ordinal suffix and year ("May 2nd", "2 May 2023", "on the 4th of May", "Apr. 27"),
and ISO dates ("2023-05-02"). Without a year the date matches that day of any year. Days
are UTC days (gems' ``created_at`` are UTC).
"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Sequence

import numpy as np

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
MONTH_NUMBER = {**{m: i + 1 for i, m in enumerate(_MONTHS)}, **{m[:3]: i + 1 for i, m in enumerate(_MONTHS)},
                "sept": 9}
_M = "|".join(sorted(MONTH_NUMBER, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(\d{4}))?"
_MONTH_DAY = re.compile(rf"\b({_M})\.?\s+{_DAY}\b{_YEAR}", re.IGNORECASE)
_DAY_MONTH = re.compile(rf"\b(?:the\s+)?{_DAY}\s+(?:of\s+)?({_M})\b\.?{_YEAR}", re.IGNORECASE)
_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")

DateKey = tuple[int, int, int | None]  # (month, day, year or None)


def named_dates(text: str) -> set[DateKey]:
    """The calendar dates ``text`` names, as (month, day, year or None); impossible days
    (April 31st) are left out."""
    found: set[DateKey] = set()
    for m in _MONTH_DAY.finditer(text):
        found.add((MONTH_NUMBER[m.group(1).lower()], int(m.group(2)), int(m.group(3)) if m.group(3) else None))
    for m in _DAY_MONTH.finditer(text):
        found.add((MONTH_NUMBER[m.group(2).lower()], int(m.group(1)), int(m.group(3)) if m.group(3) else None))
    for m in _ISO.finditer(text):
        found.add((int(m.group(2)), int(m.group(3)), int(m.group(1))))
    return {d for d in found if _valid(d)}


def _valid(d: DateKey) -> bool:
    try:
        date(d[2] or 2000, d[0], d[1])  # 2000 is a leap year: February 29th stays possible
    except ValueError:
        return False
    return True


def gem_days(created: Sequence[datetime | None]) -> list[date | None]:
    """The UTC day of each gem's creation (None: unknown)."""
    out: list[date | None] = []
    for c in created:
        if c is None:
            out.append(None)
        else:
            out.append((c.astimezone(timezone.utc) if c.tzinfo else c).date())
    return out


class DayIndex:
    """The gems by the (month, day) they were created on, built once per gem list: matching a
    question then reads only the gems of the days it names, not all N."""

    def __init__(self, days: Sequence[date | None]):
        self.n = len(days)
        groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for j, d in enumerate(days):
            if d is not None:
                groups.setdefault((d.month, d.day), []).append((j, d.year))
        self._by_day = {key: (np.array([j for j, _ in v], dtype=np.int64), np.array([y for _, y in v]))
                        for key, v in groups.items()}

    def match(self, questions: Sequence[str]) -> np.ndarray:
        """(Q, N) float64: 1 where gem j was created on a day question i names, else 0."""
        out = np.zeros((len(questions), self.n))
        for i, q in enumerate(questions):
            for month, day, year in named_dates(q):
                found = self._by_day.get((month, day))
                if found is not None:
                    gems, years = found
                    out[i, gems if year is None else gems[years == year]] = 1.0
        return out


def date_match(questions: Sequence[str], days: Sequence[date | None]) -> np.ndarray:
    """(Q, N) float64: 1 where gem j was created on a day question i names, else 0."""
    return DayIndex(days).match(questions)
