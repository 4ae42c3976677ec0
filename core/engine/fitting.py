"""Fit the decay scale λ to coherence observations, with its standard error and the half-life.

Model, per observation of gem (group) g at lattice time t::

    c = A_g · exp(-λ (t - t0_g) / E_g) + C

with t0_g the gem's first observation time, E_g its energy when known (each gem decays with
its own time constant τ_g = E_g / λ) and C an optional floor. Without energies every gem gets
E = 1: one shared time constant τ = 1/λ, which is the λ of a gem of energy 1. λ is in
1/lattice time unit, t and τ in lattice time units.

How: variable projection. For a given λ the amplitudes A_g and the floor C enter linearly, so
they are solved in closed form (per-gem sums with ``np.bincount``) and the residual sum of
squares is a function of λ alone: a grid over log λ, Brent's method around the best grid
point, then Gauss-Newton steps to machine precision. Standard errors come from the full
Jacobian (λ, every A_g, C) at the optimum, σ²·(JᵀJ)⁻¹, through the Schur complement of the
diagonal per-gem block, so a fit costs O(observations + gems) memory and time, never a dense
(gems × gems) matrix. The standard error of λ never goes below ``NUMERICAL_REL_SE · λ``: the
precision of the solver, which matters only for exact data such as a replayed log.

Misfit checks (each warning says what it saw and what to try): a runs test and the lag-1
autocorrelation of the residuals in time order within each gem (structure the model misses),
an F test of each gem's residuals against the others' (one gem badly fitted).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from core.engine.durations import humanize_duration
from core.errors import FitError

NUMERICAL_REL_SE = 1e-10  # solver precision, relative: the floor of λ's standard error
MISFIT_Z = 3.0  # runs test / autocorrelation threshold (one-sided p ≈ 0.0013)
MISFIT_P = 1e-3  # family-wise p of the per-gem F test (Bonferroni over gems)
_GRID_DECADES = 6.0  # the λ grid spans 1e-6 .. 1e6 over the data's (t - t0)/E span
_GRID_STEP = 0.25  # in ln λ: neighbouring grid points differ by a factor 1.28


@dataclass
class DecayFit:
    """Estimate of the decay scale λ, its standard error, the half-life, the fitted curves and
    misfit warnings (times in lattice time units, λ in 1/time unit)."""

    lambda_: float  # decay scale λ (the λ of a gem of energy 1 when energies are unknown)
    lambda_se: float
    half_life: float  # E ln 2 / λ at E = 1, lattice time units
    half_life_se: float
    tau: float  # time constant at E = 1 (= 1/λ): the shared τ when energies are unknown
    tau_se: float
    energies_known: bool  # True: each gem decayed with its own E (τ_g = E_g/λ)
    amplitude: dict  # group -> A (a single key None for one gem)
    amplitude_se: dict
    offset: float
    offset_se: float
    residual_std: float
    n_points: int
    time_unit: str = "hour"
    warnings: list = field(default_factory=list)  # misfit warnings: what was seen, what to try
    curves: dict = field(default_factory=dict, repr=False)  # group -> (t, fitted coherence)
    residuals: np.ndarray = field(default=None, repr=False)  # per observation, input order

    @property
    def half_life_text(self) -> str:
        """The half-life at E = 1 as people read it, with its standard error: "42 min ± 3 min"."""
        text = humanize_duration(self.half_life, self.time_unit)
        if not np.isfinite(self.half_life_se):
            return text
        if self.half_life_se < 1e-4 * self.half_life:  # exact data: a relative figure reads better
            return f"{text} ± {100 * self.half_life_se / self.half_life:.1g} %"
        return f"{text} ± {humanize_duration(self.half_life_se, self.time_unit)}"

    def tau_for_energy(self, energy: float) -> float:
        """Time constant E/λ of a gem of this energy (lattice time units)."""
        return energy / self.lambda_

    def lambda_for_energy(self, energy: float) -> float:
        """λ that gives a gem of this energy the fitted time constant (λ = E/τ) when the energies
        were unknown; the fitted λ itself when they were known (it holds for every energy)."""
        return self.lambda_ if self.energies_known else energy / self.tau


@dataclass
class _Data:
    y: np.ndarray
    xe: np.ndarray  # (t - t0_g) / E: the decay's clock for each observation
    t: np.ndarray
    labels: np.ndarray
    n_groups: int
    amp: bool
    off: bool


@dataclass
class _Linear:
    A: np.ndarray  # per group
    C: float
    b: np.ndarray  # exp(-λ xe)
    r: np.ndarray  # residuals
    sbb: np.ndarray  # per-group Σ b² (0: the amplitude is not identified)
    one_t: np.ndarray | None  # the constant column with the amplitude columns projected out


def _linear(lam: float, d: _Data) -> _Linear:
    """Amplitudes and floor for a fixed λ (closed-form least squares) and the residuals."""
    b = np.exp(-lam * d.xe)
    if not d.amp:
        C = float(np.mean(d.y - b)) if d.off else 0.0
        return _Linear(np.ones(d.n_groups), C, b, d.y - b - C, np.zeros(d.n_groups), None)
    G, lab = d.n_groups, d.labels
    sbb = np.bincount(lab, b * b, G)
    ok = sbb > 1e-300
    inv = np.divide(1.0, sbb, out=np.zeros(G), where=ok)
    ratio_y = np.bincount(lab, d.y * b, G) * inv
    C, one_t, A = 0.0, None, ratio_y
    if d.off:
        ratio_1 = np.bincount(lab, b, G) * inv
        one_t = 1.0 - ratio_1[lab] * b
        den = float(one_t @ one_t)
        # den ~ 0: the floor is not separable from the amplitudes (no decay inside any gem)
        C = float((d.y - ratio_y[lab] * b) @ one_t / den) if den > 1e-12 * d.y.size else 0.0
        A = ratio_y - C * ratio_1
    return _Linear(A, C, b, d.y - A[lab] * b - C, sbb, one_t)


def _project(v: np.ndarray, lin: _Linear, d: _Data) -> np.ndarray:
    """``v`` with the linear parameters' columns (A_g per group, C) projected out."""
    if d.amp:
        inv = np.divide(1.0, lin.sbb, out=np.zeros(d.n_groups), where=lin.sbb > 1e-300)
        v = v - (np.bincount(d.labels, v * lin.b, d.n_groups) * inv)[d.labels] * lin.b
        if d.off:
            den = float(lin.one_t @ lin.one_t)
            if den > 1e-12 * d.y.size:
                v = v - (v @ lin.one_t) / den * lin.one_t
        return v
    return v - v.mean() if d.off else v


