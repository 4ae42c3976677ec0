"""Saved experiment runs in the store (Parameters page): save, list, load for comparison."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.engine import LatticeParams


def run_label(run_id: int, run_name: str, actor: str) -> str:
    return f"#{run_id} {run_name} ({actor})"


def save_preview_run(ctx, run_name: str, series: pd.DataFrame, horizon: float) -> int:
    """Save the preview as a run (``Store.save_run``; the store refuses a viewer)."""
    end = series.iloc[-1]
    metrics = {"t0": float(ctx.lattice.t), "horizon": float(horizon), "mean_coherence_end": float(end.mean_coherence),
               "R_end": float(end.R), "mean_uncertainty_end": float(end.mean_uncertainty)}
    return int(ctx.store.save_run(ctx.name, run_name, ctx.params, metrics, ctx.actor, trajectory=series))


def stored_runs(ctx, limit: int = 30) -> dict[str, int]:
    """``{label: run id}`` of this lattice's saved runs, newest first (at most ``limit``)."""
    df = ctx.store.list_runs(ctx.name).head(limit)
    return {run_label(int(r.id), r.name, r.actor): int(r.id) for r in df.itertuples(index=False)}


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
    lattice clock at save time) and their parameters as a table: only those that differ
    between the runs when more than one is chosen."""
    loaded = {n: run_detail(runs[n]) for n in chosen}
    series = [(n, r["series"].assign(time=r["series"]["time"] - r["t0"])) for n, r in loaded.items()]
    diff = pd.DataFrame({n: r["params"] for n, r in loaded.items()})
    diff = diff[diff.nunique(axis=1) > 1] if len(chosen) > 1 else diff
    return series, diff.rename_axis("parameter").reset_index().astype(str)
