"""Cached calls into the engine for the pages (``st.cache_data``: results are pure data).

Cache keys are the lattice's ``cache_key`` (name, version, clock) plus the parameters,
so a change to the lattice or to any parameter is never served stale. The lattice
object itself is passed unhashed (leading underscore).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import streamlit as st

from core.engine import Lattice, LatticeParams, Trajectory, default_recorded, simulate

MAX_RECORDED = 400  # per-gem series kept for the phasor animation (all gems of the demo)


def gem_indices(lattice: Lattice, ids: Sequence) -> list[int]:
    """Positions of the gems ``ids`` in the lattice's arrays."""
    position = {gid: i for i, gid in enumerate(lattice.ids)}
    return [position[g] for g in ids]


def recorded_indices(lattice: Lattice, chosen: Sequence[int] = ()) -> tuple[int, ...]:
    """All gems up to MAX_RECORDED, else the most coherent ones plus the chosen."""
    base = default_recorded(lattice, MAX_RECORDED)
    return tuple(int(i) for i in np.union1d(base, np.asarray(list(chosen), dtype=np.int64)))


@st.cache_data(max_entries=48, show_spinner="Simulating…")
def trajectory(_lattice: Lattice, key: tuple, params: dict, horizon: float, dt: float,
               record: tuple[int, ...] | None = None) -> Trajectory:
    """``core.engine.simulate`` of a copy of the lattice under ``params``."""
    lat = _lattice.copy()
    lat.params = LatticeParams.from_dict(params)
    return simulate(lat, float(horizon), dt=float(dt), record=record)


def frames(traj: Trajectory) -> tuple[list, np.ndarray, np.ndarray]:
    """``(gem ids, phase[time, gem], coherence[time, gem])`` from the tidy per-gem table."""
    n_t = len(traj.series)
    g = traj.gems
    n_rec = len(g) // n_t if n_t else 0
    ids = list(g["gem"].iloc[:n_rec])
    return ids, g["phase"].to_numpy().reshape(n_t, n_rec), g["coherence"].to_numpy().reshape(n_t, n_rec)


@st.cache_data(max_entries=16, show_spinner="Evolving…")
def looked_ahead(_lattice: Lattice, key: tuple, params: dict, ahead: float) -> Lattice:
    """A copy of the lattice under ``params``, evolved by ``ahead`` (0: as it is)."""
    lat = _lattice.copy()
    lat.params = LatticeParams.from_dict(params)
    if ahead > 0:
        lat.evolve(float(ahead))
    return lat


@st.cache_data(max_entries=32, show_spinner=False)
def extreme_pairs(_lattice: Lattice, key: tuple, params: dict, ahead: float, k: int) -> tuple[list, list]:
    """The ``k`` most constructive and most destructive pairs ``(i, j, I_ij)`` of the whole
    lattice looked ahead by ``ahead`` (a partial sort over all pairs: worth caching at 10k gems)."""
    lat = looked_ahead(_lattice, key, params, ahead)
    return lat.top_interference(int(k)), lat.bottom_interference(int(k))


MAX_GEM_OPTIONS = 500  # gem pickers list at most this many options (plus the chosen): 10k would be ~300 KB


def most_coherent_first(coherence: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` most coherent gems, most coherent first (ties in lattice order):
    the first ``k`` of a stable descending sort, without sorting all gems (1M: ~0.1 s)."""
    c = np.asarray(coherence, dtype=float)
    k = max(0, min(int(k), c.size))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if k * 8 >= c.size:
        return np.argsort(-c, kind="stable")[:k]
    kth = np.partition(c, c.size - k)[c.size - k]  # the k-th largest value
    candidates = np.flatnonzero(c >= kth)  # ascending positions: a stable sort keeps ties in order
    return candidates[np.argsort(-c[candidates], kind="stable")][:k]


def gem_options(ids: Sequence, titles: dict, coherence: np.ndarray, selected: Sequence, query: str = "",
                cap: int = MAX_GEM_OPTIONS) -> tuple[list, int]:
    """Options of a gem picker: every gem when there are at most ``cap``, else the chosen
    gems plus the first ``cap`` matches of ``query`` (id or title, case-insensitive; all
    gems when empty), most coherent first. Returns ``(options, matches)``."""
    ids = ids if isinstance(ids, list) else list(ids)
    if len(ids) <= cap:
        return ids, len(ids)
    q = query.strip().lower()
    selected = list(selected)
    if q:  # every gem is looked at: only while the user types a query
        order = np.argsort(-np.asarray(coherence, dtype=float), kind="stable")
        ranked = [g for g in (ids[i] for i in order) if q in str(g).lower() or q in str(titles.get(g, "")).lower()]
        matches = len(ranked)
    else:  # the top of the coherence order only (the chosen ones may take places in it)
        ranked = [ids[i] for i in most_coherent_first(coherence, cap + len(selected))]
        matches = len(ids)
    listed = set(ranked)
    others = {g for g in selected if g not in listed}  # chosen further down: are they still gems?
    known = listed | (others & set(ids) if others else set())
    chosen = [g for g in selected if g in known]
    taken = set(chosen)
    return chosen + [g for g in ranked[:cap] if g not in taken], matches


MAX_CHART_POINTS = 1000  # time points per line sent to the browser (a chart is ~1000 px wide)


def thin_times(series, gems=None, max_points: int = MAX_CHART_POINTS):
    """``(series, gems)`` with at most ``max_points`` evenly spaced time points (first and last
    kept) for drawing; unchanged when already short. ``gems`` is the tidy per-gem table."""
    n = len(series)
    if n <= max_points:
        return series, gems
    keep = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    thin = series.iloc[keep].reset_index(drop=True)
    if gems is not None:
        gems = gems[gems["time"].isin(thin["time"].to_numpy())].reset_index(drop=True)
    return thin, gems