def _exp(theta: float) -> float:
    """e^theta, inf on overflow (the grid may reach past the float range for extreme t)."""
    with np.errstate(all="ignore"):
        return float(np.exp(theta))


def _rss(theta: float, d: _Data) -> float:
    with np.errstate(all="ignore"):
        r = _linear(_exp(theta), d).r
        s = float(r @ r)
    return s if math.isfinite(s) else math.inf


def _minimise(d: _Data) -> float:
    """λ minimising the residual sum of squares (grid over ln λ, Brent, Gauss-Newton polish)."""
    from scipy.optimize import minimize_scalar  # imported when a fit is made (start-up time)
    span = float(d.xe.max())
    centre = -math.log(span)
    k = int(round(_GRID_DECADES * math.log(10) / _GRID_STEP))
    grid = centre + _GRID_STEP * np.arange(-k, k + 1)
    rss = np.array([_rss(th, d) for th in grid])
    if not np.isfinite(rss).any():
        raise FitError("the decay fit found no finite residuals; check the scale of t and coherence")
    best = int(np.argmin(rss))
    if best == 0:
        raise FitError("the observations show no decay over their time span (the best fit is λ → 0); "
                       "observe over a longer time, or check that coherence falls")
    if best == grid.size - 1:
        raise FitError("coherence falls to its floor before the second observation of each gem (λ → ∞); "
                       "observe at shorter intervals")
    with np.errstate(all="ignore"):
        res = minimize_scalar(_rss, bounds=(grid[best - 1], grid[best + 1]), args=(d,), method="bounded",
                              options={"xatol": 1e-12})
    lam = _exp(float(res.x)) if np.isfinite(res.x) else _exp(grid[best])
    if not (0 < lam < math.inf):
        raise FitError("the decay fit did not converge to a finite λ; check the scale of t and coherence")
    # Gauss-Newton on λ with the linear parameters projected out (Kaufman's variable
    # projection step): quadratic convergence, so exact data are fitted to rounding.
    with np.errstate(all="ignore"):
        lin = _linear(lam, d)
        rss_now = float(lin.r @ lin.r)
        for _ in range(30):
            jac = _project(-lin.A[d.labels] * d.xe * lin.b, lin, d)
            jj = float(jac @ jac)
            if not (jj > 0 and math.isfinite(jj)):
                break
            step = float(jac @ lin.r) / jj
            new = lam + step
            if not (new > 0 and math.isfinite(new)):
                break
            lin_new = _linear(new, d)
            rss_new = float(lin_new.r @ lin_new.r)
            if not rss_new <= rss_now:
                break
            lam, lin, rss_now = new, lin_new, rss_new
            if abs(step) <= 1e-15 * lam:
                break
    return lam


