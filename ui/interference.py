"""Helpers of the Interference page: which gems the heatmap shows, their phases, and the
strongest pairs as a table (no widgets here)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from core.engine import Lattice
from ui.compute import most_coherent_first


def most_coherent(lattice: Lattice, count: int) -> np.ndarray:
    """Indices of the ``count`` most coherent gems, in lattice order."""
    return np.sort(most_coherent_first(lattice.coherence, count))


class TitlesByIndex(Sequence):
    """The gems' titles by array position, each looked up when it is read: a chart that labels
    the few gems it draws does not build a list of every title (1M gems: 0.3 s a rerun)."""

    def __init__(self, ids: Sequence, titles: Mapping):
        self._ids, self._titles = ids, titles

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._titles[g] for g in self._ids[i]]
        return self._titles[self._ids[i]]


def phase_degrees(lattice: Lattice, indices) -> np.ndarray:
    """Phases of the gems ``indices`` wrapped to [0, 360) degrees."""
    return np.degrees(np.mod(lattice.phase[indices], 2 * np.pi))


def pairs_table(lattice: Lattice, pairs: list[tuple[int, int, float]], titles: dict) -> pd.DataFrame:
    """Pairs ``(i, j, I_ij)`` with both gems' titles, phase difference Δφ in (-180, 180] degrees,
    coherences and whether they are entangled."""
    ids = list(lattice.ids)
    rows = []
    for i, j, value in pairs:
        dphi = np.degrees(np.angle(np.exp(1j * (lattice.phase[i] - lattice.phase[j]))))
        rows.append({"I_ij": value, "gem A": titles[ids[i]], "gem B": titles[ids[j]],
                     "Δφ (°)": dphi, "c_A": lattice.coherence[i], "c_B": lattice.coherence[j],
                     "linked": lattice.edge_weight(i, j) > 0, "id A": ids[i], "id B": ids[j]})
    return pd.DataFrame(rows)
