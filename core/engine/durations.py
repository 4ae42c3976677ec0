"""Half-lives and durations in units people read ("42 min", "3.2 days", ``half_life=14d``).

A gem of energy E under decay scale lambda_ loses half its coherence in
``t_1/2 = E ln 2 / lambda_`` lattice time units (DESIGN: ``c <- c exp(-lambda_ dt / E)``).
Lattice time units are the lattice's ``time_unit`` (``TIME_UNITS``: seconds per unit).
"""
from __future__ import annotations

import math
import re

from core.errors import ValidationError

TIME_UNITS: dict[str, float] = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
"""Lattice time units and their length in seconds (used by wall-clock lattices)."""

LN2 = math.log(2.0)

# Suffixes a duration may carry, in seconds. A year is 365.25 days (a Julian year).
_SUFFIXES: dict[str, float] = {}
for _names, _seconds in ((("s", "sec", "secs", "second", "seconds"), 1.0),
                         (("m", "min", "mins", "minute", "minutes"), 60.0),
                         (("h", "hr", "hrs", "hour", "hours"), 3600.0),
                         (("d", "day", "days"), 86400.0),
                         (("w", "wk", "week", "weeks"), 7 * 86400.0),
                         (("y", "yr", "year", "years"), 365.25 * 86400.0)):
    for _name in _names:
        _SUFFIXES[_name] = _seconds
_PART = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zA-Z]*)\s*")
_INFINITE = {"inf", "infinity", "never", "∞"}


def unit_seconds(time_unit: str) -> float:
    """Seconds in one lattice time unit (ValidationError for an unknown unit)."""
    try:
        return TIME_UNITS[time_unit]
    except KeyError:
        raise ValidationError("time_unit", f"got {time_unit!r}; allowed: {', '.join(TIME_UNITS)}") from None


def parse_duration(text: str | float | int, time_unit: str = "hour", name: str = "duration") -> float:
    """A duration in lattice time units from ``"14d"``, ``"3.5 days"``, ``"1h30m"``, ``"90s"``,
    ``"2w"``, ``"inf"`` or a bare number (already in lattice units).

    Raises ValidationError (naming ``name``) for anything else, a negative or a non-finite number.
    """
    if isinstance(text, bool):
        raise ValidationError(name, f"got {text!r}; give a duration such as 14d, 36h or 90min")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = str(text).strip().lower()
        if raw.startswith("-"):
            raise ValidationError(name, f"got {text!r}; a duration must be >= 0")
        if raw in _INFINITE:
            return math.inf
        value, pos = 0.0, 0
        while pos < len(raw):
            m = _PART.match(raw, pos)
            if not m or m.end() == pos:
                break
            number, suffix = float(m.group(1)), m.group(2)
            if suffix and suffix not in _SUFFIXES:
                raise ValidationError(name, f"got {text!r}: unknown unit {suffix!r}; use s, min, h, d, w or y "
                                            "(for example 14d, 36h or 90min)")
            if not suffix and (pos or m.end() < len(raw)):
                raise ValidationError(name, f"got {text!r}: every part needs a unit, as in 1h30min")
            value += number * (_SUFFIXES[suffix] / unit_seconds(time_unit) if suffix else 1.0)
            pos = m.end()
        if pos != len(raw) or not raw:
            raise ValidationError(name, f"got {text!r}; give a duration such as 14d, 36h, 90min or a number "
                                        f"of {time_unit}s")
    if not math.isfinite(value) or value < 0:
        raise ValidationError(name, f"got {text!r}; a duration must be a finite number >= 0")
    return value


def humanize_duration(value: float, time_unit: str = "hour") -> str:
    """``value`` lattice time units as people read it: "42 min", "3.2 days", "∞" (never)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    sign = "-" if value < 0 else ""
    seconds = abs(value) * unit_seconds(time_unit)
    for limit, divisor, unit in ((90.0, 1.0, "s"), (90 * 60.0, 60.0, "min"), (36 * 3600.0, 3600.0, "h"),
                                 (14 * 86400.0, 86400.0, "days"), (365.25 * 86400.0, 7 * 86400.0, "weeks"),
                                 (math.inf, 365.25 * 86400.0, "years")):
        if seconds < limit:
            amount = seconds / divisor
            text = f"{amount:.0f}" if amount >= 10 else f"{amount:.2g}" if amount < 1 else f"{amount:.1f}"
            if text.endswith(".0"):
                text = text[:-2]
            if text == "1" and unit.endswith("s") and unit != "s":
                unit = unit[:-1]  # 1 day, 1 week, 1 year
            return f"{sign}{text} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def half_life(energy, lambda_: float):
    """``E ln 2 / lambda_`` in lattice time units (inf when lambda_ = 0: no decay). ``energy``
    may be a number or an array."""
    if lambda_ == 0:
        return math.inf if isinstance(energy, (int, float)) else energy * math.inf
    return energy * LN2 / lambda_


def lambda_for_half_life(value: float, energy: float = 1.0) -> float:
    """The decay scale lambda_ (1/time unit) giving a gem of ``energy`` the half-life ``value``
    (lattice time units); 0 for an infinite half-life."""
    if not (value > 0):
        raise ValidationError("half_life", f"got {value!r}; a half-life must be > 0 (use inf for no decay)")
    return 0.0 if math.isinf(value) else energy * LN2 / value
