"""The open gem's neighbourhood on the Lattice page: its entanglements and its place in the
lattice's arrays (no widgets here)."""
from __future__ import annotations

import numpy as np

from core.engine import Lattice


def gem_index(lattice: Lattice, gem_id: str) -> int | None:
    """Position of ``gem_id`` in the lattice's arrays (None: not an active gem)."""
    hits = np.flatnonzero(np.asarray(lattice.ids, dtype=object) == gem_id)
    return int(hits[0]) if len(hits) else None


def linked_gems(lattice: Lattice, gem_id: str) -> list[tuple[str, float]]:
    """``(partner id, weight)`` of every entanglement of ``gem_id``, strongest first."""
    i = gem_index(lattice, gem_id)
    if i is None:
        return []
    ei, ej, w = lattice.edge_arrays()
    mine = (ei == i) | (ej == i)
    others = np.where(ei[mine] == i, ej[mine], ei[mine])
    weights = w[mine]
    order = np.argsort(-weights, kind="stable")
    ids = list(lattice.ids)
    return [(ids[int(others[k])], float(weights[k])) for k in order]
