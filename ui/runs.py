"""Saved experiment runs in the store (Parameters page): save, list, load for comparison."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.engine import PARAM_SPECS, LatticeParams
from ui.experiments import HALF_LIFE, half_life_text, param_axis_labels


def run_label(run_id: int, run_name: str, actor: str) -> str:
    return f"#{run_id} {run_name} ({actor})"


def save_preview_run(ctx, run_name: str, series: pd.DataFrame, horizon: float) -> int:
    """Save the preview as a run (``Store.save_run``; the store refuses a viewer)."""
    end = series.iloc[-1]
    metrics = {"t0": float(ctx.lattice.t), "horizon": float(horizon), "mean_coherence_end": float(end.mean_coherence),
               "R_end": float(end.R), "mean_uncertainty_end": float(end.mean_uncertainty)}
    return int(ctx.store.save_run(ctx.name, run_name, ctx.params, metrics, ctx.actor, trajectory=series))


SWEEP = "sweep"  # metrics["kind"] of a saved sweep; a preview run has none


def run_kind(metrics) -> str:
    return str((metrics or {}).get("kind", "preview"))


def stored_runs(ctx, limit: int = 30, kind: str = "preview") -> dict[str, int]:
    """``{label: run id}`` of this lattice's saved runs of ``kind`` (``"preview"`` or
    :data:`SWEEP`), newest first (at most ``limit``)."""
    df = ctx.store.list_runs(ctx.name)
    df = df[[run_kind(m) == kind for m in df["metrics"]]].head(limit)
    return {run_label(int(r.id), r.name, r.actor): int(r.id) for r in df.itertuples(index=False)}


def sweep_run_name(params: list, metric_label: str, horizon: float, labels: dict) -> str:
    return f"Sweep of {' × '.join(labels.get(p, p) for p in params)} → {metric_label} (+{horizon:g})"


def save_sweep_run(ctx, res: dict, metric_label: str, labels: dict) -> tuple[int, str]:
    """Save a sweep result (its grid and outcomes, the session's parameters) as a run of kind
    :data:`SWEEP` (``Store.save_run``; the store refuses a viewer). Returns ``(id, name)``."""
    name = sweep_run_name(res["params"], metric_label, res["horizon"], labels)
    metrics = {"kind": SWEEP, "swept": list(res["params"]), "metric": res["metric"], "horizon": float(res["horizon"]),
               "t0": float(ctx.lattice.t), "points": int(len(res["df"]))}
    return int(ctx.store.save_run(ctx.name, name, ctx.params, metrics, ctx.actor, trajectory=res["df"])), name


@st.cache_data(max_entries=64, show_spinner=False)
def _sweep(url: str, run_id: int) -> dict:
    from ui.services import get_store
    r = get_store().get_run(run_id)
    return {"df": r["trajectory"], **{k: r["metrics"][k] for k in ("swept", "metric", "horizon")}}


def sweep_detail(run_id: int) -> dict:
    """A saved sweep as the Sweep tab holds one: ``df``, ``params`` (swept), ``metric``, ``horizon``."""
    from ui.services import get_store
    d = _sweep(get_store().url, int(run_id))
    return {"df": d["df"], "params": list(d["swept"]), "metric": d["metric"], "horizon": float(d["horizon"])}


@st.cache_data(max_entries=64, show_spinner=False)
def _run(url: str, run_id: int) -> dict:
    from ui.services import get_store
    r = get_store().get_run(run_id)
    return {"params": LatticeParams.from_dict(r["params"]).to_dict(), "series": r["trajectory"],
            "t0": float((r["metrics"] or {}).get("t0", 0.0))}


def run_detail(run_id: int) -> dict:
    """Parameters, trajectory and start time of a saved run (runs never change: cached)."""
    from ui.services import get_store
    return _run(get_store().url, int(run_id))


def compare_runs(runs: dict[str, int], chosen: list[str]) -> tuple[list[tuple[str, pd.DataFrame]], pd.DataFrame]:
    """The chosen saved runs for the comparison chart (each series' time counted from the
    lattice clock at save time) and their parameters as a table, one row per run: the decay
    scale and its half-life at E = 1 first, then the parameters that differ between the runs
    (all of them for one run), by label and unit ("Decay scale λ (1/hour)", never the field
    name)."""
    loaded = {n: run_detail(runs[n]) for n in chosen}
    series = [(n, r["series"].assign(time=r["series"]["time"] - r["t0"])) for n, r in loaded.items()]
    diff = pd.DataFrame({n: r["params"] for n, r in loaded.items()})
    diff = diff[diff.nunique(axis=1) > 1] if len(chosen) > 1 else diff
    units = {n: str(r["params"].get("time_unit", "hour")) for n, r in loaded.items()}
    unit = next(iter(units.values()), "hour") if len(set(units.values())) == 1 else "time unit"
    shown = ["lambda_"] + [p for p in diff.index if p != "lambda_"]  # the decay scale always, first
    labels = param_axis_labels([p for p in shown if p in PARAM_SPECS], unit)
    table = pd.DataFrame({"run": list(loaded)})
    for p in shown:
        table[labels.get(p, p)] = [str(loaded[n]["params"].get(p, "")) for n in loaded]
        if p == "lambda_":  # the decay scale in readable units, right after it
            table[HALF_LIFE] = [half_life_text(float(loaded[n]["params"]["lambda_"]), units[n]) for n in loaded]
    return series, table
