"""Cached calls into the engine for the pages (``st.cache_data``: results are pure data).

Cache keys are the lattice's ``cache_key`` (name, version, clock) plus the parameters,
so a change to the lattice or to any parameter is never served stale. The lattice
object itself is passed unhashed (leading underscore).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import streamlit as st

from core.lattice import Lattice
from core.params import LatticeParams
from core.trajectory import Trajectory, default_recorded, simulate

MAX_RECORDED = 400  # per-gem series kept for the phasor animation (all gems of the demo)


def recorded_indices(lattice: Lattice, chosen: Sequence[int] = ()) -> tuple[int, ...]:
    """All gems up to MAX_RECORDED, else the most coherent ones plus the chosen."""
    base = default_recorded(lattice, MAX_RECORDED)
    return tuple(int(i) for i in np.union1d(base, np.asarray(list(chosen), dtype=np.int64)))


@st.cache_data(max_entries=48, show_spinner="Simulating…")
def trajectory(_lattice: Lattice, key: tuple, params: dict, horizon: float, dt: float,
               record: tuple[int, ...] | None = None) -> Trajectory:
    """``core.trajectory.simulate`` of a copy of the lattice under ``params``."""
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
