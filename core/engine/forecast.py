"""When gems fade: the closed-form time at which each gem's coherence falls below a threshold.

Left alone, ``c(t + d) = c exp(-lambda_ d / E)`` (coherence does not depend on phase or
coupling), so a gem with ``c > theta`` reaches ``theta`` after ``d = (E / lambda_) ln(c / theta)``
lattice time units. The seed's "monitors coherence", as a forecast: no simulation needed.
"""
from __future__ import annotations

import math

import numpy as np

from core.errors import ValidationError
from core.engine.lattice import Lattice


def _threshold(lattice: Lattice, threshold: float | None) -> float:
    theta = lattice.params.fade_below if threshold is None else float(threshold)
    if not (math.isfinite(theta) and 0.0 <= theta <= 1.0):
        raise ValidationError("threshold", f"got {threshold!r}; a coherence threshold must be in [0, 1]")
    return theta


def fading_times(lattice: Lattice, threshold: float | None = None) -> np.ndarray:
    """Per gem, the lattice time at which its coherence reaches ``threshold`` (default the
    lattice's ``fade_below``) if nothing observes it: ``t`` for a gem already at or below it,
    ``inf`` for one that never gets there (lambda_ = 0, or threshold 0)."""
    theta = _threshold(lattice, threshold)
    c, E, lam = lattice.coherence, lattice.energy, lattice.params.lambda_
    out = np.full(len(lattice), math.inf)
    below = c <= theta
    out[below] = lattice.t
    if lam > 0 and theta > 0:
        above = ~below
        out[above] = lattice.t + E[above] / lam * np.log(c[above] / theta)
    return out


def fading_soon(lattice: Lattice, within: float, threshold: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, times)`` of the gems above the threshold now that fall below it within
    ``within`` lattice time units, soonest first."""
    if not (math.isfinite(within) and within >= 0):
        raise ValidationError("within", f"got {within!r}; must be a finite number of time units >= 0")
    theta = _threshold(lattice, threshold)
    times = fading_times(lattice, theta)
    idx = np.flatnonzero((lattice.coherence > theta) & (times <= lattice.t + within))
    order = np.argsort(times[idx], kind="stable")
    return idx[order], times[idx[order]]


def count_below(lattice: Lattice, threshold: float | None = None, within: float = 0.0) -> int:
    """How many gems are at or below the threshold ``within`` time units from now (0: now)."""
    theta = _threshold(lattice, threshold)
    return int(np.count_nonzero(fading_times(lattice, theta) <= lattice.t + within))
