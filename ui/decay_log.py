"""Decay observations from a lattice's own transaction log (Parameters page, *Fit decay*).

``core.store.history.lattice_history`` replays the log and gives the lattice's mean coherence
after every entry. Between two observations (or edits, imports, parameter changes...)
the only thing that changes coherence is the clock: an ``evolve`` entry applies
``c <- c·exp(-λ·dt/E)`` to every gem. So each stretch "a state, then only clock
advances" is a genuine decay curve of the lattice's mean coherence, and the stretches
together are observations for ``core.engine.fitting.fit_decay`` with one amplitude per stretch
and a shared τ. The mean over gems of different energies decays as a mixture of
exponentials; the fitted τ is the effective time constant of the mean coherence.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.store import History, lattice_history

COLUMNS = ["t", "coherence", "gem", "entry"]


def decay_segments(frame: pd.DataFrame, log_ids: np.ndarray, log_kinds: np.ndarray) -> pd.DataFrame:
    """Observations ``t, coherence, gem (= stretch label), entry`` from a history frame.

    ``frame`` is ``History.frame`` (possibly thinned); ``log_ids``/``log_kinds`` are the
    whole log (ids ascending), so a stretch never spans a dropped non-evolve entry.
    Only stretches with at least two points at different times are kept.
    """
    order = np.argsort(log_ids)
    ids, kinds = np.asarray(log_ids)[order], np.asarray(log_kinds, dtype=object)[order]
    # entries up to an id, and non-evolve entries among them: prefix counts, so each row
    # asks "only clock advances since the previous row?" in O(log n), not a scan of the log
    non_evolve = np.concatenate([[0], np.cumsum(kinds != "evolve")])
    rows, current, prev_id = [], [], None

    def close() -> None:
        if len(current) >= 2 and np.ptp([r["t"] for r in current]) > 0:
            rows.extend(current)

    for r in frame.itertuples(index=False):
        entry = int(r.entry)
        pure_clock = False
        if prev_id is not None:
            lo, hi = np.searchsorted(ids, [prev_id, entry], side="right")
            pure_clock = hi > lo and non_evolve[hi] == non_evolve[lo]
        finite = bool(np.isfinite(r.mean_coherence))
        if not (pure_clock and finite and current):
            close()
            current = []
            if finite:
                label = f"from entry {entry} ({r.kind}, t = {float(r.lattice_t):.4g})"
                current = [{"t": float(r.lattice_t), "coherence": float(r.mean_coherence), "gem": label,
                            "entry": entry}]
        else:
            current.append({"t": float(r.lattice_t), "coherence": float(r.mean_coherence),
                            "gem": current[0]["gem"], "entry": entry})
        prev_id = entry
    close()
    return pd.DataFrame(rows, columns=COLUMNS)


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
