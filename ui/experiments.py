"""Helpers of the Parameters & experiments page: what differs from the defaults, the preview's
step, sweep ranges and the sweep, half-lives next to the decay scale, the sample observations,
the observations CSV's energy and time unit, and the decay fit's tables (no widgets here)."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from core.engine import (PARAM_SPECS, TIME_UNITS, DecayFit, Lattice, LatticeParams, grid_values, half_life,
                         humanize_duration, sweep, unit_seconds)
from core.errors import ValidationError

HALF_LIFE = "half-life (E = 1)"  # the column shown next to the decay scale

PREVIEW_POINTS = 400  # at most ~this many time points: the preview must stay instant


def changed_params(params: LatticeParams, reference: LatticeParams | None = None) -> dict:
    """The parameters whose value differs from ``reference`` (default: the defaults), ``{name: value}``."""
    ref = (reference or LatticeParams()).to_dict()
    return {n: v for n, v in params.to_dict().items() if v != ref.get(n, PARAM_SPECS[n].default)}


def run_name(params: LatticeParams, reference: LatticeParams | None = None) -> str:
    """A saved run's name: the parameters that differ from ``reference`` (the lattice's own
    parameters on the page; the defaults if None), by their labels (``"Decay scale λ = 0.2
    (half-life 3.5 h), Coupling K = 0.5"``); ``"the lattice's own"`` (``"defaults"`` without a
    reference) if none."""
    parts = []
    for n, v in changed_params(params, reference).items():
        text = f"{PARAM_SPECS[n].label} = {v:g}" if isinstance(v, float) else f"{PARAM_SPECS[n].label} = {v}"
        if n == "lambda_":
            text += f" (half-life {half_life_text(v, params.time_unit)})"
        parts.append(text)
    return ", ".join(parts) or ("defaults" if reference is None else "the lattice's own")


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


def default_range(name: str, value: float | None = None) -> tuple[float, float]:
    """The sweep's default range of parameter ``name``: about a quarter to three times ``value`` (the
    session's, so a memory lattice's λ of 0.004/hour is swept around 0.004; the default when
    None or not positive), within the allowed range (-1..1 when neither is positive)."""
    spec = PARAM_SPECS[name]
    lo, hi = float(spec.minimum), float(spec.maximum)
    d = float(value) if value is not None and float(value) > 0 else float(spec.default)
    if d > 0:  # 3 significant digits: the inputs show the range as typed, not 0.0010314690186903949
        return max(lo, float(f"{d / 4:.3g}")), min(hi, float(f"{d * 3:.3g}"))
    return max(lo, -1.0), min(hi, 1.0) if hi > 0 else hi


def run_sweep(lattice: Lattice, params: LatticeParams, grid: dict[str, tuple[float, float, int]], horizon: float,
              progress=None, should_stop=None) -> pd.DataFrame:
    """``core.engine.sweep`` over ``grid`` ``{parameter: (from, to, points)}``: one row per grid point
    with the outcomes at ``horizon`` (lattice time units); raises ValidationError for a bad grid,
    the engine's Cancelled when ``should_stop()`` turns True."""
    values = {name: grid_values(name, *spec) for name, spec in grid.items()}
    return sweep(lattice, params, values, float(horizon), progress=progress, should_stop=should_stop)


def param_axis_labels(names, time_unit: str) -> dict[str, str]:
    """``{name: "Decay scale λ (1/hour)"}``: a parameter's label with its unit in the lattice's
    time unit (sweep axes and tables; never the field name)."""
    out = {}
    for n in names:
        spec = PARAM_SPECS[n]
        unit = spec.unit.replace("time units", f"{time_unit}s").replace("time unit", time_unit)
        out[n] = f"{spec.label} ({unit})" if unit else spec.label
    return out


def half_life_text(lambda_: float, time_unit: str) -> str:
    """The half-life ``ln 2 / λ`` of a gem of energy 1, humanised ("42 min"; "∞" for λ = 0)."""
    return humanize_duration(half_life(1.0, float(lambda_)), time_unit)


def with_half_life(df: pd.DataFrame, column: str, time_unit: str) -> pd.DataFrame:
    """``df`` with a :data:`HALF_LIFE` column right after the decay-scale ``column`` (if present)."""
    if column not in df.columns:
        return df
    out = df.copy()
    out.insert(out.columns.get_loc(column) + 1, HALF_LIFE,
               [half_life_text(v, time_unit) for v in pd.to_numeric(out[column], errors="coerce")])
    return out


SAMPLE_POINTS = 13  # observations per gem in the sample CSV
SAMPLE_NOISE = 0.015  # standard deviation of the sample's measurement noise (coherence units)


def sample_lambda(params: LatticeParams) -> float:
    """The λ the sample CSV is made with: the session's, or 1 per time unit when it has no decay."""
    return params.lambda_ if params.lambda_ > 0 else 1.0


