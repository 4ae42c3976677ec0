"""Helpers of the Parameters & experiments page: what differs from the defaults, the preview's
step, sweep ranges and the sweep, the sample observations and the decay fit's tables (no widgets here)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.engine import PARAM_SPECS, DecayFit, Lattice, LatticeParams, grid_values, sweep

PREVIEW_POINTS = 400  # at most ~this many time points: the preview must stay instant


def changed_params(params: LatticeParams) -> dict:
    """The parameters whose value differs from the default, ``{name: value}``."""
    return {n: v for n, v in params.to_dict().items() if v != PARAM_SPECS[n].default}


def run_name(params: LatticeParams) -> str:
    """A saved run's name: the parameters that differ from the defaults, by their labels
    (``"Decay scale λ = 0.2, Coupling K = 0.5"``; ``"defaults"`` if none)."""
    return ", ".join(f"{PARAM_SPECS[n].label} = {v:g}" if isinstance(v, float) else f"{PARAM_SPECS[n].label} = {v}"
                     for n, v in changed_params(params).items()) or "defaults"


def preview_step(params: LatticeParams, horizon: float) -> float:
    """The preview's time step: the parameter dt (0.1 if unset), coarser for long horizons."""
    dt = params.dt if params.dt > 0 else 0.1
    return max(dt, float(horizon) / PREVIEW_POINTS)


def vs_defaults(diff: float) -> str | None:
    """A metric's delta text against the defaults (None when it is too small to show)."""
    return None if abs(diff) < 5e-4 else f"{diff:+.3f} vs defaults"


def params_table(params: LatticeParams) -> pd.DataFrame:
    """Every parameter with its label, value, default, unit and meaning."""
    return pd.DataFrame([{"parameter": n, "label": s.label, "value": getattr(params, n),
                          "default": s.default, "unit": s.unit, "meaning": s.help}
                         for n, s in PARAM_SPECS.items()]).astype({"value": str, "default": str})


def default_range(name: str) -> tuple[float, float]:
    """The sweep's default range of parameter ``name``: a quarter to three times the default,
    within the allowed range (-1..1 when the default is not positive)."""
    spec = PARAM_SPECS[name]
    lo, hi = float(spec.minimum), float(spec.maximum)
    d = float(spec.default)
    if d > 0:
        return max(lo, d / 4), min(hi, d * 3)
    return max(lo, -1.0), min(hi, 1.0) if hi > 0 else hi


def run_sweep(lattice: Lattice, params: LatticeParams, grid: dict[str, tuple[float, float, int]], horizon: float,
              progress=None, should_stop=None) -> pd.DataFrame:
    """``core.engine.sweep`` over ``grid`` ``{parameter: (from, to, points)}``: one row per grid point
    with the outcomes at ``horizon`` (lattice time units); raises ValidationError for a bad grid,
    the engine's Cancelled when ``should_stop()`` turns True."""
    values = {name: grid_values(name, *spec) for name, spec in grid.items()}
    return sweep(lattice, params, values, float(horizon), progress=progress, should_stop=should_stop)


def sample_observations(lattice: Lattice, params: LatticeParams) -> pd.DataFrame:
    """A sample observations CSV to try the fit with: the three most coherent gems decaying under
    ``params`` (c·exp(-λ t/E)) for 12 time units, with noise (columns t, coherence, gem)."""
    rng = np.random.default_rng(7)
    idx = np.argsort(-lattice.coherence, kind="stable")[:3]
    sample_t = np.linspace(0, 12, 13)
    rows = [{"t": t, "gem": lattice.ids[i],
             "coherence": float(np.clip(lattice.coherence[i] * np.exp(-params.lambda_ * t / lattice.energy[i])
                                        + rng.normal(0, 0.01), 0, 1))}
            for i in idx for t in sample_t]
    return pd.DataFrame(rows)[["t", "coherence", "gem"]]


def fit_tables(fit: DecayFit) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(summary, amplitudes)`` of a decay fit: τ, offset and their standard errors; A per group."""
    amplitudes = pd.DataFrame([{"group": "all" if g is None else g, "amplitude A": a,
                                "A standard error": fit.amplitude_se[g]} for g, a in fit.amplitude.items()])
    summary = pd.DataFrame([{"tau": fit.tau, "tau_se": fit.tau_se, "offset": fit.offset,
                             "offset_se": fit.offset_se, "residual_std": fit.residual_std,
                             "n_points": fit.n_points}])
    return summary, amplitudes


def suggested_lambda(fit: DecayFit) -> float | None:
    """λ implied by the fit for a gem of energy 1 (λ = E/τ), if it is an allowed λ."""
    lam = fit.lambda_for_energy(1.0)
    spec = PARAM_SPECS["lambda_"]
    return lam if spec.minimum <= lam <= spec.maximum else None