def _standard_errors(lam: float, lin: _Linear, d: _Data, sigma2: float) -> tuple[float, np.ndarray, float]:
    """``(se of λ, se of each A_g, se of C)`` from σ²·(JᵀJ)⁻¹ (Schur complement of the A block)."""
    cols = [-lin.A[d.labels] * d.xe * lin.b] + ([np.ones_like(d.y)] if d.off else [])
    M = np.stack(cols, axis=1)  # (n, k): the parameters every observation shares
    amp_se = np.zeros(d.n_groups)
    try:
        if d.amp:
            D = lin.sbb
            ok = D > 1e-300
            U = np.stack([np.bincount(d.labels, M[:, j] * lin.b, d.n_groups) for j in range(M.shape[1])], axis=1)
            Uo, Do = U[ok], D[ok]
            S = M.T @ M - (Uo / Do[:, None]).T @ Uo
            S_inv = np.linalg.inv(S)
            W = Uo / Do[:, None]
            amp_var = 1.0 / Do + np.einsum("gi,ij,gj->g", W, S_inv, W)
            amp_se = np.full(d.n_groups, np.nan)
            amp_se[ok] = np.sqrt(np.clip(amp_var * sigma2, 0, np.inf))
        else:
            S_inv = np.linalg.inv(M.T @ M)
    except np.linalg.LinAlgError:
        return math.nan, np.full(d.n_groups, np.nan), math.nan
    diag = np.diag(S_inv) * sigma2
    if not np.isfinite(diag).all() or (diag < 0).any():
        return math.nan, np.full(d.n_groups, np.nan), math.nan
    lam_se = math.hypot(math.sqrt(diag[0]), NUMERICAL_REL_SE * lam)
    return lam_se, amp_se, (math.sqrt(diag[1]) if d.off else 0.0)


def _structure_warning(d: _Data, r: np.ndarray, energies_known: bool) -> str | None:
    """A runs test and the lag-1 autocorrelation of residuals ordered by time within each gem."""
    order = np.lexsort((d.t, d.labels))
    lab, res = d.labels[order], r[order]
    same = lab[1:] == lab[:-1]  # consecutive observations of one gem
    n_g = np.bincount(lab, minlength=d.n_groups).astype(float)
    # signs about each gem's mean residual: a gem fitted too high early and too low late
    # (a wrong τ for it) has lopsided raw signs, which the runs test would barely notice
    pos = res > (np.bincount(lab, res, d.n_groups) / np.maximum(n_g, 1))[lab]
    n1 = np.bincount(lab, pos, d.n_groups)
    n2 = n_g - n1
    runs = float(n_g.astype(bool).sum() + (same & (pos[1:] != pos[:-1])).sum())
    mu = np.where(n_g > 0, 2 * n1 * n2 / np.maximum(n_g, 1) + 1, 0).sum()
    var = np.where(n_g > 1, 2 * n1 * n2 * (2 * n1 * n2 - n_g) / (n_g ** 2 * np.maximum(n_g - 1, 1)), 0).sum()
    z_runs = (runs - mu) / math.sqrt(var) if var > 0 else 0.0
    pairs = int(same.sum())
    denom = float(res @ res)
    r1 = float((res[1:] * res[:-1])[same].sum() / denom) if denom > 0 else 0.0
    z_ac = r1 * math.sqrt(pairs) if pairs else 0.0
    if pairs < 10 or not (z_runs < -MISFIT_Z or z_ac > MISFIT_Z):
        return None
    energy_hint = "check the gems' energies" if energies_known else "give each gem's energy (an energy column)"
    return (f"The residuals show structure over time: {runs:.0f} runs of one sign where about {mu:.0f} are "
            f"expected (z = {z_runs:.1f}), lag-1 autocorrelation {r1:.2f} (z = {z_ac:.1f}). The model misses a "
            f"shape in the data: try fitting a floor C, {energy_hint}, or fit gems that decay differently "
            f"as separate groups.")


