"""Retention of scheduled snapshots: which to keep and which to delete (a pure function).

The policy keeps the newest ``keep_last`` verified snapshots of a target, plus the newest
verified one of each of the last ``keep_daily`` UTC calendar days (today included). Only
verified snapshots (status ``ok``) count as kept copies, and only they are ever deleted: a
corrupt one is not a copy anybody can restore, so it never fills a place of the policy, and it
stays on disk (reported) until an operator has looked at it. Whatever the policy, the newest
verified snapshot is never deleted.

Example: hourly snapshots over three days, ``keep_last=3, keep_daily=2`` keep the three newest
(today) and the last one of yesterday: four files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Generic, Protocol, Sequence, TypeVar

from core.errors import ValidationError

OK = "ok"  # verified after writing and unchanged since (the only status retention counts or deletes)
MAX_KEEP = 100_000


class Dated(Protocol):
    """What retention reads of a snapshot: when it was taken and whether it is verified."""

    @property
    def created_at(self) -> float: ...  # seconds since the Unix epoch (UTC)

    @property
    def status(self) -> str: ...


T = TypeVar("T", bound=Dated)


@dataclass(frozen=True)
class RetentionPolicy:
    """``keep_last``: the newest N verified snapshots (>= 1); ``keep_daily``: plus the newest
    verified one of each of the last D UTC days, today included (>= 0; 0 = no daily copies)."""

    keep_last: int = 7
    keep_daily: int = 7

    def __post_init__(self) -> None:
        for name, low in (("keep_last", 1), ("keep_daily", 0)):
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= MAX_KEEP:
                raise ValidationError(name, f"got {value!r}; must be a whole number in [{low}, {MAX_KEEP}]")

    def describe(self) -> str:
        return f"keep the last {self.keep_last}" + (f" plus one a day for {self.keep_daily} days"
                                                    if self.keep_daily else "")


@dataclass
class RetentionPlan(Generic[T]):
    """What :func:`plan_retention` decided: ``keep`` with the reasons of each (``last``,
    ``daily YYYY-MM-DD``, ``newest``), ``delete`` (verified, outside the policy) and
    ``untouched`` (not verified: corrupt or failed; neither counted nor deleted)."""

    keep: list[tuple[T, list[str]]] = field(default_factory=list)
    delete: list[T] = field(default_factory=list)
    untouched: list[T] = field(default_factory=list)


def utc_day(seconds: float) -> date:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).date()


def plan_retention(entries: Sequence[T], policy: RetentionPolicy, now: float) -> RetentionPlan[T]:
    """Split one target's snapshots into kept, deleted and untouched ones at time ``now``
    (seconds since the epoch). Pure: reads the entries, changes nothing."""
    good = sorted((e for e in entries if e.status == OK), key=lambda e: e.created_at, reverse=True)
    reasons: dict[int, list[str]] = {k: ["last"] for k in range(min(policy.keep_last, len(good)))}
    today = utc_day(now)
    window = {today - timedelta(days=k) for k in range(policy.keep_daily)}
    seen: set[date] = set()
    for k, e in enumerate(good):  # newest first: the first of a day is that day's newest
        day = utc_day(e.created_at)
        if day in window and day not in seen:
            seen.add(day)
            reasons.setdefault(k, []).append(f"daily {day.isoformat()}")
    if good and 0 not in reasons:  # unreachable with keep_last >= 1; kept as the rule itself
        reasons[0] = ["newest"]
    plan: RetentionPlan[T] = RetentionPlan()
    for k, e in enumerate(good):
        if k in reasons:
            plan.keep.append((e, reasons[k]))
        else:
            plan.delete.append(e)
    plan.untouched = [e for e in entries if e.status != OK]
    return plan
