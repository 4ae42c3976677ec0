"""Fit the decay time constant to coherence observations (scipy's curve_fit).

Model: ``c(t) = A exp(-(t - t0) / tau) + C``, with tau the decay time constant in
lattice time units. For a gem of energy E under decay scale lambda_, the model
predicts ``tau = E / lambda_``; fitting tau to observations is how a researcher
calibrates lambda_. For a group of gems, tau (and C) are shared and each gem keeps
its own amplitude A_g.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from core.errors import FitError


@dataclass
class DecayFit:
    """Estimate of the decay time constant, with standard errors and the fitted curve."""

    tau: float
    tau_se: float
    amplitude: dict  # group -> A (a single key None for one gem)
    amplitude_se: dict
    offset: float
    offset_se: float
    residual_std: float
    n_points: int
    curve_t: np.ndarray = field(repr=False)
    curve: dict = field(repr=False)  # group -> fitted coherence on curve_t

    def lambda_for_energy(self, energy: float) -> float:
        """Decay scale lambda_ implied by tau for a gem of this energy (tau = E/lambda_)."""
        return energy / self.tau


def fit_decay(
    t: Sequence[float],
    coherence: Sequence[float],
    groups: Sequence | None = None,
    fit_amplitude: bool = True,
    fit_offset: bool = False,
    curve_points: int = 200,
) -> DecayFit:
    """Estimate tau from observations ``(t, coherence)``.

    Parameters
    ----------
    t, coherence : observation times (lattice units) and observed coherences.
    groups : optional label per observation (gem id); tau is shared across groups,
        amplitudes are per group.
    fit_amplitude : fit A (default); if False, A is fixed to 1 (a gem observed from
        full coherence).
    fit_offset : also fit a floor C (default: C = 0, the model's pure decay).

    Raises
    ------
    FitError : fewer points than parameters + 1, non-finite data, or no convergence.
    """
    from scipy.optimize import curve_fit  # imported when a fit is made (start-up time)
    t = np.asarray(t, dtype=float).ravel()
    y = np.asarray(coherence, dtype=float).ravel()
    if t.shape != y.shape:
        raise FitError(f"t and coherence must have the same length (got {t.size} and {y.size})")
    if not (np.isfinite(t).all() and np.isfinite(y).all()):
        raise FitError("observations contain NaN or infinite values; remove them before fitting")
    labels = np.zeros(t.size, dtype=np.int64)
    names: list = [None]
    if groups is not None:
        g = np.asarray(groups, dtype=object).ravel()
        if g.size != t.size:
            raise FitError(f"groups must have one label per observation (got {g.size} for {t.size})")
        names, labels = np.unique(g.astype(str), return_inverse=True)
        names = list(names)
    n_amp = len(names) if fit_amplitude else 0
    n_params = 1 + n_amp + (1 if fit_offset else 0)
    if t.size < n_params + 1:
        raise FitError(f"need at least {n_params + 1} observations to fit {n_params} parameter(s), got {t.size}")
    if np.ptp(t) == 0:
        raise FitError("all observations are at the same time; a decay needs a spread of times")
    t0 = float(t.min())
    dt = t - t0

    def model(x, *theta):
        tau = theta[0]
        amp = np.asarray(theta[1:1 + n_amp])[labels] if n_amp else 1.0
        off = theta[-1] if fit_offset else 0.0
        return amp * np.exp(-x / tau) + off

    # Initial guess from a log-linear least-squares slope of the positive points.
    pos = y > 0
    tau0 = float(np.ptp(t)) / 2 or 1.0
    with np.errstate(all="ignore"):
        x_pos, ly = dt[pos], np.log(y[pos])
        spread = ((x_pos - x_pos.mean()) ** 2).sum() if pos.sum() >= 2 else 0.0
        slope = ((x_pos - x_pos.mean()) * (ly - ly.mean())).sum() / spread if spread > 0 else 0.0
    if np.isfinite(slope) and slope < 0 and np.isfinite(-1.0 / slope):
        tau0 = -1.0 / slope
    amp0 = [float(max(y[labels == g][np.argmin(dt[labels == g])], 1e-3)) for g in range(n_amp)]
    p0 = [tau0, *amp0] + ([0.0] if fit_offset else [])
    lower = [1e-12] + [0.0] * n_amp + ([-np.inf] if fit_offset else [])
    upper = [np.inf] * n_params
    try:
        with np.errstate(all="ignore"):
            theta, cov = curve_fit(model, dt, y, p0=p0, bounds=(lower, upper), maxfev=20000)
    except (RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
        raise FitError(f"the decay fit did not converge: {exc}") from None
    if not np.isfinite(theta).all():
        raise FitError("the decay fit did not converge to finite values; check the scale of t and coherence")
    se = np.sqrt(np.clip(np.diag(cov), 0, np.inf)) if np.isfinite(cov).all() else np.full(n_params, np.nan)
    resid = y - model(dt, *theta)
    curve_t = np.linspace(0.0, float(dt.max()), curve_points)
    amps = {names[g]: float(theta[1 + g]) for g in range(n_amp)} if n_amp else {n: 1.0 for n in names}
    amp_se = {names[g]: float(se[1 + g]) for g in range(n_amp)} if n_amp else {n: 0.0 for n in names}
    off = float(theta[-1]) if fit_offset else 0.0
    curves = {n: amps[n] * np.exp(-curve_t / theta[0]) + off for n in names}
    return DecayFit(
        tau=float(theta[0]), tau_se=float(se[0]), amplitude=amps, amplitude_se=amp_se,
        offset=off, offset_se=float(se[-1]) if fit_offset else 0.0,
        residual_std=float(resid.std(ddof=min(n_params, t.size - 1))), n_points=int(t.size),
        curve_t=curve_t + t0, curve=curves,
    )