def sample_observations(lattice: Lattice, params: LatticeParams) -> pd.DataFrame:
    """A sample observations CSV to try the fit with: four gems of the lattice with mixed energies
    (spread over its energy range), each decaying from a just re-cohered state as the model says,
    c = A·exp(-λ t/E), over 2.5 of its own time constants E/λ, with Gaussian noise
    (:data:`SAMPLE_NOISE`); λ is :func:`sample_lambda`. Columns t (lattice time units),
    coherence, gem, energy, time_unit: a fit with the energies recovers λ."""
    rng = np.random.default_rng(7)
    lam = sample_lambda(params)
    n = len(lattice)
    if n == 0:
        ids, energy = ["gem-a", "gem-b", "gem-c", "gem-d"], np.array([0.5, 1.0, 2.0, 4.0])
    else:
        by_energy = np.argsort(lattice.energy, kind="stable")
        picks = np.unique(by_energy[np.round(np.array([0.05, 0.35, 0.65, 0.95]) * (n - 1)).astype(int)])
        ids, energy = [lattice.ids[i] for i in picks], lattice.energy[picks]
    rows = []
    for gid, e in zip(ids, energy):
        amp = rng.uniform(0.8, 1.0)
        t = np.linspace(0.0, 2.5 * e / lam, SAMPLE_POINTS)
        c = np.clip(amp * np.exp(-lam * t / e) + rng.normal(0, SAMPLE_NOISE, t.size), 0, 1)
        rows += [{"t": float(a), "coherence": float(b), "gem": gid, "energy": float(e),
                  "time_unit": params.time_unit} for a, b in zip(t, c)]
    return pd.DataFrame(rows)[["t", "coherence", "gem", "energy", "time_unit"]]


def csv_energy_and_unit(data: bytes, obs: pd.DataFrame, time_unit: str) -> tuple[pd.DataFrame, list[str]]:
    """The optional columns of an observations CSV (``obs``: what ``read_observations_csv``
    parsed from ``data``): **energy** (each gem's energy, > 0) and **time_unit** (the unit of
    t; t is converted to the lattice's ``time_unit``). Returns ``(obs with energy, notes)``.

    Raises ValidationError naming the column and row at fault; nothing is fitted then.
    """
    raw = pd.read_csv(io.BytesIO(data))
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    out, notes = obs.copy(), []
    if "energy" in raw.columns:
        e = pd.to_numeric(raw["energy"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~(np.isfinite(e) & (e > 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValidationError("energy", f"row {row + 2} has {raw['energy'].iloc[row]!r}; an energy is a "
                                            f"number > 0 (or leave the column out: one shared τ)")
        out["energy"] = e
    if "time_unit" in raw.columns:
        units = raw["time_unit"].astype(str).str.strip().str.rstrip("s")
        unknown = ~units.isin(list(TIME_UNITS))
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise ValidationError("time_unit", f"row {row + 2} has {raw['time_unit'].iloc[row]!r}; allowed: "
                                               f"{', '.join(TIME_UNITS)}")
        if units.nunique() > 1:
            raise ValidationError("time_unit", f"the rows mix units ({', '.join(sorted(units.unique()))}); "
                                               f"give every t in one unit")
        unit = str(units.iloc[0])
        if unit != time_unit:
            out["t"] = out["t"] * (unit_seconds(unit) / unit_seconds(time_unit))
            notes.append(f"t converted from {unit}s to {time_unit}s (the lattice's time unit).")
    return out, notes


def fit_tables(fit: DecayFit) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(summary, amplitudes)`` of a decay fit: λ, the half-life, τ, the floor and their standard
    errors (times in the fit's time unit); A per group."""
    u = fit.time_unit
    amplitudes = pd.DataFrame([{"group": "all" if g is None else g, "amplitude A": a,
                                "A standard error": fit.amplitude_se[g]} for g, a in fit.amplitude.items()])
    summary = pd.DataFrame([{f"Decay scale λ (1/{u})": fit.lambda_, "λ standard error": fit.lambda_se,
                             f"half-life at E = 1 ({u}s)": fit.half_life, "half-life standard error": fit.half_life_se,
                             HALF_LIFE: fit.half_life_text, f"τ at E = 1 ({u}s)": fit.tau,
                             "τ standard error": fit.tau_se, "floor C": fit.offset, "C standard error": fit.offset_se,
                             "residual std": fit.residual_std, "observations": fit.n_points,
                             "energies": "known (τ = E/λ per gem)" if fit.energies_known else "unknown (shared τ)"}])
    return summary, amplitudes


def summary_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """A one-row fit summary as ``quantity, value`` rows for display (numbers to 6 significant digits)."""
    row = summary.iloc[0]
    return pd.DataFrame({"quantity": list(summary.columns),
                         "value": [f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v) for v in row]})


def suggested_lambda(fit: DecayFit) -> float | None:
    """The fitted λ (for a gem of energy 1 when the energies were unknown), if it is an allowed λ."""
    lam = fit.lambda_for_energy(1.0)
    spec = PARAM_SPECS["lambda_"]
    return lam if spec.minimum <= lam <= spec.maximum else None