def _group_warning(d: _Data, r: np.ndarray, names: list, p: int) -> str | None:
    """An F test of each gem's mean squared residual against the other gems' (one gem badly fitted)."""
    from scipy.stats import f as f_dist
    n, G = d.y.size, d.n_groups
    if G < 2:
        return None
    ss = np.bincount(d.labels, r * r, G)
    n_g = np.bincount(d.labels, minlength=G).astype(float)
    shared = 1 + int(d.off)
    dof_g = n_g - int(d.amp) - shared * n_g / n  # each gem's share of the shared parameters
    dof_o = (n - p) - dof_g
    ss_o = ss.sum() - ss
    ok = (dof_g >= 2) & (dof_o >= 2) & (ss_o > 0)
    if not ok.any():
        return None
    F = np.where(ok, (ss / np.where(ok, dof_g, 1)) / np.where(ok, ss_o / np.where(ok, dof_o, 1), 1), 0.0)
    pval = np.where(ok, f_dist.sf(F, np.where(ok, dof_g, 1), np.where(ok, dof_o, 1)), 1.0)
    bad = np.flatnonzero(pval < MISFIT_P / G)
    if not bad.size:
        return None
    worst = int(bad[np.argmax(F[bad])])
    rms, rms_o = math.sqrt(ss[worst] / n_g[worst]), math.sqrt(ss_o[worst] / (n - n_g[worst]))
    more = f" ({bad.size - 1} more gem(s) too)" if bad.size > 1 else ""
    return (f"Gem {names[worst]!r} is fitted badly{more}: its residuals are {rms / rms_o:.1f} times the others' "
            f"(RMS {rms:.3g} against {rms_o:.3g}). Check its energy, or fit it separately: it may decay at "
            f"another rate or belong to another group.")


