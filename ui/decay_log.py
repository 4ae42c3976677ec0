"""Streamlit caches of a lattice's history and its decay observations (Metrics and Parameters pages).

``core.store.lattice_history`` replays the transaction log; ``core.store.decay_segments``
cuts the series into stretches of pure decay for ``core.engine.fitting.fit_decay`` (see
core.store.history). Both are cached per store, lattice and version.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.store import History, decay_segments, lattice_history


@st.cache_data(max_entries=16, show_spinner="Replaying the transaction log…")
def cached_history(_store, url: str, lattice: str, version: int) -> History:
    """``lattice_history`` of the lattice at ``version`` in the store at ``url`` (the version is
    the cache key: any write gives a new one). Shared by the Metrics and Parameters pages."""
    return lattice_history(_store, lattice)


@st.cache_data(max_entries=16, show_spinner=False)
def log_observations(_store, url: str, lattice: str, version: int) -> tuple[pd.DataFrame, int, str | None]:
    """``(observations, log entries replayed, why the replay stopped early or None)`` for the
    lattice at ``version``."""
    history = cached_history(_store, url, lattice, version)
    obs = decay_segments(history.frame, history.log_ids, history.log_kinds)
    return obs, history.entries, history.stopped_at
