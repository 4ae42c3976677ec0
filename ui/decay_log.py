"""Streamlit caches of a lattice's history and its decay observations (Metrics and Parameters pages).

``core.store.lattice_history`` replays the transaction log once: the Metrics page's series and
``History.decay``, the coherence and energy of followed gems through every stretch of pure
decay, for ``core.engine.fitting.fit_decay`` with the gems' energies (see core.store.history).
Cached per store, lattice and version.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.store import History, lattice_history


@st.cache_data(max_entries=16, show_spinner="Replaying the transaction log…")
def cached_history(_store, url: str, lattice: str, version: int) -> History:
    """``lattice_history`` of the lattice at ``version`` in the store at ``url`` (the version is
    the cache key: any write gives a new one). Shared by the Metrics and Parameters pages."""
    return lattice_history(_store, lattice)


@st.cache_data(max_entries=16, show_spinner=False)
def log_observations(_store, url: str, lattice: str, version: int) -> tuple[pd.DataFrame, int, str | None]:
    """``(observations, log entries replayed, why the replay stopped early or None)`` for the
    lattice at ``version``: ``History.decay`` (t, coherence, energy, gem = gem and stretch,
    gem_id, entry, decay_scale)."""
    history = cached_history(_store, url, lattice, version)
    return history.decay, history.entries, history.stopped_at