def fit_decay(
    t: Sequence[float],
    coherence: Sequence[float],
    groups: Sequence | None = None,
    fit_amplitude: bool = True,
    fit_offset: bool = False,
    curve_points: int = 200,
    *,
    energy: Sequence[float] | None = None,
    time_unit: str = "hour",
) -> DecayFit:
    """Estimate λ from observations ``(t, coherence)`` (see the module doc for the model).

    Parameters
    ----------
    t, coherence : observation times (lattice time units) and observed coherences.
    groups : optional label per observation (gem id); λ (and C) are shared across groups,
        amplitudes and t0 are per group.
    fit_amplitude : fit A_g (default); if False, A = 1 (each gem observed from full coherence
        at its first observation).
    fit_offset : also fit a floor C (default: C = 0, the model's pure decay).
    energy : optional energy per observation (constant within a group): each gem decays with
        τ_g = E_g/λ. Without it every gem has E = 1 (one shared τ = 1/λ).
    time_unit : the lattice's time unit, for the humanised half-life.

    Raises
    ------
    FitError : fewer points than parameters + 1, non-finite data, bad energies, no decay in the
        data, or no convergence.

    Example
    -------
    >>> t = np.linspace(0, 6, 13)
    >>> fit = fit_decay(np.r_[t, t], np.r_[np.exp(-0.5 * t), np.exp(-0.5 * t / 2)],
    ...                 groups=["a"] * 13 + ["b"] * 13, energy=[1.0] * 13 + [2.0] * 13)
    >>> round(fit.lambda_, 6)
    0.5
    """
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
        uniq, labels = np.unique(g.astype(str), return_inverse=True)
        names, labels = [str(x) for x in uniq], labels.astype(np.int64).ravel()
    G = len(names)
    e = np.ones(t.size)
    if energy is not None:
        e = np.asarray(energy, dtype=float).ravel()
        if e.size != t.size:
            raise FitError(f"energy must have one value per observation (got {e.size} for {t.size})")
        if not (np.isfinite(e).all() and (e > 0).all()):
            raise FitError("energy must be a finite number > 0 for every observation")
        if t.size and (np.ptp(e) > 0):
            lo, hi = np.full(G, np.inf), np.full(G, -np.inf)
            np.minimum.at(lo, labels, e)
            np.maximum.at(hi, labels, e)
            varying = np.flatnonzero(hi - lo > 1e-12 * hi)
            if varying.size:
                raise FitError(f"the energy changes within gem {names[varying[0]]!r}; a decay stretch has one "
                               f"energy: label the observations after each change as a new gem")
    n_params = 1 + (G if fit_amplitude else 0) + int(fit_offset)
    if t.size < n_params + 1:
        raise FitError(f"need at least {n_params + 1} observations to fit {n_params} parameter(s), got {t.size}")
    if np.ptp(t) == 0:
        raise FitError("all observations are at the same time; a decay needs a spread of times")
    t0 = np.full(G, np.inf)
    np.minimum.at(t0, labels, t)
    with np.errstate(all="ignore"):
        xe = (t - t0[labels]) / e
    if not (np.isfinite(xe).all() and xe.max() > 0):
        raise FitError("every gem is observed at one time only (or the times overflow); "
                       "a decay needs at least two times per gem")
    d = _Data(y, xe, t, labels, G, bool(fit_amplitude), bool(fit_offset))
    lam = _minimise(d)
    with np.errstate(all="ignore"):
        lin = _linear(lam, d)
        rss = float(lin.r @ lin.r)
        sigma2 = rss / (t.size - n_params)
        lam_se, amp_se, off_se = _standard_errors(lam, lin, d, sigma2)
    if not (math.isfinite(lam) and math.isfinite(1.0 / lam) and np.isfinite(lin.A).all() and math.isfinite(lin.C)):
        raise FitError("the decay fit did not converge to finite values; check the scale of t and coherence")
    scale = float(np.abs(y).max()) or 1.0
    warnings: list[str] = []
    if math.sqrt(sigma2) > 1e-9 * scale:  # exact data fit to rounding: no structure to look for
        warnings += [w for w in (_structure_warning(d, lin.r, energy is not None),
                                 _group_warning(d, lin.r, names, n_params)) if w]
    if fit_amplitude and (lin.A < 0).any():
        neg = int(np.argmin(lin.A))
        warnings.append(f"{int((lin.A < 0).sum())} amplitude(s) are negative (e.g. {names[neg]!r}): those "
                        f"observations rise instead of decaying; check the data, or fit a floor C.")
    curves = {}
    for k, name in enumerate(names):
        sel = labels == k
        ct = np.linspace(t0[k], float(t[sel].max()), curve_points)
        ce = float(e[sel][0])
        with np.errstate(all="ignore"):
            curves[name] = (ct, lin.A[k] * np.exp(-lam * (ct - t0[k]) / ce) + lin.C)
    amps = {n: float(lin.A[k]) for k, n in enumerate(names)}
    amps_se = {n: (float(amp_se[k]) if fit_amplitude else 0.0) for k, n in enumerate(names)}
    ln2 = math.log(2)
    return DecayFit(
        lambda_=float(lam), lambda_se=float(lam_se), half_life=ln2 / lam, half_life_se=ln2 * (lam_se / lam) / lam,
        tau=1.0 / lam, tau_se=(lam_se / lam) / lam, energies_known=energy is not None, amplitude=amps,
        amplitude_se=amps_se, offset=float(lin.C), offset_se=float(off_se),
        residual_std=float(math.sqrt(sigma2)), n_points=int(t.size), time_unit=time_unit, warnings=warnings,
        curves=curves, residuals=lin.r,
    )
