"""Parameter sweeps: evolve copies of a lattice over a grid of one or two parameters.

For each grid point the lattice is copied, given the parameters, evolved by
``horizon`` and measured. Coherence and uncertainty are closed-form in t and the
coupled phase ODE is integrated adaptively, so one ``evolve(horizon)`` equals many
small steps (to the integrator's tolerance): a sweep costs one evolve per point.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from core.errors import ValidationError
from core.engine.lattice import Lattice
from core.engine.limits import MAX_SWEEP_WORK, SWEEP_POINT_OVERHEAD, WorkLimitExceeded, check_stop
from core.engine.params import PARAM_SPECS, LatticeParams

METRICS: dict[str, str] = {
    "mean_coherence": "mean coherence at the horizon (0-1)",
    "R": "order parameter R at the horizon (0-1)",
    "mean_uncertainty": "mean uncertainty at the horizon (0-1)",
    "coherent_fraction": "fraction of gems with coherence >= 0.5 at the horizon",
}
MAX_POINTS = 2500
DYNAMIC_PARAMS = ("lambda_", "f", "u_rate", "K")
"""The parameters that change how a lattice evolves (the others act on observation and retrieval)."""


def measure(lattice: Lattice) -> dict[str, float]:
    """Every metric of :data:`METRICS` for ``lattice`` as it is now."""
    s = lattice.summary()
    c = lattice.coherence
    return {
        "mean_coherence": s["mean_coherence"],
        "R": s["R"],
        "mean_uncertainty": s["mean_uncertainty"],
        "coherent_fraction": float((c >= 0.5).mean()) if len(c) else 0.0,
    }


def grid_values(name: str, start: float, stop: float, points: int) -> np.ndarray:
    """``points`` evenly spaced values of parameter ``name`` in [start, stop], validated."""
    spec = PARAM_SPECS.get(name)
    if spec is None or spec.kind == "choice":
        numeric = [n for n, s in PARAM_SPECS.items() if s.kind != "choice"]
        raise ValidationError(name, f"cannot sweep this; numeric parameters are {', '.join(numeric)}")
    if not (isinstance(points, (int, np.integer)) and 1 <= points <= MAX_POINTS):
        raise ValidationError("points", f"got {points!r}; must be a whole number in [1, {MAX_POINTS}]")
    start, stop = spec.validate(start), spec.validate(stop)
    values = np.linspace(start, stop, int(points))
    if spec.kind == "int":
        values = np.unique(np.round(values).astype(int))
    return values


def sweep(
    lattice: Lattice,
    base: LatticeParams,
    grid: Mapping[str, Sequence[float]],
    horizon: float,
    progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> pd.DataFrame:
    """Evolve a copy of ``lattice`` for every combination of the ``grid`` values.

    Parameters
    ----------
    lattice : the starting state (not modified).
    base : parameters of the parameters not swept.
    grid : one or two ``{parameter name: values}``.
    horizon : time to evolve, in lattice time units (>= 0).
    progress : called with the done fraction in [0, 1] (may raise Cancelled to stop).
    should_stop : polled before every point; True stops the sweep with
        :class:`core.engine.limits.Cancelled`.

    Bounded work: points x (gems + SWEEP_POINT_OVERHEAD) is checked against MAX_SWEEP_WORK
    before anything runs; coupled points also spend their solver work from what remains,
    and the sweep stops with WorkLimitExceeded when it is spent.

    Returns
    -------
    One row per grid point: the swept parameter values, then every metric of
    :data:`METRICS`.
    """
    if not 1 <= len(grid) <= 2:
        raise ValidationError("grid", f"sweep one or two parameters, got {len(grid)}")
    if not (isinstance(horizon, (int, float)) and math.isfinite(horizon) and horizon >= 0):
        raise ValidationError("horizon", f"got {horizon!r}; must be a finite number >= 0")
    names = list(grid)
    combos = list(itertools.product(*(list(grid[n]) for n in names)))
    if len(combos) > MAX_POINTS:
        raise ValidationError("grid", f"{len(combos)} points is too many (max {MAX_POINTS})")
    per_point = len(lattice) + SWEEP_POINT_OVERHEAD
    if len(combos) * per_point > MAX_SWEEP_WORK:
        raise WorkLimitExceeded("grid", f"{len(combos)} points x ({len(lattice)} gems + {SWEEP_POINT_OVERHEAD} per "
                                f"point) = {len(combos) * per_point:.3g} work units is over the sweep budget of "
                                f"{MAX_SWEEP_WORK:.3g}; use at most {MAX_SWEEP_WORK // per_point} points or fewer "
                                "gems - nothing was run")
    remaining = MAX_SWEEP_WORK - len(combos) * per_point
    rows = []
    for done, values in enumerate(combos, start=1):
        check_stop(should_stop, f"the sweep (after {done - 1} of {len(combos)} points)")
        params = base.replace(**dict(zip(names, values)))
        lat = lattice.copy()
        lat.params = params
        try:
            lat.evolve(horizon, max_work=remaining)
        except WorkLimitExceeded as exc:
            point = ", ".join(f"{n}={v:g}" for n, v in zip(names, values))
            raise WorkLimitExceeded("grid", f"the sweep's solver budget ({MAX_SWEEP_WORK:.3g} work units) ran out at "
                                    f"point {done} of {len(combos)} ({point}): {exc}") from None
        remaining -= lat.last_work
        rows.append({**{n: v for n, v in zip(names, values)}, **measure(lat)})
        if progress:
            progress(done / len(combos))
    return pd.DataFrame(rows, columns=names + list(METRICS))
